package fleet

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/autopack/dynretry/bench"
	"github.com/autopack/dynretry/sim"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary be the fleet's processes.
func TestMain(m *testing.M) {
	if IsWorker(os.Args) {
		os.Exit(Worker(os.Args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestFleetSmall(t *testing.T) {
	cfg := Config{
		Sim: sim.Config{RPM: 2400, TPM: 1_440_000, Burst: 0.05, Latency: 50 * time.Millisecond},
		Workload: bench.Workload{Requests: 400, Concurrency: 4, Input: [2]int{50, 250}, Output: [2]int{200, 800},
			Deadline: [2]time.Duration{time.Minute, time.Minute}},
		Seed: 1,
	}
	for _, c := range []Case{
		{Name: "1 process", Processes: 1},
		{Name: "8 processes, each its own state", Processes: 8},
		{Name: "8 processes sharing Redis", Processes: 8, Redis: true},
		{Name: "8 processes sharing Redis, killed at 2s for 2s", Processes: 8, Redis: true, KillAt: 2 * time.Second, DownFor: 2 * time.Second},
	} {
		start := time.Now()
		r, err := Run(context.Background(), cfg, c)
		require.NoError(t, err)
		t.Logf("%s: %d/%d ok, %d attempts, wasted/ok %.3f, makespan %v bound %v x%.3f, rtt/attempt %.3f local %d conflicts %d failures %d rejected %v (took %v)",
			c.Name, r.Succeeded, r.Requests, r.Attempts, r.WastedPerSuccess(), r.Makespan, r.Bound, r.XBound(), r.RoundTripsPerAttempt(), r.Local, r.Conflicts, r.Failures, r.Rejected, time.Since(start))
	}
}
