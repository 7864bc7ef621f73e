package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// A Result is one row of the benchmark file, as design.md fixes it.
type Result struct {
	Scenario string `json:"scenario"`
	Policy   string `json:"policy"`
	// Requests is the number of calls.
	Requests int `json:"requests"`
	// Succeeded and Failed count calls by how they ended.
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// Attempts counts the requests the provider received.
	Attempts int `json:"attempts"`
	// WastedAttempts counts the attempts that did not succeed.
	WastedAttempts int `json:"wasted_attempts"`
	// MakespanS is the time from the start until the last successful call
	// completed, seconds.
	MakespanS float64 `json:"makespan_s"`
	// LowerBoundS is the shortest makespan any policy could reach
	// (LowerBound), seconds.
	LowerBoundS float64 `json:"lower_bound_s"`
	// P50S and P99S are quantiles of the successful calls' latency, from
	// the call's start (including the time it was held) to its end.
	P50S float64 `json:"p50_s"`
	P99S float64 `json:"p99_s"`
	// SleepsPastDeadline counts calls that were waiting between attempts
	// when their deadline passed (see record.sleptPastDeadline).
	SleepsPastDeadline int `json:"sleeps_past_deadline"`
}

// File is the benchmark file: BENCH_OUT's content.
type File struct {
	Results []Result `json:"results"`
}

// WriteFile writes the benchmark file to path.
func WriteFile(path string, rows []Result) error {
	b, err := json.MarshalIndent(File{Results: rows}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// median returns the median of xs (the mean of the middle two when even).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Median returns the cell whose every measure is the median of that measure
// over cells (the cells of one scenario, case and policy over seeds). Each
// field is taken separately, so the fields of the median cell need not add
// up (succeeded + failed may differ from requests with an even count of
// seeds; with an odd count each field is one seed's value).
func Median(cells []Cell) Cell {
	if len(cells) == 0 {
		return Cell{}
	}
	m := cells[0]
	m.Seed = 0
	m.Rejected = nil
	f := func(get func(Cell) float64) float64 {
		xs := make([]float64, len(cells))
		for i, c := range cells {
			xs[i] = get(c)
		}
		return median(xs)
	}
	i := func(get func(Cell) int) int {
		return int(f(func(c Cell) float64 { return float64(get(c)) }) + 0.5)
	}
	m.Requests = i(func(c Cell) int { return c.Requests })
	m.Succeeded = i(func(c Cell) int { return c.Succeeded })
	m.Failed = i(func(c Cell) int { return c.Failed })
	m.Attempts = i(func(c Cell) int { return c.Attempts })
	m.WastedAttempts = i(func(c Cell) int { return c.WastedAttempts })
	m.SleepsPastDeadline = i(func(c Cell) int { return c.SleepsPastDeadline })
	m.Stopped = i(func(c Cell) int { return c.Stopped })
	m.QuotaRetries = i(func(c Cell) int { return c.QuotaRetries })
	m.OutageProbes = i(func(c Cell) int { return c.OutageProbes })
	m.OutageProbeLimit = i(func(c Cell) int { return c.OutageProbeLimit })
	m.BlockedProbes = i(func(c Cell) int { return c.BlockedProbes })
	m.BlockedProbeLimit = i(func(c Cell) int { return c.BlockedProbeLimit })
	m.RefusalLagS = f(func(c Cell) float64 { return c.RefusalLagS })
	m.MakespanS = f(func(c Cell) float64 { return c.MakespanS })
	m.LowerBoundS = f(func(c Cell) float64 { return c.LowerBoundS })
	m.P50S = f(func(c Cell) float64 { return c.P50S })
	m.P99S = f(func(c Cell) float64 { return c.P99S })
	m.GiveUpLagS = f(func(c Cell) float64 { return c.GiveUpLagS })
	m.LateGiveUps = i(func(c Cell) int { return c.LateGiveUps })
	m.XBound = f(func(c Cell) float64 { return c.XBound })
	m.WastedPerOK = f(func(c Cell) float64 { return c.WastedPerOK })
	m.AttemptsPerCall = f(func(c Cell) float64 { return c.AttemptsPerCall })
	return m
}

// Label names a row: the scenario, and its case when it has one.
func (c Cell) Label() string {
	if c.Case == "" {
		return c.Scenario
	}
	return c.Scenario + "/" + c.Case
}

// Ratio returns makespan / lower bound, or 0 without a bound.
func (r Result) Ratio() float64 {
	if r.LowerBoundS <= 0 {
		return 0
	}
	return r.MakespanS / r.LowerBoundS
}

// WastePerSuccess returns wasted attempts per successful call.
func (r Result) WastePerSuccess() float64 {
	if r.Succeeded == 0 {
		return float64(r.WastedAttempts)
	}
	return float64(r.WastedAttempts) / float64(r.Succeeded)
}

// AttemptsPerRequest returns attempts per call.
func (r Result) AttemptsPerRequest() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Attempts) / float64(r.Requests)
}

// WriteTable writes rows as an aligned text table.
func WriteTable(w io.Writer, rows []Cell) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r.tableRow(), "\t")+"\t")
	}
	return tw.Flush()
}

// WriteMarkdownTable writes rows as a Markdown table.
func WriteMarkdownTable(w io.Writer, rows []Cell) {
	fmt.Fprintln(w, "| "+strings.Join(tableHeader, " | ")+" |")
	seps := make([]string, len(tableHeader))
	for i := range seps {
		seps[i] = "---:"
	}
	seps[0], seps[1] = "---", "---"
	fmt.Fprintln(w, "| "+strings.Join(seps, " | ")+" |")
	last := ""
	for _, r := range rows {
		cols := r.tableRow()
		if cols[0] == last {
			cols[0] = ""
		} else {
			last = cols[0]
		}
		fmt.Fprintln(w, "| "+strings.Join(cols, " | ")+" |")
	}
}

var tableHeader = []string{
	"scenario", "policy", "requests", "ok", "failed", "attempts", "wasted", "wasted/ok",
	"makespan s", "bound s", "×bound", "p50 s", "p99 s", "past deadline", "late give-ups", "give-up lag s", "quota retries", "outage probes", "blocked probes", "refusal lag s", "stopped",
}

func (c Cell) tableRow() []string {
	probes, blocked := "-", "-"
	if c.OutageProbeLimit > 0 {
		probes = fmt.Sprintf("%d/%d", c.OutageProbes, c.OutageProbeLimit)
	}
	if c.BlockedProbeLimit > 0 {
		blocked = fmt.Sprintf("%d/%d", c.BlockedProbes, c.BlockedProbeLimit)
	}
	return []string{
		c.Label(), c.Policy,
		fmt.Sprint(c.Requests), fmt.Sprint(c.Succeeded), fmt.Sprint(c.Failed),
		fmt.Sprint(c.Attempts), fmt.Sprint(c.WastedAttempts), fmt.Sprintf("%.3f", c.WastedPerOK),
		fmt.Sprintf("%.1f", c.MakespanS), fmt.Sprintf("%.1f", c.LowerBoundS), fmt.Sprintf("%.3f", c.XBound),
		fmt.Sprintf("%.2f", c.P50S), fmt.Sprintf("%.2f", c.P99S),
		fmt.Sprint(c.SleepsPastDeadline), fmt.Sprint(c.LateGiveUps), fmt.Sprintf("%.1f", c.GiveUpLagS), fmt.Sprint(c.QuotaRetries), probes, blocked, fmt.Sprintf("%.1f", c.RefusalLagS), fmt.Sprint(c.Stopped),
	}
}
