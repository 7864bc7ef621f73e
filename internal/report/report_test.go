package report_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/internal/cohort"
	"github.com/autopack/dynretry/internal/cohort/cohorttest"
	"github.com/autopack/dynretry/internal/report"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
)

// chromium runs headless Chromium (Debian's package; `make test` installs
// it) on the page at path with args, and returns its standard output and
// the console messages the page produced (--enable-logging=stderr prints
// each as a line with ":CONSOLE").
func chromium(t *testing.T, path string, args ...string) (stdout string, console []string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	require.NoError(t, err, "chromium is needed: run scripts/deps.sh (as root) or apt-get install chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0",
	}, args...)
	cmd := exec.CommandContext(ctx, bin, append(args, "file://"+path)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), "chromium: %s", errOut.String())
	for line := range strings.Lines(errOut.String()) {
		if strings.Contains(line, ":CONSOLE") {
			console = append(console, strings.TrimSpace(line))
		}
	}
	return out.String(), console
}

// traces records a small rollout: 30 treatment calls (2 failed, some 429s
// waited out) and 40 control calls (12 failed).
func traces(t *testing.T) *cohort.Summary {
	var calls []cohorttest.Call
	for i := range 30 {
		calls = append(calls, cohorttest.Call{Cohort: rollout.Treatment, RunID: fmt.Sprint("run-t", i%6), Start: time.Duration(i) * 300 * time.Millisecond,
			Wasted: i % 3, Failed: i%15 == 14, Latency: time.Duration(500+100*i) * time.Millisecond})
	}
	for i := range 40 {
		c := cohorttest.Call{Cohort: rollout.Control, RunID: fmt.Sprint("run-c", i%8), Start: time.Duration(i) * 200 * time.Millisecond,
			Wasted: 2, Failed: i%10 < 3, Latency: time.Duration(300+20*i) * time.Millisecond}
		if i%10 == 0 {
			c.Class = retry.Overloaded
		}
		calls = append(calls, c)
	}
	var b bytes.Buffer
	cohorttest.Write(t, &b, calls)
	s, err := cohort.Read(&b)
	require.NoError(t, err)
	return s
}

func writePage(t *testing.T, dir string, s *cohort.Summary) string {
	t.Helper()
	path := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	require.NoError(t, report.Write(&b, s, "traces.jsonl"))
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
	return path
}

// TestPageInChromium opens the page in headless Chromium: no console
// message, the key numbers on the rendered page, and a screenshot kept in
// the test's artifact directory (go test -artifacts keeps it).
func TestPageInChromium(t *testing.T) {
	s := traces(t)
	dir := t.ArtifactDir()
	path := writePage(t, dir, s)

	dom, console := chromium(t, path, "--dump-dom")
	assert.Empty(t, console, "console messages")
	// From the calls traces records: treatment 2 of 30 failed, and wastes
	// Σ(i mod 3) = 30 retries plus 2 give-ups; control 12 of 40 failed,
	// 2 retries each plus 12 give-ups.
	const tFailed, tCalls, tWasted, cFailed, cCalls, cWasted = 2, 30, 30 + 2, 12, 40, 80 + 12
	z, p, ok := cohort.TwoProportionZ(tFailed, tCalls, cFailed, cCalls)
	require.True(t, ok)
	tRate, cRate := float64(tFailed)/tCalls, float64(cFailed)/cCalls
	for _, want := range []string{
		"treatment error rate", fmt.Sprintf("%.1f%%", 100*tRate),
		"control error rate", fmt.Sprintf("%.1f%%", 100*cRate),
		fmt.Sprintf("<b>%.0f%%</b>", 100*(1-tRate/cRate)),
		fmt.Sprintf("two-proportion test: z = %.2f, two-sided p %s", z, cohort.FormatP(p)),
		fmt.Sprintf("%.2f", float64(tWasted)/tCalls), fmt.Sprintf("%.2f", float64(cWasted)/cCalls),
		"overloaded", "rate_limited",
		"responses 429",
	} {
		assert.Contains(t, dom, want)
	}
	lo, hi := cohort.Wilson(tFailed, tCalls, cohort.Z95)
	assert.Contains(t, dom, fmt.Sprintf("%.1f%% – %.1f%%", 100*lo, 100*hi), "the Wilson interval")
	assert.Regexp(t, `<svg[^>]*aria-label="timeline of 429 responses and waits"[^>]*>.*<rect`, dom, "the timeline has bars")

	shot := filepath.Join(dir, "report.png")
	_, console = chromium(t, path, "--hide-scrollbars", "--window-size=1000,2000", "--screenshot="+shot)
	assert.Empty(t, console)
	fi, err := os.Stat(shot)
	require.NoError(t, err)
	assert.Greater(t, fi.Size(), int64(20_000), "a screenshot of a page, not of a blank one")
	t.Logf("screenshot: %s", shot)
}

// TestChromiumReportsConsoleErrors: the console check can fail.
func TestChromiumReportsConsoleErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.html")
	require.NoError(t, os.WriteFile(path, []byte(`<p>x</p><script>console.error("boom"); missing();</script>`), 0o644))
	_, console := chromium(t, path, "--dump-dom")
	require.Len(t, console, 2, "%q", console)
	assert.Contains(t, console[0], "boom")
	assert.Contains(t, console[1], "missing is not defined")
}

// TestPageSelfContained: nothing on the page is loaded from elsewhere.
func TestPageSelfContained(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, report.Write(&b, traces(t), "traces.jsonl"))
	page := b.String()
	assert.NotRegexp(t, regexp.MustCompile(`(?i)(src|href)\s*=`), page, "no external resource")
	assert.NotRegexp(t, regexp.MustCompile(`(?i)@import|url\(`), page)
	for _, m := range regexp.MustCompile(`https?://[^"'\s<]+`).FindAllString(page, -1) {
		assert.Equal(t, "http://www.w3.org/2000/svg", m, "only the SVG namespace names a URL")
	}
}

// TestPageEmptyCohort: a cohort without calls says so, and no reduction or
// test is claimed.
func TestPageEmptyCohort(t *testing.T) {
	var b bytes.Buffer
	cohorttest.Write(t, &b, []cohorttest.Call{
		{Cohort: rollout.Control, RunID: "r1", Failed: true, Wasted: 1, Latency: time.Second},
		{Cohort: rollout.Control, RunID: "r2", Latency: time.Second},
	})
	s, err := cohort.Read(&b)
	require.NoError(t, err)
	b.Reset()
	require.NoError(t, report.Write(&b, s, "traces.jsonl"))
	page := b.String()
	assert.Contains(t, page, "The treatment cohort has no calls")
	assert.NotContains(t, page, "The control cohort has no calls")
	assert.Contains(t, page, "error-rate reduction<b>n/a</b>")
}

// TestPageEscapes: text from the traces is escaped.
func TestPageEscapes(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, report.Write(&b, traces(t), `<script>alert(1)</script>.jsonl`))
	assert.NotContains(t, b.String(), "<script>alert(1)")
}
