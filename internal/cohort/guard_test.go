package cohort_test

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/internal/cohort"
	"github.com/autopack/dynretry/rollout"
)

// stats builds a cohort of n calls: failed of them fail, wasted calls
// waste one attempt each, and call i (of the others) lasts base·(1 +
// i/n) seconds, so the p95 of the successes is about 1.95·base.
func stats(n, failed, wasted int, base float64) *cohort.Stats {
	s := &cohort.Stats{Calls: n, FailedCalls: failed, Attempts: n + wasted, WastedAttempts: wasted, WastedSumSq: float64(wasted), Runs: n / 4}
	for i := range n {
		s.Durations = append(s.Durations, base*(1+float64(i)/float64(n)))
		s.OK = append(s.OK, i%max(1, n/max(1, failed)) != 0 || i/max(1, n/max(1, failed)) >= failed)
	}
	if n > 0 {
		s.ErrorRate = float64(failed) / float64(n)
	}
	return s
}

func summary(t, c *cohort.Stats) *cohort.Summary {
	return &cohort.Summary{Cohorts: map[rollout.Cohort]*cohort.Stats{rollout.Treatment: t, rollout.Control: c}}
}

func results(v cohort.Verdict) map[string]cohort.Result {
	m := map[string]cohort.Result{}
	for _, c := range v.Checks {
		m[c.Name] = c.Result
	}
	return m
}

func TestStatsHelper(t *testing.T) {
	s := stats(1000, 30, 100, 1)
	n := 0
	for _, ok := range s.OK {
		if !ok {
			n++
		}
	}
	require.Equal(t, 30, n)
}

func TestEvaluate(t *testing.T) {
	better := summary(stats(3000, 30, 100, 1), stats(3000, 150, 900, 1))
	for _, tc := range []struct {
		name    string
		s       *cohort.Summary
		percent float64
		want    cohort.Recommendation
		next    float64
		checks  map[string]cohort.Result
		reason  string
	}{
		{"no data", summary(&cohort.Stats{}, &cohort.Stats{}), 10, cohort.Hold, 10,
			map[string]cohort.Result{"error_rate": cohort.NoData, "wasted_per_call": cohort.NoData, "p95_time_to_answer": cohort.NoData}, "too little data: treatment has 0 calls and control 0, each needs 200"},
		{"too little data, however good", summary(stats(150, 0, 0, 1), stats(5000, 500, 5000, 1)), 10, cohort.Hold, 10, nil, "treatment has 150 calls"},
		{"better: 10 → 50", better, 10, cohort.Advance, 50,
			map[string]cohort.Result{"error_rate": cohort.Pass, "wasted_per_call": cohort.Pass, "p95_time_to_answer": cohort.Pass}, "advance from 10% to 50%"},
		{"better: 50 → 100", better, 50, cohort.Advance, 100, nil, "advance from 50% to 100%"},
		{"between stages: to the next", better, 25, cohort.Advance, 50, nil, ""},
		{"complete", better, 100, cohort.Hold, 100, nil, "complete"},
		{"start", summary(&cohort.Stats{}, stats(500, 20, 20, 1)), 0, cohort.Advance, 10, nil, "starting it at 10%"},
		{"more errors: rollback", summary(stats(3000, 300, 100, 1), stats(3000, 150, 100, 1)), 50, cohort.Rollback, 0,
			map[string]cohort.Result{"error_rate": cohort.Regression, "wasted_per_call": cohort.Pass}, "return to 0%"},
		{"more waste: rollback", summary(stats(3000, 30, 3000, 1), stats(3000, 30, 300, 1)), 10, cohort.Rollback, 0,
			map[string]cohort.Result{"wasted_per_call": cohort.Regression}, ""},
		{"slower: rollback", summary(stats(3000, 30, 100, 2), stats(3000, 30, 100, 1)), 10, cohort.Rollback, 0,
			map[string]cohort.Result{"p95_time_to_answer": cohort.Regression, "error_rate": cohort.Pass}, ""},
		{"slower within tolerance: pass", summary(stats(3000, 15, 100, 1.05), stats(3000, 30, 100, 1)), 10, cohort.Advance, 50,
			map[string]cohort.Result{"p95_time_to_answer": cohort.Pass}, ""},
		{"control fails often: p95 unbounded", summary(stats(3000, 30, 100, 5), stats(3000, 600, 1000, 1)), 10, cohort.Advance, 50,
			map[string]cohort.Result{"p95_time_to_answer": cohort.Pass}, "its p95 is unbounded"},
		{"regression found at 0%: hold", summary(stats(3000, 300, 100, 1), stats(3000, 150, 100, 1)), 0, cohort.Hold, 0, nil, "find its cause"},
		{"equal, small: inconclusive", summary(stats(300, 15, 30, 1), stats(300, 15, 30, 1)), 10, cohort.Hold, 10,
			map[string]cohort.Result{"error_rate": cohort.Inconclusive}, "not yet conclusive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := cohort.Evaluate(tc.s, tc.percent, cohort.Policy{})
			assert.Equal(t, tc.want, v.Recommendation, "%s", strings.Join(v.Reasons, "\n"))
			assert.Equal(t, tc.next, v.Next)
			assert.Equal(t, tc.percent, v.Percent)
			got := results(v)
			for name, want := range tc.checks {
				assert.Equal(t, want, got[name], "%s: %s", name, strings.Join(v.Reasons, "\n"))
			}
			require.Len(t, v.Reasons, 4, "the verdict's reason and one per check")
			assert.Contains(t, strings.Join(v.Reasons, "\n"), tc.reason)
			_, err := json.Marshal(v)
			require.NoError(t, err, "unbounded figures marshal")
		})
	}
}

// TestEvaluateNeverAdvancesWithoutData: whatever the percentage, a summary
// with a cohort short of calls never advances (0% excepted: it has no
// treatment).
func TestEvaluateNeverAdvancesWithoutData(t *testing.T) {
	for _, percent := range []float64{5, 10, 50, 99} {
		for _, s := range []*cohort.Summary{
			summary(&cohort.Stats{}, &cohort.Stats{}),
			summary(stats(199, 0, 0, 1), stats(10000, 1000, 1000, 1)),
			summary(stats(10000, 0, 0, 1), stats(199, 100, 100, 1)),
			{Cohorts: map[rollout.Cohort]*cohort.Stats{}},
		} {
			v := cohort.Evaluate(s, percent, cohort.Policy{})
			assert.Equal(t, cohort.Hold, v.Recommendation, "%v%%: %v", percent, v.Reasons)
			assert.False(t, slices.ContainsFunc(v.Checks, func(c cohort.Check) bool { return c.Result == cohort.Pass }))
		}
	}
}

func TestPolicyTolerances(t *testing.T) {
	s := summary(stats(3000, 60, 100, 1), stats(3000, 30, 100, 1)) // +1 point of errors
	assert.NotEqual(t, cohort.Advance, cohort.Evaluate(s, 10, cohort.Policy{}).Recommendation)
	v := cohort.Evaluate(s, 10, cohort.Policy{MaxErrorIncrease: 0.05})
	assert.Equal(t, cohort.Advance, v.Recommendation, "%v", v.Reasons)
	assert.Equal(t, cohort.Number(0.05), v.Checks[0].Tolerance)
	v = cohort.Evaluate(summary(stats(300, 3, 10, 1), stats(300, 30, 100, 1)), 10, cohort.Policy{MinCalls: 400})
	assert.Equal(t, cohort.Hold, v.Recommendation)
}

func TestNumberJSON(t *testing.T) {
	b, err := json.Marshal([]cohort.Number{1.5, cohort.Number(math.Inf(1)), cohort.Number(math.NaN())})
	require.NoError(t, err)
	assert.JSONEq(t, `[1.5, null, null]`, string(b))
}

func TestNextStage(t *testing.T) {
	for in, want := range map[float64]float64{0: 10, 5: 10, 10: 50, 49.9: 50, 50: 100, 100: 100} {
		assert.Equal(t, want, cohort.NextStage(in), "%v", in)
	}
}
