package hooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/retry"
)

// t0 is the fixed clock of the reporter tests.
var t0 = time.Date(2025, 12, 3, 18, 19, 41, 123_000_000, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// reportJSON is the JSON a FileReporter writes.
type reportJSON struct {
	Timestamp    string         `json:"timestamp"`
	ErrorType    string         `json:"error_type"`
	ErrorMessage string         `json:"error_message"`
	RunID        string         `json:"run_id"`
	PhaseID      string         `json:"phase_id"`
	Component    string         `json:"component"`
	Operation    string         `json:"operation"`
	ErrorChain   []string       `json:"error_chain"`
	ContextData  map[string]any `json:"context_data"`
	Runtime      map[string]any `json:"runtime"`
}

func readReport(t *testing.T, path string) (reportJSON, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var r reportJSON
	require.NoError(t, json.Unmarshal(b, &r), "%s is not JSON: %s", path, b)
	txt, err := os.ReadFile(strings.TrimSuffix(path, ".json") + ".txt")
	require.NoError(t, err, "the .txt twin of %s", path)
	return r, string(txt)
}

// files lists the regular files under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

func TestFileReporterLayoutAndFields(t *testing.T) {
	dir := t.TempDir()
	f := &hooks.FileReporter{Dir: dir, Now: fixedClock(t0)}
	cause := errors.New("connection refused")
	err := fmt.Errorf("builder call: %w", cause)
	path, rerr := f.Report(context.Background(), hooks.ErrorReport{
		Err: err, RunID: "lovable-p1-core-precision", PhaseID: "phase-2", Component: "llm_service", Operation: "builder",
		Context: map[string]any{"provider": "openai", "attempt": 3, "stream": true, "ratio": 0.5},
	})
	require.NoError(t, rerr)

	want := filepath.Join(dir, ".autonomous_runs", "lovable-p1-core-precision", "errors", "20251203_181941_llm_service_fmt.wrapError.json")
	assert.Equal(t, want, path)
	assert.ElementsMatch(t, []string{
		".autonomous_runs/lovable-p1-core-precision/errors/20251203_181941_llm_service_fmt.wrapError.json",
		".autonomous_runs/lovable-p1-core-precision/errors/20251203_181941_llm_service_fmt.wrapError.txt",
	}, files(t, dir))

	r, txt := readReport(t, path)
	assert.Equal(t, "2025-12-03T18:19:41.123Z", r.Timestamp)
	assert.Equal(t, "fmt.wrapError", r.ErrorType)
	assert.Equal(t, "builder call: connection refused", r.ErrorMessage)
	assert.Equal(t, "lovable-p1-core-precision", r.RunID)
	assert.Equal(t, "phase-2", r.PhaseID)
	assert.Equal(t, "llm_service", r.Component)
	assert.Equal(t, "builder", r.Operation)
	assert.Equal(t, []string{"*fmt.wrapError: builder call: connection refused", "*errors.errorString: connection refused"}, r.ErrorChain)
	assert.Equal(t, map[string]any{"provider": "openai", "attempt": float64(3), "stream": true, "ratio": 0.5}, r.ContextData)
	for _, k := range []string{"go", "os", "arch", "pid"} {
		assert.Contains(t, r.Runtime, k)
	}

	for _, s := range []string{r.Timestamp, r.ErrorType, r.ErrorMessage, r.RunID, r.PhaseID, r.Component, r.Operation,
		"provider: openai", "attempt: 3", "connection refused"} {
		assert.Contains(t, txt, s, "the .txt twin")
	}
}

func TestFileReporterErrorTypeOfFailedCall(t *testing.T) {
	dir := t.TempDir()
	f := &hooks.FileReporter{Dir: dir, Now: fixedClock(t0)}
	ce := &hooks.CallError{Err: errors.New("429 Too Many Requests"), Summary: hooks.Summary{Class: retry.RateLimited}}
	for name, err := range map[string]error{
		"direct": ce,
		"joined": errors.Join(errors.New("runner: builder call for phase p"), ce),
	} {
		t.Run(name, func(t *testing.T) {
			path, rerr := f.Report(context.Background(), hooks.ErrorReport{Err: err, RunID: name, Component: "llm_service"})
			require.NoError(t, rerr)
			assert.Equal(t, "20251203_181941_llm_service_RateLimited.json", filepath.Base(path))
			r, _ := readReport(t, path)
			assert.Equal(t, "RateLimited", r.ErrorType)
		})
	}
}

// TestFileReporterSameSecond: autopack's reporter overwrote the first of two
// reports made in the same second; here the second gets _2, the third _3,
// and each returned path is the file holding that report.
func TestFileReporterSameSecond(t *testing.T) {
	dir := t.TempDir()
	f := &hooks.FileReporter{Dir: dir, Now: fixedClock(t0)}
	var paths []string
	for i := range 3 {
		// Different sub-second instants, same second.
		f.Now = fixedClock(t0.Add(time.Duration(i) * 100 * time.Millisecond))
		path, err := f.Report(context.Background(), hooks.ErrorReport{
			Err: errors.New("boom"), RunID: "run-1", Component: "llm_service",
			Context: map[string]any{"n": i},
		})
		require.NoError(t, err)
		paths = append(paths, path)
	}
	errs := filepath.Join(dir, ".autonomous_runs", "run-1", "errors")
	assert.Equal(t, []string{
		filepath.Join(errs, "20251203_181941_llm_service_errors.errorString.json"),
		filepath.Join(errs, "20251203_181941_llm_service_errors.errorString_2.json"),
		filepath.Join(errs, "20251203_181941_llm_service_errors.errorString_3.json"),
	}, paths)
	assert.Len(t, files(t, dir), 6, "three reports and their twins")
	for i, p := range paths {
		r, txt := readReport(t, p)
		assert.Equal(t, float64(i), r.ContextData["n"], "the report at %s", p)
		assert.Contains(t, txt, fmt.Sprintf("n: %d", i))
	}

	// A second reporter on the same directory does not overwrite either.
	other := &hooks.FileReporter{Dir: dir, Now: fixedClock(t0)}
	p, err := other.Report(context.Background(), hooks.ErrorReport{Err: errors.New("boom"), RunID: "run-1", Component: "llm_service"})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(errs, "20251203_181941_llm_service_errors.errorString_4.json"), p)
}

func TestFileReporterConcurrent(t *testing.T) {
	dir := t.TempDir()
	f := &hooks.FileReporter{Dir: dir, Now: fixedClock(t0)}
	const n = 32
	paths := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p, err := f.Report(context.Background(), hooks.ErrorReport{
				Err: errors.New("boom"), RunID: "run-concurrent", Component: "llm_service", Context: map[string]any{"i": i},
			})
			assert.NoError(t, err)
			paths[i] = p
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, p := range paths {
		require.NotEmpty(t, p)
		assert.False(t, seen[p], "path %s returned twice", p)
		seen[p] = true
		r, _ := readReport(t, p)
		assert.Equal(t, float64(i), r.ContextData["i"], "%s holds another goroutine's report", p)
	}
	assert.Len(t, files(t, dir), 2*n)
}

func TestFileReporterCutsContextValues(t *testing.T) {
	dir := t.TempDir()
	f := &hooks.FileReporter{Dir: dir, Now: fixedClock(t0)}
	long := strings.Repeat("x", 500)
	runes := strings.Repeat("é", 300)
	exact := strings.Repeat("y", 200)
	path, err := f.Report(context.Background(), hooks.ErrorReport{
		Err: errors.New("boom"), RunID: "run", Component: "c",
		Context: map[string]any{"long": long, "runes": runes, "exact": exact, "short": "ok", "slice": []string{long}},
	})
	require.NoError(t, err)
	r, _ := readReport(t, path)
	assert.Equal(t, strings.Repeat("x", 200), r.ContextData["long"])
	assert.Equal(t, strings.Repeat("é", 200), r.ContextData["runes"], "cut by characters, not bytes")
	assert.Equal(t, exact, r.ContextData["exact"])
	assert.Equal(t, "ok", r.ContextData["short"])
	assert.Len(t, []rune(r.ContextData["slice"].(string)), 200, "non-scalar values are rendered and cut too")
}

func TestFileReporterRedacts(t *testing.T) {
	const listed = "my-gateway-secret-42" // no known shape: redacted because it is listed
	secrets := map[string]string{
		"listed":      listed,
		"openai":      "sk-proj-" + "abcdefghijklmnopqrstuvwx",
		"openai-old":  "sk-" + "ABCDEFGHIJKLMNOPQRSTUVWX",
		"anthropic":   "sk-ant-api03-" + "abcdefghijklmnop",
		"google":      "AIza" + "SyA1234567890abcdefghijkl",
		"bearer":      "Bearer " + "eyJhbGciOiJIUzI1NiJ9.payload",
		"bearer-case": "bearer " + "tok_abcdefghijkl",
	}
	for name, secret := range secrets {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			f := &hooks.FileReporter{Dir: dir, Secrets: []string{listed, ""}, Now: fixedClock(t0)}
			inner := errors.New("401 Incorrect API key provided: " + secret)
			path, err := f.Report(context.Background(), hooks.ErrorReport{
				Err: fmt.Errorf("call failed: %w", inner), RunID: "run", Component: "llm_service",
				Context: map[string]any{"detail": "sent " + secret + " to the gateway"},
			})
			require.NoError(t, err)
			r, txt := readReport(t, path)
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			secretPart := strings.TrimPrefix(strings.TrimPrefix(secret, "Bearer "), "bearer ")
			assert.NotContains(t, string(raw), secretPart)
			assert.NotContains(t, txt, secretPart)
			assert.Contains(t, r.ErrorMessage, "[REDACTED]")
			assert.Contains(t, r.ContextData["detail"], "[REDACTED]")
			for _, e := range r.ErrorChain {
				assert.Contains(t, e, "[REDACTED]")
			}
		})
	}

	// Providers echo a key masked, its first 8 and last 4 characters shown:
	// those characters are the real key's and must not be written either.
	t.Run("provider-masked keys", func(t *testing.T) {
		masked := map[string]string{
			"openai":           "sk-proj-********************************************fGzz",
			"openai ellipsis":  "sk-proj-********…fGzz",
			"openai dots":      "sk-proj-abcd...fGzz",
			"anthropic":        "sk-ant-…****…",
			"anthropic shown":  "sk-ant-api03-…****…fGzz",
			"google truncated": "AIzaSyA1…fGzz",
		}
		for name, key := range masked {
			dir := t.TempDir()
			f := &hooks.FileReporter{Dir: dir, Now: fixedClock(t0)}
			msg := `401 Unauthorized {"error":{"message":"Incorrect API key provided: ` + key + `. You can find your API key at https://platform.openai.com/account/api-keys.","code":"invalid_api_key"}}`
			path, err := f.Report(context.Background(), hooks.ErrorReport{
				Err: fmt.Errorf("runner: auditor call: %w", errors.New(msg)), RunID: "run", Component: "llm_service",
				Context: map[string]any{"detail": "the provider said " + key},
			})
			require.NoError(t, err, name)
			r, txt := readReport(t, path)
			raw, err := os.ReadFile(path)
			require.NoError(t, err)
			for _, written := range []string{string(raw), txt} {
				assert.NotContains(t, written, key, name)
				assert.NotContains(t, written, "fGzz", "%s: the key's last characters", name)
				assert.NotContains(t, written, "****", name)
			}
			assert.Contains(t, r.ErrorMessage, "Incorrect API key provided: [REDACTED].", name)
			assert.Contains(t, r.ErrorMessage, "invalid_api_key", "%s: the rest of the message stays", name)
			assert.Equal(t, "the provider said [REDACTED]", r.ContextData["detail"], name)
		}
	})

	t.Run("secret keys", func(t *testing.T) {
		dir := t.TempDir()
		f := &hooks.FileReporter{Dir: dir, Now: fixedClock(t0)}
		ctx := map[string]any{
			"api_key": "plainvalue1", "OPENAI_API_KEY": "plainvalue2", "x-api-key": "plainvalue3",
			"Authorization": "plainvalue4", "apiKey": "plainvalue5", "password": 12345,
			"refresh_token": "plainvalue6", "client_secret": "plainvalue7",
			"provider": "openai", "max_tokens": 300,
		}
		path, err := f.Report(context.Background(), hooks.ErrorReport{Err: errors.New("boom"), RunID: "run", Component: "c", Context: ctx})
		require.NoError(t, err)
		r, txt := readReport(t, path)
		for k := range ctx {
			switch k {
			case "provider":
				assert.Equal(t, "openai", r.ContextData[k])
				continue
			case "max_tokens":
				assert.Equal(t, 300.0, r.ContextData[k], "a count, not a secret")
				continue
			}
			assert.Equal(t, "[REDACTED]", r.ContextData[k], "context key %s", k)
		}
		raw, _ := os.ReadFile(path)
		assert.NotContains(t, string(raw)+txt, "plainvalue")
		assert.NotContains(t, string(raw)+txt, "12345")
	})

	t.Run("secret cut at the limit", func(t *testing.T) {
		dir := t.TempDir()
		f := &hooks.FileReporter{Dir: dir, Secrets: []string{listed}, Now: fixedClock(t0)}
		v := strings.Repeat("a", 195) + listed // the secret straddles the 200-character cut
		path, err := f.Report(context.Background(), hooks.ErrorReport{Err: errors.New("boom"), RunID: "run", Component: "c", Context: map[string]any{"v": v}})
		require.NoError(t, err)
		raw, _ := os.ReadFile(path)
		assert.NotContains(t, string(raw), "my-ga", "the secret's head, kept by a cut before redaction")
	})
}

// TestFileReporterRunIDCannotEscape: a run id is a free-form string; none
// puts a file outside Dir/.autonomous_runs.
func TestFileReporterRunIDCannotEscape(t *testing.T) {
	for _, runID := range []string{"../../../escape", "..", ".", "", "/etc/passwd", `..\..\win`, "a/../../b", "run\x00id", "...."} {
		t.Run(fmt.Sprintf("%q", runID), func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "work")
			f := &hooks.FileReporter{Dir: dir, Now: fixedClock(t0)}
			path, err := f.Report(context.Background(), hooks.ErrorReport{Err: errors.New("boom"), RunID: runID, Component: "../../c", Operation: "op"})
			require.NoError(t, err)
			runs := filepath.Join(dir, ".autonomous_runs")
			rel, err := filepath.Rel(runs, path)
			require.NoError(t, err)
			assert.False(t, rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)), "%s is outside %s", path, runs)
			parts := strings.Split(filepath.ToSlash(rel), "/")
			require.Len(t, parts, 3, "{run_id}/errors/{file}: %s", rel)
			assert.Equal(t, "errors", parts[1])
			for _, f := range files(t, root) {
				assert.True(t, strings.HasPrefix(f, "work/.autonomous_runs/"), "file written at %s", f)
			}
			r, _ := readReport(t, path)
			assert.Equal(t, runID, r.RunID, "the report keeps the run id as given")
		})
	}
}

// TestFileReporterChainThroughJoin: the error chain follows errors.Join, as
// errors.Is and errors.As do. The runner reports every failed call as
// errors.Join(context, err) (examples/runner/runner.go:239, Runner.call).
//
// BUG (hooks/filereporter.go:78): the chain is walked with errors.Unwrap,
// which returns nil for a joined error, so every report the runner writes
// has a one-entry error_chain without the *hooks.CallError or the SDK's
// error type.
func TestFileReporterChainThroughJoin(t *testing.T) {
	dir := t.TempDir()
	f := &hooks.FileReporter{Dir: dir, Now: fixedClock(t0)}
	ce := &hooks.CallError{Err: errors.New("429 Too Many Requests"), Summary: hooks.Summary{Class: retry.RateLimited}}
	path, err := f.Report(context.Background(), hooks.ErrorReport{Err: errors.Join(errors.New("runner: call"), ce), RunID: "run", Component: "llm_service"})
	require.NoError(t, err)
	r, _ := readReport(t, path)
	chain := strings.Join(r.ErrorChain, "\n")
	assert.Contains(t, chain, "*hooks.CallError")
}
