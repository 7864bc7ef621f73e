package bench

import (
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
)

// TestSameSeedSameResult runs cells twice with the same seed and requires
// identical results, every figure of them: the scenario suite's goals are
// asserted on figures that must be a function of the seed, not of the order
// in which the scheduler runs goroutines woken at one virtual instant. The
// cells cover the provider's random faults (random-500s), an outage's
// probes, requests in transit (cold-burst) and Retriers sharing a store
// (fleet-8), for dynretry and the oracle (the peers' jitter comes from
// their libraries' unseeded generators).
func TestSameSeedSameResult(t *testing.T) {
	scenarios := map[string]Scenario{}
	for _, s := range Scenarios() {
		scenarios[s.Name] = s
	}
	policies := map[string]Policy{}
	for _, p := range Policies() {
		policies[p.Name] = p
	}
	for _, c := range []struct {
		scenario, policy string
		seed             uint64
	}{
		{"random-500s", "dynretry", 2},
		{"random-500s", "oracle", 2},
		{"outage-60s", "dynretry", 1},
		{"cold-burst", "dynretry", 1},
		{"fleet-8", "dynretry", 3},
	} {
		t.Run(c.scenario+"/"+c.policy, func(t *testing.T) {
			t.Parallel()
			s, p := scenarios[c.scenario], policies[c.policy]
			require.NotEmpty(t, s.Name, "no scenario %s", c.scenario)
			require.NotEmpty(t, p.Name, "no policy %s", c.policy)
			var runs [2]Cell
			for i := range runs {
				synctest.Test(t, func(t *testing.T) {
					var err error
					runs[i], err = RunCell(s, "", p, c.seed)
					require.NoError(t, err)
				})
			}
			require.NotZero(t, runs[0].Succeeded, "the cell ran no call")
			require.Equal(t, runs[0], runs[1], "seed %d twice", c.seed)
		})
	}
}
