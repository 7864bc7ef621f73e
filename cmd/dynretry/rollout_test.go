package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/internal/cohort/cohorttest"
	"github.com/autopack/dynretry/internal/promtest"
	"github.com/autopack/dynretry/rollout"
)

// rolloutCalls makes n calls per cohort: treatment fails tFail in 100 and
// wastes an attempt in one call of 10; control fails 4 in 100 and wastes
// an attempt in one call of 2. Durations spread over 1–2 s in both.
func rolloutCalls(n, tFail int) []cohorttest.Call {
	var calls []cohorttest.Call
	for i := range n {
		lat := time.Second + time.Duration(i%100)*10*time.Millisecond
		t := cohorttest.Call{Cohort: rollout.Treatment, RunID: fmt.Sprint("t-", i%50), Start: time.Duration(i) * 10 * time.Millisecond, Latency: lat, Failed: i%100 < tFail}
		if i%10 == 0 || t.Failed {
			t.Wasted = 1
		}
		c := cohorttest.Call{Cohort: rollout.Control, RunID: fmt.Sprint("c-", i%50), Start: time.Duration(i) * 10 * time.Millisecond, Latency: lat, Failed: i%100 < 4}
		if i%2 == 0 || c.Failed {
			c.Wasted = 1
		}
		calls = append(calls, t, c)
	}
	return calls
}

// modelsCopy copies the project's models.yaml (rollout_percent: 10) into a
// temporary directory.
func modelsCopy(t *testing.T) (path, orig string) {
	t.Helper()
	b, err := os.ReadFile("../../models.yaml")
	require.NoError(t, err)
	path = filepath.Join(t.TempDir(), "models.yaml")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path, string(b)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// statusOf runs `rollout status --json` and decodes it.
func statusOf(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, err := execute(t, append([]string{"rollout", "status", "--json"}, args...)...)
	require.NoError(t, err, out)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	return v
}

// TestRolloutStages walks the plan on traces recorded by the telemetry
// package: treatment better → 10 → 50 → 100, each write atomic and keeping
// every comment of models.yaml; at 100 it holds.
func TestRolloutStages(t *testing.T) {
	t.Setenv("DYNRETRY_ROLLOUT_PERCENT", "")
	traces := writeTraces(t, rolloutCalls(300, 0))
	cfg, orig := modelsCopy(t)
	args := []string{"--traces", traces, "--config", cfg}

	v := statusOf(t, args...)
	assert.Equal(t, 10.0, v["percent"])
	assert.Equal(t, "advance", v["recommendation"], "%v", v["reasons"])
	require.Len(t, v["reasons"], 4)
	cohorts := v["cohorts"].(map[string]any)
	assert.Equal(t, 300.0, cohorts["treatment"].(map[string]any)["calls"])
	assert.Equal(t, 12.0, cohorts["control"].(map[string]any)["failed_calls"])
	for _, c := range v["checks"].([]any) {
		assert.Equal(t, "pass", c.(map[string]any)["result"], "%v", c)
	}
	assert.Equal(t, orig, readFile(t, cfg), "status writes nothing")

	for _, stage := range []string{"50", "100"} {
		out, err := execute(t, append([]string{"rollout", "advance"}, args...)...)
		require.NoError(t, err, out)
		assert.Contains(t, out, "wrote "+stage+"% to "+cfg)
		assert.Equal(t, strings.Replace(orig, "rollout_percent: 10\n", "rollout_percent: "+stage+"\n", 1), readFile(t, cfg), "only the number changed")
	}
	out, err := execute(t, append([]string{"rollout", "advance"}, args...)...)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not advancing from 100%")
	assert.Contains(t, out, "complete")
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg), ".*.tmp"))
	assert.Empty(t, left, "no temporary file left")
}

// TestRolloutRegression: treatment fails far more often: status recommends
// the return to 0%, advance refuses, rollback writes 0 (models.yaml and
// flagd alike).
func TestRolloutRegression(t *testing.T) {
	traces := writeTraces(t, rolloutCalls(300, 20))
	cfg, orig := modelsCopy(t)
	require.NoError(t, os.WriteFile(cfg, []byte(strings.Replace(orig, "rollout_percent: 10\n", "rollout_percent: 50\n", 1)), 0o644))
	args := []string{"--traces", traces, "--config", cfg}

	v := statusOf(t, args...)
	assert.Equal(t, "rollback", v["recommendation"], "%v", v["reasons"])
	assert.Equal(t, 0.0, v["next"])
	assert.Equal(t, "regression", v["checks"].([]any)[0].(map[string]any)["result"])

	_, err := execute(t, append([]string{"rollout", "advance"}, args...)...)
	require.Error(t, err)
	out, err := execute(t, append([]string{"rollout", "rollback"}, args...)...)
	require.NoError(t, err, out)
	assert.Equal(t, strings.Replace(orig, "rollout_percent: 10\n", "rollout_percent: 0\n", 1), readFile(t, cfg))

	flags := filepath.Join(t.TempDir(), "flags.json")
	b, err := os.ReadFile("../../rollout/testdata/flags-50.json")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(flags, b, 0o644))
	out, err = execute(t, "rollout", "rollback", "--traces", traces, "--flagd", flags, "--json")
	require.NoError(t, err, out)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, map[string]any{"from": 50.0, "to": 0.0}, res["changed"])
	assert.Contains(t, readFile(t, flags), `["on", 0]`)
}

// TestRolloutNoData: an empty traces file, or too few calls, holds and
// never moves the file; a rollback without regression needs --force.
func TestRolloutNoData(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "traces.jsonl")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	few := writeTraces(t, rolloutCalls(50, 0))
	for _, traces := range []string{empty, few} {
		cfg, orig := modelsCopy(t)
		args := []string{"--traces", traces, "--config", cfg}
		v := statusOf(t, args...)
		assert.Equal(t, "hold", v["recommendation"])
		assert.Contains(t, v["reasons"].([]any)[0], "too little data")
		_, err := execute(t, append([]string{"rollout", "advance"}, args...)...)
		require.Error(t, err)
		_, err = execute(t, append([]string{"rollout", "rollback"}, args...)...)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "--force")
		assert.Equal(t, orig, readFile(t, cfg), "unchanged")
		out, err := execute(t, append([]string{"rollout", "rollback", "--force"}, args...)...)
		require.NoError(t, err, out)
		assert.Contains(t, readFile(t, cfg), "rollout_percent: 0\n")
	}
}

func TestRolloutFlagdAdvance(t *testing.T) {
	traces := writeTraces(t, rolloutCalls(300, 0))
	flags := filepath.Join(t.TempDir(), "flags.json")
	b, err := os.ReadFile("../../rollout/testdata/flags-10.json")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(flags, b, 0o644))
	out, err := execute(t, "rollout", "advance", "--traces", traces, "--flagd", flags)
	require.NoError(t, err, out)
	assert.Equal(t, strings.Replace(strings.Replace(string(b), `["on", 10]`, `["on", 50]`, 1), `["off", 90]`, `["off", 50]`, 1), readFile(t, flags))
}

func TestRolloutBadInput(t *testing.T) {
	cfg, _ := modelsCopy(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rollout", "status", "--config", cfg}, "--traces FILE or --prometheus URL"},
		{[]string{"rollout", "status", "--config", cfg, "--prometheus", "http://127.0.0.1:9"}, "prometheus http://127.0.0.1:9: sum by (dynretry_cohort"},
		{[]string{"rollout", "status", "--config", cfg, "--prometheus", "http://127.0.0.1:9", "--window", "0s"}, "--window must be positive"},
		{[]string{"rollout", "status", "--config", cfg, "--traces", filepath.Join(t.TempDir(), "none")}, "no such file"},
		{[]string{"rollout", "status", "--config", filepath.Join(t.TempDir(), "none.yaml"), "--traces", cfg}, "reading the percentage"},
		{[]string{"rollout", "status", "--config", cfg, "--flagd", cfg, "--traces", cfg}, "none of the others"},
	} {
		_, err := execute(t, tc.args...)
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
}

// TestRolloutStatusPrometheus runs the dashboard test's workload
// (internal/promtest) with a real Prometheus scraping it, and checks that
// `rollout status --prometheus` sees the same cohorts as `--traces` on the
// workload's own traces: the same calls, failures, attempts, wasted
// attempts and classes, and a p95 that differs only by the duration
// histogram's bucket.
func TestRolloutStatusPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a workload and Prometheus in real time")
	}
	w := promtest.NewWorkload(t)
	prom := promtest.Start(t, w.MetricsAddr)
	prom.WaitScraped(t, time.Now())
	w.Run(t)
	prom.WaitScraped(t, w.End)
	cfg, _ := modelsCopy(t)

	fromTraces := statusOf(t, "--traces", w.Traces, "--config", cfg)
	fromProm := statusOf(t, "--prometheus", prom.URL, "--window", "1h", "--config", cfg)
	assert.Equal(t, fromTraces["percent"], fromProm["percent"])
	for _, c := range []string{"treatment", "control"} {
		tr := fromTraces["cohorts"].(map[string]any)[c].(map[string]any)
		pr := fromProm["cohorts"].(map[string]any)[c].(map[string]any)
		t.Logf("%s: traces %v", c, tr)
		t.Logf("%s: prometheus %v", c, pr)
		require.Positive(t, tr["calls"], c)
		for _, k := range []string{"calls", "failed_calls", "attempts", "wasted_attempts", "error_rate", "classes"} {
			assert.Equal(t, tr[k], pr[k], "%s %s", c, k)
		}
		assert.Zero(t, pr["runs"], "runs are not in the metrics")
		// Each call counts at its duration bucket's upper bound: at or above
		// the exact figure, and below the next bound (the buckets double).
		for _, k := range []string{"latency_p50_s", "latency_p95_s"} {
			exact, bucketed := tr[k].(float64), pr[k].(float64)
			assert.GreaterOrEqual(t, bucketed, exact, "%s %s", c, k)
			assert.Less(t, bucketed, 2*exact+0.01, "%s %s", c, k)
		}
	}
	checks := func(s map[string]any) map[string]any {
		m := map[string]any{}
		for _, c := range s["checks"].([]any) {
			m[c.(map[string]any)["name"].(string)] = c.(map[string]any)["treatment"]
		}
		return m
	}
	tc, pc := checks(fromTraces), checks(fromProm)
	assert.Equal(t, tc["error_rate"], pc["error_rate"])
	assert.Equal(t, tc["wasted_per_call"], pc["wasted_per_call"])
}
