package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"github.com/autopack/dynretry/internal/testutil"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/telemetry"
)

// TestDemoContract runs the demo, in real time against the simulated
// provider on loopback (about 4 s for 8 runs), and checks what it writes
// against the design notes' contract: traces.jsonl, summary.json and the
// runner's error reports; and that the API key from DYNRETRY_DEMO_API_KEY
// is in none of them, nor in anything printed or logged.
func TestDemoContract(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo in real time")
	}
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	random := hex.EncodeToString(b)
	key := "sk-demo-canary-" + random
	t.Setenv("DYNRETRY_DEMO_API_KEY", key)
	t.Setenv("DYNRETRY_CONFIG", "")              // the defaults, whatever the caller's environment says
	t.Setenv("LOVABLE_DYNAMIC_RETRY_DELAYS", "") // the --percent rollout decides
	logs := new(testutil.SyncBuffer)
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })

	out := t.TempDir()
	var stdout, stderr testutil.SyncBuffer
	const runs = 8 // one run in eight asks the doctor with a prompt too large: an error report
	require.NoError(t, runDemo(context.Background(), demoFlags{out: out, runs: runs, percent: 50, seed: 1, metricsListen: "127.0.0.1:0"}, &stdout, &stderr))
	assert.Regexp(t, `serving Prometheus metrics at http://127\.0\.0\.1:\d+/metrics`, stderr.String())

	// traces.jsonl: one span per line, JSON with Name and Attributes.
	f, err := os.Open(filepath.Join(out, "traces.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	callSpans := map[string]int{}
	names := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	lines := 0
	for sc.Scan() {
		lines++
		var sp struct {
			Name       string
			Attributes []struct {
				Key   string
				Value struct {
					Type  string
					Value any
				}
			}
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &sp), "line %d: %s", lines, sc.Bytes())
		require.NotEmpty(t, sp.Name, "line %d", lines)
		require.NotEmpty(t, sp.Attributes, "line %d", lines)
		names[sp.Name]++
		if sp.Name == telemetry.SpanCall {
			for _, a := range sp.Attributes {
				if a.Key == telemetry.AttrCohort {
					callSpans[a.Value.Value.(string)]++
				}
			}
		}
	}
	require.NoError(t, sc.Err())
	assert.Positive(t, names[telemetry.SpanCall])
	assert.GreaterOrEqual(t, names[telemetry.SpanAttempt], names[telemetry.SpanCall], "at least one attempt per call")

	// summary.json: the per-cohort figures.
	raw, err := os.ReadFile(filepath.Join(out, "summary.json"))
	require.NoError(t, err)
	var sum struct {
		Cohorts map[string]map[string]json.RawMessage `json:"cohorts"`
	}
	require.NoError(t, json.Unmarshal(raw, &sum), "%s", raw)
	require.Contains(t, sum.Cohorts, "treatment")
	require.Contains(t, sum.Cohorts, "control")
	total := map[string]int{}
	for cohort, c := range sum.Cohorts {
		got := map[string]int{}
		for _, field := range []string{"runs", "calls", "failed_calls", "attempts", "wasted_attempts"} {
			require.Contains(t, c, field, "cohorts.%s", cohort)
			var n int
			require.NoError(t, json.Unmarshal(c[field], &n), "cohorts.%s.%s = %s", cohort, field, c[field])
			got[field] = n
			total[field] += n
		}
		assert.Equal(t, callSpans[cohort], got["calls"], "cohorts.%s.calls against the trace", cohort)
		assert.GreaterOrEqual(t, got["attempts"], got["calls"], cohort)
		assert.LessOrEqual(t, got["wasted_attempts"], got["attempts"], cohort)
		assert.LessOrEqual(t, got["failed_calls"], got["calls"], cohort)
	}
	assert.Equal(t, runs, total["runs"])
	assert.Equal(t, runs*4+runs/2+1, total["calls"], "4 calls a run, the Gemini doctor's in every other run, and the huge doctor call")
	assert.Positive(t, total["failed_calls"], "the doctor's call fails")

	// report.html: the same comparison as a page.
	page, err := os.ReadFile(filepath.Join(out, "report.html"))
	require.NoError(t, err)
	assert.Contains(t, string(page), "treatment error rate")
	assert.Contains(t, string(page), "<svg")

	// Error reports, each with its .txt twin.
	reports, err := filepath.Glob(filepath.Join(out, ".autonomous_runs", "*", "errors", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, reports)
	for _, r := range reports {
		rb, err := os.ReadFile(r)
		require.NoError(t, err)
		assert.True(t, json.Valid(rb), r)
		_, err = os.Stat(strings.TrimSuffix(r, ".json") + ".txt")
		assert.NoError(t, err, "the twin of %s", r)
	}
	doctor, err := filepath.Glob(filepath.Join(out, ".autonomous_runs", "demo-run-007", "errors", "*_llm_service_RequestTooLarge*.json"))
	require.NoError(t, err)
	assert.Len(t, doctor, 1, "the doctor's request_too_large report")

	// The key is nowhere.
	err = filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		assert.NotContains(t, string(b), random, "%s holds the key", path)
		return nil
	})
	require.NoError(t, err)
	for what, s := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "the log": logs.String()} {
		assert.NotContains(t, s, random, "%s holds the key", what)
	}
	assert.Contains(t, stdout.String(), "treatment")
	assert.Contains(t, logs.String(), "dynretry registered")
}

func TestDemoFlagsChecked(t *testing.T) {
	for _, f := range []demoFlags{{out: t.TempDir(), runs: 0, percent: 50}, {out: t.TempDir(), runs: 1, percent: 101}, {out: t.TempDir(), runs: 1, percent: -1}, {out: t.TempDir(), runs: 1, processes: -2}} {
		var stdout, stderr bytes.Buffer
		err := runDemo(context.Background(), f, &stdout, &stderr)
		require.Error(t, err, "%+v", f)
		assert.Regexp(t, `^--(runs|percent|processes) must be`, err.Error())
	}
}

func TestDemoMetricsListenUsage(t *testing.T) {
	err := runDemo(context.Background(), demoFlags{out: t.TempDir(), runs: 1, percent: 50, metricsListen: "9464"}, io.Discard, io.Discard)
	var ue *usageError
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, err.Error(), "--metrics-listen wants host:port")
}
