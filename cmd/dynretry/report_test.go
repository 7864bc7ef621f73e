package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/internal/cohort/cohorttest"
	"github.com/autopack/dynretry/rollout"
)

// execute runs the command tree with args and returns its output and error.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRoot()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// writeTraces records calls as a plugin would and returns the file's path.
func writeTraces(t *testing.T, calls []cohorttest.Call) string {
	t.Helper()
	var b bytes.Buffer
	cohorttest.Write(t, &b, calls)
	path := filepath.Join(t.TempDir(), "traces.jsonl")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
	return path
}

func TestReportBadFiles(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.jsonl")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	garbage := filepath.Join(dir, "garbage.jsonl")
	require.NoError(t, os.WriteFile(garbage, []byte("{\"Name\":\"x\"}\nnot json\n"), 0o644))
	for path, want := range map[string]string{
		empty:                              "no dynretry call spans",
		garbage:                            "traces line 2: not a span",
		filepath.Join(dir, "missing.json"): "no such file",
		dir:                                "is a directory",
	} {
		_, err := execute(t, "report", path)
		require.Error(t, err, path)
		assert.Contains(t, err.Error(), want, path)
	}
}

// TestReportOneCohort: with no treatment calls the report says so and
// claims no reduction.
func TestReportOneCohort(t *testing.T) {
	path := writeTraces(t, []cohorttest.Call{
		{Cohort: rollout.Control, RunID: "r1", Failed: true, Latency: time.Second},
		{Cohort: rollout.Control, RunID: "r2", Latency: time.Second},
	})
	out, err := execute(t, "report", path)
	require.NoError(t, err)
	assert.Contains(t, out, "the treatment cohort has no calls: nothing to compare")
	assert.NotContains(t, out, "reduction")
	assert.Regexp(t, `treatment\s+0\s+0\s+-\s+-`, out)
}

func TestReportHTML(t *testing.T) {
	path := writeTraces(t, []cohorttest.Call{
		{Cohort: rollout.Treatment, RunID: "r1", Wasted: 1, Latency: 2 * time.Second},
		{Cohort: rollout.Treatment, RunID: "r1", Latency: time.Second},
		{Cohort: rollout.Control, RunID: "r2", Failed: true, Wasted: 2, Latency: time.Second},
		{Cohort: rollout.Control, RunID: "r3", Latency: time.Second},
	})
	html := filepath.Join(t.TempDir(), "report.html")
	out, err := execute(t, "report", "--html", html, path)
	require.NoError(t, err)
	assert.Contains(t, out, "treatment 0.0% [0.0%, 65.8%] vs control 50.0% [9.5%, 90.5%], a 100% reduction")
	assert.Contains(t, out, "wasted attempts per call: treatment 0.50 vs control 1.50")
	page, err := os.ReadFile(html)
	require.NoError(t, err)
	assert.Contains(t, string(page), "<title>dynretry: treatment vs control</title>")
	left, err := filepath.Glob(filepath.Join(filepath.Dir(html), ".*.tmp"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary file left")
}
