package bench

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/sim"
)

// TestScenarios runs every scenario (and case) × policy × seed, each in its
// own synctest bubble against a fresh simulated provider, then prints the
// table of medians, writes BENCH_OUT (the benchmark file of design.md) and
// BENCH_REPORT (everything, for cmd/benchmd) when set, checks the harness
// itself, and evaluates dynretry's goals as subtests goal/<scenario>.
func TestScenarios(t *testing.T) {
	var (
		mu    sync.Mutex
		cells []Cell
		infos []ScenarioInfo
	)
	policies := Policies()
	t.Run("run", func(t *testing.T) {
		for _, s := range Scenarios() {
			infos = append(infos, s.Info(s.Seeds()))
			modes := s.Cases
			if len(modes) == 0 {
				modes = []sim.HintMode{""}
			}
			for _, mode := range modes {
				for _, p := range policies {
					for _, seed := range s.Seeds() {
						name := s.Name
						if mode != "" {
							name += "/" + string(mode)
						}
						t.Run(fmt.Sprintf("%s/%s/seed-%d", name, p.Name, seed), func(t *testing.T) {
							t.Parallel()
							synctest.Test(t, func(t *testing.T) {
								c, err := RunCell(s, mode, p, seed)
								require.NoError(t, err)
								mu.Lock()
								cells = append(cells, c)
								mu.Unlock()
							})
						})
					}
				}
			}
		}
	})
	if t.Failed() {
		return
	}
	SortCells(cells, Scenarios(), policies)
	rows := Rows(cells)

	var table strings.Builder
	require.NoError(t, WriteTable(&table, rows))
	mode := "medians over seeds 1–5"
	if raceEnabled {
		mode = "race detector on: seed 1 only, random-500s seeds 1–5"
	}
	t.Logf("dynretry vs peers (%s):\n%s", mode, table.String())

	goals := Goals(cells)
	if path := os.Getenv("BENCH_OUT"); path != "" {
		require.NoError(t, WriteFile(path, FileRows(rows)), "BENCH_OUT")
	}
	if path := os.Getenv("BENCH_REPORT"); path != "" {
		var pinfo []PolicyInfo
		for _, p := range policies {
			pinfo = append(pinfo, PolicyInfo{Name: p.Name, Dialect: p.Dialect, About: p.About})
		}
		r := Report{Race: raceEnabled, Scenarios: infos, Policies: pinfo, Rows: rows, Cells: cells, Goals: goals}
		require.NoError(t, WriteReport(path, r), "BENCH_REPORT")
	}

	t.Run("harness", func(t *testing.T) { checkHarness(t, cells) })

	t.Run("goal", func(t *testing.T) {
		for _, g := range goals {
			t.Run(g.Scenario, func(t *testing.T) {
				for _, c := range g.Checks {
					t.Logf("%s: %s [%s]", g.Scenario, c, map[bool]string{true: "ok", false: "NOT MET"}[c.OK])
				}
				assert.True(t, g.Met(), "%s", g.Failures())
			})
		}
	})
}

// checkHarness asserts what must hold of any run, whatever the policies
// do: counts add up, no policy beats the lower bound, and the oracle's copy
// of the provider's buckets is exact (it is never rate limited).
func checkHarness(t *testing.T, cells []Cell) {
	for _, c := range cells {
		name := fmt.Sprintf("%s/%s/seed-%d", c.Label(), c.Policy, c.Seed)
		assert.Equal(t, c.Requests, c.Succeeded+c.Failed, "%s: %d succeeded + %d failed ≠ the calls", name, c.Succeeded, c.Failed)
		// The provider's successes include every call's success; a reply
		// the provider wrote as the caller's deadline passed counts there only.
		assert.GreaterOrEqual(t, c.WastedAttempts, 0, "%s: wasted attempts", name)
		assert.LessOrEqual(t, c.WastedAttempts, c.Attempts-c.Succeeded, "%s: %d attempts, %d wasted, %d succeeded do not add up", name, c.Attempts, c.WastedAttempts, c.Succeeded)
		if c.Failed == 0 {
			assert.GreaterOrEqual(t, c.MakespanS, c.LowerBoundS-1e-6, "%s: the makespan beats the lower bound %.3fs: the bound is wrong", name, c.LowerBoundS)
		}
		if c.Policy == "oracle" {
			assert.Zero(t, c.Rejected[sim.ReasonRateLimited], "%s: the oracle was rate limited: its copy of the buckets is wrong", name)
		}
	}
}
