package fleet

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/autopack/dynretry/bench"
	"github.com/autopack/dynretry/internal/redistest"
	"github.com/autopack/dynretry/sim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary be the fleet's processes.
func TestMain(m *testing.M) {
	if IsWorker(os.Args) {
		os.Exit(Worker(os.Args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// SmallConfig is the fleet benchmark made small enough to run under make
// test (about 8 s a case): 400 calls, 8 processes of 4 workers, against a
// provider admitting 40 calls a second.
var smallConfig = Config{
	Sim: sim.Config{RPM: 2400, TPM: 1_440_000, Burst: 0.05, Latency: 50 * time.Millisecond},
	Workload: bench.Workload{Requests: 400, Concurrency: 4, Input: [2]int{50, 250}, Output: [2]int{200, 800},
		Deadline: [2]time.Duration{time.Minute, time.Minute}},
	Seed: 1,
}

// TestFleetGoals runs the fleet benchmark small, in real time, and asserts
// its goals: 8 processes sharing Redis pace as one (no call fails that one
// process would not, at most 0.05 wasted attempts per success, a makespan
// within 1.15 × the bound), and Redis killed mid-run and restarted fails no
// call. 8 processes each on its own state are measured too: they must do
// markedly worse, or the benchmark would not tell the stores apart.
func TestFleetGoals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 4 fleets of real processes in real time")
	}
	rs, err := RunAll(context.Background(), smallConfig, Cases(8, 2*time.Second, 2*time.Second))
	require.NoError(t, err)
	for _, r := range rs {
		t.Logf("%s: %d/%d ok, %d attempts (%.3f wasted per success), makespan %.2fs = %.3f × bound, %.2f Redis round trips per attempt, %d verdicts local",
			r.Name, r.Succeeded, r.Requests, r.Attempts, r.WastedPerSuccess(), r.Makespan.Seconds(), r.XBound(), r.RoundTripsPerAttempt(), r.Local)
	}
	for _, c := range Judge(rs) {
		assert.True(t, c.OK, "%s: %s = %.3f, want ≤ %.3f", c.Case, c.What, c.Got, c.Want)
	}
	alone := rs[1]
	assert.Greater(t, alone.WastedPerSuccess(), 0.5, "processes that share nothing waste attempts")
	killed := rs[3]
	assert.Positive(t, killed.Local, "the outage was felt: verdicts from local state")
	assert.Zero(t, killed.Failed)
}

// The cost cases run, and a store answers as many attempts as asked.
func TestCost(t *testing.T) {
	srv := redistest.New(t)
	for _, c := range []CostCase{
		{Name: "memory", Stores: 1, Callers: 8, Rate: 400, Duration: 500 * time.Millisecond},
		{Name: "redis", Stores: 2, Callers: 8, Rate: 400, Redis: true, Duration: 500 * time.Millisecond},
	} {
		r, err := Cost(context.Background(), c, srv.URL())
		require.NoError(t, err)
		assert.InDelta(t, 400, r.PerSecond, 80, c.Name)
		assert.Positive(t, r.P50)
		assert.GreaterOrEqual(t, r.P99, r.P50)
		if c.Redis {
			assert.Positive(t, r.RoundTrips)
			assert.Positive(t, r.ScriptMicros, "Redis's own count of the script's time")
		} else {
			assert.Zero(t, r.RoundTrips)
		}
	}
}
