package cohort

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/autopack/dynretry/rollout"
)

// inWindow is the PromQL for what the cumulative series m gained in the
// window w before the evaluation time: for each series, its last value in
// the window minus its last value before the window (5 minutes back), or
// its last value when it began within the window; never below 0 (a process
// that restarted within the window counts from its restart).
func inWindow(m, w string) string {
	return fmt.Sprintf("clamp_min((last_over_time(%[1]s[%[2]s]) - last_over_time(%[1]s[5m] offset %[2]s)) or last_over_time(%[1]s[%[2]s]), 0)", m, w)
}

// The queries FromPrometheus makes; %s is inWindow's window.
var promQueries = struct{ calls, attempts, wasted, answered, ended string }{
	calls:    `sum by (dynretry_cohort, dynretry_outcome, dynretry_class) (` + inWindow("dynretry_calls_total", "%[1]s") + `)`,
	attempts: `sum by (dynretry_cohort, dynretry_decision, dynretry_class) (` + inWindow("dynretry_attempts_total", "%[1]s") + `)`,
	wasted:   `sum by (dynretry_cohort, le) (` + inWindow("dynretry_call_wasted_attempts_bucket", "%[1]s") + `)`,
	answered: `sum by (dynretry_cohort, le) (` + inWindow(`gen_ai_client_operation_duration_seconds_bucket{error_type=""}`, "%[1]s") + `)`,
	ended:    `sum by (dynretry_cohort, le) (` + inWindow("gen_ai_client_operation_duration_seconds_bucket", "%[1]s") + `)`,
}

// FromPrometheus compares the cohorts from the metrics a Prometheus server
// (its HTTP API at url) scraped: the calls that ended in the window before
// at, per cohort. It reads dynretry_calls_total (calls, failures, classes),
// dynretry_attempts_total (attempts, wasted attempts, retries and
// give-ups), dynretry_call_wasted_attempts (the spread of wasted attempts
// per call, exact up to 10) and gen_ai_client_operation_duration_seconds
// (the calls' durations). A series counts what it gained in the window: its
// last value in the window minus its value before (0 for one that began in
// it; a process restarted within the window counts from its restart).
//
// The metrics know each call's duration only to its histogram bucket
// (telemetry.DurationBuckets): each call counts at its bucket's upper
// bound, in both cohorts alike, so the p95 check compares the bucketed
// distributions. Runs are not in the metrics (a run id is not a label):
// Runs is 0. The timeline is empty.
//
// No call of either cohort in the window is ErrNoCalls; a server that
// cannot be reached or refuses a query is an error naming the query.
func FromPrometheus(ctx context.Context, url string, window time.Duration, at time.Time) (*Summary, error) {
	client, err := promapi.NewClient(promapi.Config{Address: url})
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", url, err)
	}
	api := promv1.NewAPI(client)
	w := model.Duration(window).String()
	query := func(q string) (model.Vector, error) {
		q = fmt.Sprintf(q, w)
		v, _, _, err := api.Query(ctx, q, at)
		if err != nil {
			return nil, fmt.Errorf("prometheus %s: %s: %w", url, q, err)
		}
		vec, ok := v.(model.Vector)
		if !ok {
			return nil, fmt.Errorf("prometheus %s: %s: a %s, not a vector", url, q, v.Type())
		}
		return vec, nil
	}
	s := Empty()
	// each calls f with every sample of v of a known cohort, its count
	// rounded to a whole number.
	each := func(v model.Vector, f func(c *Stats, m model.Metric, n int)) {
		for _, x := range v {
			if c := s.Cohorts[rollout.Cohort(x.Metric["dynretry_cohort"])]; c != nil {
				f(c, x.Metric, int(math.Round(float64(x.Value))))
			}
		}
	}

	calls, err := query(promQueries.calls)
	if err != nil {
		return nil, err
	}
	each(calls, func(c *Stats, m model.Metric, n int) {
		c.Calls += n
		if m["dynretry_outcome"] == "failure" {
			c.FailedCalls += n
			if class := string(m["dynretry_class"]); class != "" {
				c.class(class).FailedCalls += n
			}
		}
	})
	attempts, err := query(promQueries.attempts)
	if err != nil {
		return nil, err
	}
	each(attempts, func(c *Stats, m model.Metric, n int) {
		c.Attempts += n
		decision := m["dynretry_decision"]
		if decision == "success" {
			return
		}
		c.WastedAttempts += n
		if class := string(m["dynretry_class"]); class != "" {
			cs := c.class(class)
			cs.Failures += n
			switch decision {
			case "retry":
				cs.Retries += n
			case "give_up":
				cs.GiveUps += n
			}
		}
	})
	wasted, err := query(promQueries.wasted)
	if err != nil {
		return nil, err
	}
	for cohort, bs := range buckets(wasted) {
		for _, b := range bs {
			v := min(b.le, WastedCap)
			s.Cohorts[cohort].WastedSumSq += float64(b.n) * v * v
		}
	}
	answered, err := query(promQueries.answered)
	if err != nil {
		return nil, err
	}
	ended, err := query(promQueries.ended)
	if err != nil {
		return nil, err
	}
	ok := buckets(answered)
	for cohort, all := range buckets(ended) {
		c := s.Cohorts[cohort]
		for _, b := range all {
			good := 0
			if i := slices.IndexFunc(ok[cohort], func(o bucket) bool { return o.le == b.le }); i >= 0 {
				good = ok[cohort][i].n
			}
			for i := range b.n {
				c.Durations = append(c.Durations, b.le)
				c.OK = append(c.OK, i < good)
			}
		}
	}
	if err := s.finish(); err != nil {
		return nil, err
	}
	return s, nil
}

// WastedCap stands for the wasted attempts of a call above the last finite
// bucket of the wasted-attempts histogram (telemetry.WastedBuckets).
const WastedCap = 100

// bucket is one bucket of a histogram: the calls whose value is at most le
// and above the bucket before.
type bucket struct {
	le float64
	n  int
}

// buckets turns cumulative histogram buckets (by dynretry_cohort and le)
// into each cohort's buckets, in order.
func buckets(v model.Vector) map[rollout.Cohort][]bucket {
	out := map[rollout.Cohort][]bucket{}
	for _, x := range v {
		cohort := rollout.Cohort(x.Metric["dynretry_cohort"])
		if cohort != rollout.Treatment && cohort != rollout.Control {
			continue
		}
		le, err := strconv.ParseFloat(string(x.Metric["le"]), 64)
		if err != nil {
			continue
		}
		out[cohort] = append(out[cohort], bucket{le, int(math.Round(float64(x.Value)))})
	}
	for cohort, bs := range out {
		slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
		prev := 0
		for i := range bs {
			cum := bs[i].n
			bs[i].n = max(0, cum-prev)
			prev = max(prev, cum)
		}
		out[cohort] = bs
	}
	return out
}
