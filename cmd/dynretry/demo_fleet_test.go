package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/internal/redistest"
	"github.com/autopack/dynretry/internal/testutil"
)

// TestMain lets the test binary stand in for dynretry when the demo
// re-executes itself as a fleet's worker.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "demo" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// The demo's runs in 3 processes: with the memory backend each paces alone,
// with Redis they share one state; either way the summary counts every run
// of every process, and says how many processes ran them.
func TestDemoFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo in real time, in several processes")
	}
	t.Setenv("DYNRETRY_CONFIG", "")
	t.Setenv("LOVABLE_DYNAMIC_RETRY_DELAYS", "")
	t.Setenv("DYNRETRY_DEMO_API_KEY", "sk-demo-fleet-canary-0123456789")
	const runs, processes = 6, 3

	check := func(t *testing.T, out string) {
		raw, err := os.ReadFile(filepath.Join(out, "summary.json"))
		require.NoError(t, err)
		var sum struct {
			Processes int `json:"processes"`
			Cohorts   map[string]struct {
				Runs, Calls int
			} `json:"cohorts"`
		}
		require.NoError(t, json.Unmarshal(raw, &sum), "%s", raw)
		assert.Equal(t, processes, sum.Processes)
		assert.Equal(t, runs, sum.Cohorts["treatment"].Runs+sum.Cohorts["control"].Runs)
		assert.Equal(t, 4*runs+runs/2, sum.Cohorts["treatment"].Calls+sum.Cohorts["control"].Calls, "4 calls a run, and the Gemini doctor's in every other run")
		parts, err := filepath.Glob(filepath.Join(out, "traces.*.jsonl"))
		require.NoError(t, err)
		assert.Empty(t, parts, "the workers' trace files are joined into traces.jsonl")
	}

	t.Run("memory", func(t *testing.T) {
		out := t.TempDir()
		var stdout, stderr testutil.SyncBuffer
		require.NoError(t, runDemo(context.Background(), demoFlags{out: out, runs: runs, percent: 50, seed: 1, processes: processes}, &stdout, &stderr), "%s", stderr.String())
		check(t, out)
	})

	t.Run("redis", func(t *testing.T) {
		srv := redistest.New(t)
		config := filepath.Join(t.TempDir(), "models.yaml")
		require.NoError(t, os.WriteFile(config, []byte("lovable_patterns:\n  p1_dynamic_retry_delays:\n    coordination:\n      backend: redis\n      redis_url: "+srv.URL()+"\n"), 0o644))
		t.Setenv("DYNRETRY_COORDINATION__CREDENTIAL_SECRET", "the demo fleet's shared secret")
		out := t.TempDir()
		var stdout, stderr testutil.SyncBuffer
		require.NoError(t, runDemo(context.Background(), demoFlags{out: out, runs: runs, percent: 50, seed: 1, processes: processes, config: config}, &stdout, &stderr), "%s", stderr.String())
		check(t, out)
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer c.Close()
		procs, err := c.Keys(context.Background(), "dynretry:*:p").Result()
		require.NoError(t, err)
		require.NotEmpty(t, procs)
		// One set per provider's credential; not every process calls
		// every provider (Gemini is in every other run), but each
		// calls OpenAI and Anthropic.
		most := int64(0)
		for _, k := range procs {
			n, err := c.ZCard(context.Background(), k).Result()
			require.NoError(t, err)
			most = max(most, n)
		}
		assert.Equal(t, int64(processes), most, "the processes met in Redis: %v", procs)
	})
}
