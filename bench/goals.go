package bench

import (
	"fmt"
	"strings"
)

// A Check is one measured goal of dynretry in one scenario.
type Check struct {
	// What names the measure.
	What string `json:"what"`
	// Got is the measure: the median over seeds for ratios, the worst seed
	// for counts that must be zero (see Goals).
	Got float64 `json:"got"`
	// Max is the most the goal allows.
	Max float64 `json:"max"`
	// Unit formats Got and Max: "×bound", "per success", "per call", "" for
	// counts, "s".
	Unit string `json:"unit,omitempty"`
	// OK reports Got ≤ Max.
	OK bool `json:"ok"`
}

// String reads "makespan 1.37 ×bound, want ≤ 1.05".
func (c Check) String() string {
	f := func(v float64) string {
		switch c.Unit {
		case "":
			return fmt.Sprintf("%.0f", v)
		case "s":
			return fmt.Sprintf("%.3fs", v)
		}
		return fmt.Sprintf("%.3f %s", v, c.Unit)
	}
	return fmt.Sprintf("%s %s, want ≤ %s", c.What, f(c.Got), f(c.Max))
}

// A Goal is dynretry's goals in one scenario (or case).
type Goal struct {
	// Scenario is the row's label: the scenario, and its case.
	Scenario string  `json:"scenario"`
	Checks   []Check `json:"checks"`
}

// Met reports whether every check holds.
func (g Goal) Met() bool {
	for _, c := range g.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Failures returns the checks that do not hold, one per line, each
// prefixed with the scenario: "steady-overload: makespan 1.370 ×bound,
// want ≤ 1.050".
func (g Goal) Failures() string {
	var lines []string
	for _, c := range g.Checks {
		if !c.OK {
			lines = append(lines, g.Scenario+": "+c.String())
		}
	}
	return strings.Join(lines, "\n")
}

// Goals evaluates dynretry's goals from the cells of a run (every seed).
// Ratios (makespan over bound, waste per success, attempts per call) are
// judged on the median over seeds; counts that must be zero or within an
// allowance (failed calls, sleeps past a deadline, late give-ups, quota
// retries, outage probes, attempts after a block) and the longest lag after
// a refusal on the worst seed.
//
// A makespan goal also requires every call to succeed: the bound is the
// time to complete the whole workload, and the makespan counts successful
// calls only, so a policy that gave up on calls would otherwise look fast.
func Goals(cells []Cell) []Goal {
	by := map[string][]Cell{}
	var order []string
	for _, c := range cells {
		if c.Policy != "dynretry" {
			continue
		}
		if _, ok := by[c.Label()]; !ok {
			order = append(order, c.Label())
		}
		by[c.Label()] = append(by[c.Label()], c)
	}
	var goals []Goal
	for _, label := range order {
		cs := by[label]
		med := Median(cs)
		worst := func(get func(Cell) float64) float64 {
			w := get(cs[0])
			for _, c := range cs[1:] {
				w = max(w, get(c))
			}
			return w
		}
		check := func(what string, got, max float64, unit string) Check {
			return Check{What: what, Got: got, Max: max, Unit: unit, OK: got <= max}
		}
		failed := check("failed calls", worst(func(c Cell) float64 { return float64(c.Failed) }), 0, "")
		ratio := func(max float64) Check {
			return check("makespan", med.XBound, max, "×bound")
		}
		waste := func(max float64) Check {
			return check("wasted attempts", med.WastedPerOK, max, "per success")
		}
		past := check("sleeps past a deadline", worst(func(c Cell) float64 { return float64(c.SleepsPastDeadline) }), 0, "")
		// worstOver is the seed whose count exceeds its allowance most.
		worstOver := func(count, allowed func(Cell) int) Cell {
			w := cs[0]
			for _, c := range cs[1:] {
				if count(c)-allowed(c) > count(w)-allowed(w) {
					w = c
				}
			}
			return w
		}
		outageProbes := func() Check {
			w := worstOver(func(c Cell) int { return c.OutageProbes }, func(c Cell) int { return c.OutageProbeLimit })
			return check("outage probes (one per 5 s allowed)", float64(w.OutageProbes), float64(w.OutageProbeLimit), "")
		}
		blockedProbes := func(what string) Check {
			w := worstOver(func(c Cell) int { return c.BlockedProbes }, func(c Cell) int { return c.BlockedProbeLimit })
			return check(what, float64(w.BlockedProbes), float64(w.BlockedProbeLimit), "")
		}
		g := Goal{Scenario: label}
		switch med.Scenario {
		case "steady-overload":
			g.Checks = []Check{failed, ratio(1.05), waste(0.02)}
		case "no-hints":
			g.Checks = []Check{failed, ratio(1.15), waste(0.10)}
		case "random-500s":
			g.Checks = []Check{failed, check("attempts", med.AttemptsPerCall, 1.06, "per call")}
		case "overload-burst":
			g.Checks = []Check{failed, outageProbes()}
		case "outage-5s", "outage-30s", "outage-60s":
			g.Checks = []Check{failed, ratio(1.10), outageProbes()}
		case "blind", "long-hint-lie", "blind-burst", "blind-burst-200",
			"burst-no-headers", "burst-no-headers-200", "cold-burst-no-headers":
			// Issue 7's blind goals; every scenario without rate-limit
			// headers shares them.
			g.Checks = []Check{failed, ratio(1.15), waste(0.10)}
		case "long-hint-true":
			g.Checks = []Check{check("longest a call went on after its first refusal", worst(func(c Cell) float64 { return c.RefusalLagS }), 15, "s"),
				blockedProbes("attempts after the block (one per minute allowed)")}
		case "lying-retry-after":
			g.Checks = []Check{past, failed, ratio(1.10)}
		case "quota-exhausted":
			g.Checks = []Check{check("retries of a quota error", worst(func(c Cell) float64 { return float64(c.QuotaRetries) }), 0, ""),
				blockedProbes("wasted attempts after the quota error (one per minute allowed)")}
		case "short-deadlines":
			g.Checks = []Check{past, check("calls told a wait past their deadline that did not give up at once",
				worst(func(c Cell) float64 { return float64(c.LateGiveUps) }), 0, "")}
		case "capacity-step":
			g.Checks = []Check{failed, ratio(1.10)}
		case "fleet-8", "cold-burst":
			g.Checks = []Check{failed, ratio(1.10), waste(0.05)}
		default:
			continue
		}
		goals = append(goals, g)
	}
	return goals
}
