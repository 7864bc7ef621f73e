package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/autopack/dynretry/sim"
)

// A Report is everything a run of TestScenarios measured, written to
// BENCH_REPORT for cmd/benchmd to render as BENCHMARKS.md.
type Report struct {
	// Race reports that the run had the race detector on.
	Race bool `json:"race"`
	// Scenarios describe the scenarios run, with their seeds.
	Scenarios []ScenarioInfo `json:"scenarios"`
	// Policies describe the policies.
	Policies []PolicyInfo `json:"policies"`
	// Rows are the medians over seeds per scenario (and case) × policy.
	Rows []Cell `json:"rows"`
	// Cells are every run.
	Cells []Cell `json:"cells"`
	// Goals are dynretry's goals, evaluated.
	Goals []Goal `json:"goals"`
}

// ScenarioInfo describes a scenario for the report.
type ScenarioInfo struct {
	Name     string   `json:"name"`
	About    string   `json:"about"`
	Provider string   `json:"provider"`
	Workload string   `json:"workload"`
	Cases    []string `json:"cases,omitempty"`
	Seeds    []uint64 `json:"seeds"`
}

// PolicyInfo describes a policy for the report.
type PolicyInfo struct {
	Name    string  `json:"name"`
	Dialect Dialect `json:"dialect"`
	About   string  `json:"about"`
}

// Info describes s, run with seeds.
func (s Scenario) Info(seeds []uint64) ScenarioInfo {
	var cases []string
	for _, c := range s.Cases {
		cases = append(cases, string(c))
	}
	return ScenarioInfo{Name: s.Name, About: s.About, Provider: describeSim(s.Sim),
		Workload: describeWorkload(s.Workload), Cases: cases, Seeds: seeds}
}

func describeSim(c sim.Config) string {
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	if c.TPM > 0 {
		add("RPM %d, TPM %d", c.RPM, c.TPM)
	} else {
		add("RPM %d, TPM unlimited", c.RPM)
	}
	if c.Burst != 0 {
		add("buckets of %g min of the limits (%g requests)", math.Round(c.Burst*1e4)/1e4, math.Round(float64(c.RPM)*c.Burst*1e3)/1e3)
	}
	add("latency %s", latency(c))
	if c.Transit > 0 {
		add("network %s each way", fmtDur(c.Transit))
	}
	if c.HintMode != "" {
		add("hints %s", c.HintMode)
	}
	if c.NoRateHeaders {
		add("no rate-limit headers")
	}
	if c.BlockAfter > 0 {
		add("blocked for %s after %d calls", fmtDur(c.BlockFor), c.BlockAfter)
	}
	if c.ErrorRate > 0 {
		add("500s %g%%", c.ErrorRate*100)
	}
	for _, w := range c.Overloads {
		add("overloaded %s–%s", fmtDur(w.Start), fmtDur(w.End))
	}
	if c.QuotaAfter > 0 {
		add("quota after %d calls", c.QuotaAfter)
	}
	for _, st := range c.Capacity {
		add("limits ×%g from %s", st.Factor, fmtDur(st.At))
	}
	return strings.Join(parts, "; ")
}

func describeWorkload(w Workload) string {
	dl := fmtDur(w.Deadline[0])
	if w.Deadline[1] != w.Deadline[0] {
		dl = fmtDur(w.Deadline[0]) + "–" + fmtDur(w.Deadline[1])
	}
	clients := ""
	if w.clients() > 1 {
		clients = fmt.Sprintf("%d clients × ", w.clients())
	}
	arrivals := ""
	if w.Every > 0 {
		arrivals = fmt.Sprintf("; one arrives every %s", fmtDur(w.Every))
	}
	return fmt.Sprintf("%d calls, %s%d workers; %d–%d input + %d–%d output tokens; deadline %s%s",
		w.Requests, clients, w.Concurrency, w.Input[0], w.Input[1], w.Output[0], w.Output[1], dl, arrivals)
}

// fmtDur formats d as Go does, without a trailing "0s" after minutes:
// "5m", "2s", "1m30s".
func fmtDur(d time.Duration) string {
	s := d.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		return t + "m"
	}
	return s
}

// Rows returns the median row of each scenario (and case) × policy, in the
// order the cells first appear.
func Rows(cells []Cell) []Cell {
	type key struct{ label, policy string }
	by := map[key][]Cell{}
	var order []key
	for _, c := range cells {
		k := key{c.Label(), c.Policy}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], c)
	}
	rows := make([]Cell, len(order))
	for i, k := range order {
		rows[i] = Median(by[k])
	}
	return rows
}

// FileRows returns the rows of the benchmark file: one per scenario ×
// policy. For a scenario with cases (lying-retry-after) the row is the
// policy's worst case: the most failed calls plus sleeps past a deadline,
// then the largest makespan ratio.
func FileRows(rows []Cell) []Result {
	type key struct{ scenario, policy string }
	best := map[key]Cell{}
	var order []key
	for _, r := range rows {
		k := key{r.Scenario, r.Policy}
		cur, ok := best[k]
		if !ok {
			order = append(order, k)
			best[k] = r
			continue
		}
		bad := func(c Cell) float64 { return float64(c.Failed + c.SleepsPastDeadline) }
		if bad(r) > bad(cur) || (bad(r) == bad(cur) && r.XBound > cur.XBound) {
			best[k] = r
		}
	}
	out := make([]Result, len(order))
	for i, k := range order {
		out[i] = best[k].Result
	}
	return out
}

// WriteReport writes r as JSON to path.
func WriteReport(path string, r Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// SortCells orders cells as the suite lists them: by scenario, case,
// policy, then seed.
func SortCells(cells []Cell, scenarios []Scenario, policies []Policy) {
	rank := map[string]int{}
	for i, s := range scenarios {
		rank["s:"+s.Name] = i
		for j, c := range s.Cases {
			rank["c:"+string(c)] = j + 1
		}
	}
	for i, p := range policies {
		rank["p:"+p.Name] = i
	}
	slices.SortStableFunc(cells, func(a, b Cell) int {
		return cmp.Or(
			cmp.Compare(rank["s:"+a.Scenario], rank["s:"+b.Scenario]),
			cmp.Compare(rank["c:"+a.Case], rank["c:"+b.Case]),
			cmp.Compare(rank["p:"+a.Policy], rank["p:"+b.Policy]),
			cmp.Compare(a.Seed, b.Seed),
		)
	})
}
