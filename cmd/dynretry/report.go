package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
	"github.com/spf13/cobra"
)

func newReport() *cobra.Command {
	return &cobra.Command{
		Use:   "report TRACES.jsonl",
		Short: "Compare the cohorts from exported traces alone",
		Long: `Reads spans written one JSON object per line (the demo's traces.jsonl, or any
file written by dynretry's JSON-lines exporter) and prints the per-cohort
comparison: runs, calls, failed calls and error rate, attempts, wasted attempts
and call latency.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			s, err := summarize(f)
			if err != nil {
				return err
			}
			return s.print(cmd.OutOrStdout())
		},
	}
}

// cohortStats is one cohort's line of the comparison; the JSON names are
// the demo's summary.json contract.
type cohortStats struct {
	Runs           int     `json:"runs"`
	Calls          int     `json:"calls"`
	FailedCalls    int     `json:"failed_calls"`
	Attempts       int     `json:"attempts"`
	WastedAttempts int     `json:"wasted_attempts"`
	ErrorRate      float64 `json:"error_rate"`
	LatencyP50S    float64 `json:"latency_p50_s"`
	LatencyP95S    float64 `json:"latency_p95_s"`
}

// summary is the comparison of the cohorts.
type summary struct {
	Cohorts map[rollout.Cohort]*cohortStats `json:"cohorts"`
	// ErrorRateReduction is 1 − treatment's error rate / control's, or
	// null when control had no calls or no errors.
	ErrorRateReduction *float64 `json:"error_rate_reduction"`
}

// span is the part of an exported span the comparison reads.
type span struct {
	Name       string
	StartTime  time.Time
	EndTime    time.Time
	Attributes []struct {
		Key   string
		Value struct{ Value any }
	}
	Status struct{ Code string }
}

func (s *span) attr(key string) (any, bool) {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.Value, true
		}
	}
	return nil, false
}

func (s *span) str(key string) string {
	v, _ := s.attr(key)
	str, _ := v.(string)
	return str
}

// summarize reads spans, one JSON object per line, and compares the
// cohorts. Call spans give runs, calls, failures and latency; attempt spans
// give attempts (those sent) and wasted attempts (those sent that did not
// succeed).
func summarize(r io.Reader) (summary, error) {
	s := summary{Cohorts: map[rollout.Cohort]*cohortStats{rollout.Treatment: {}, rollout.Control: {}}}
	runs := map[rollout.Cohort]map[string]bool{}
	lat := map[rollout.Cohort][]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var sp span
		if err := json.Unmarshal(sc.Bytes(), &sp); err != nil {
			return summary{}, fmt.Errorf("traces line %d: %w", line, err)
		}
		cohort := rollout.Cohort(sp.str(telemetry.AttrCohort))
		c, ok := s.Cohorts[cohort]
		if !ok {
			continue
		}
		switch sp.Name {
		case telemetry.SpanCall:
			c.Calls++
			if sp.Status.Code == "Error" {
				c.FailedCalls++
			}
			if runs[cohort] == nil {
				runs[cohort] = map[string]bool{}
			}
			runs[cohort][sp.str(telemetry.AttrRunID)] = true
			lat[cohort] = append(lat[cohort], sp.EndTime.Sub(sp.StartTime).Seconds())
		case telemetry.SpanAttempt:
			if sent, ok := sp.attr(telemetry.AttrSent); ok && sent == false {
				continue
			}
			c.Attempts++
			if sp.str(telemetry.AttrDecision) != "success" {
				c.WastedAttempts++
			}
		}
	}
	if err := sc.Err(); err != nil {
		return summary{}, err
	}
	for cohort, c := range s.Cohorts {
		c.Runs = len(runs[cohort])
		if c.Calls > 0 {
			c.ErrorRate = float64(c.FailedCalls) / float64(c.Calls)
		}
		c.LatencyP50S, c.LatencyP95S = quantile(lat[cohort], 0.50), quantile(lat[cohort], 0.95)
	}
	if ctl := s.Cohorts[rollout.Control]; ctl.ErrorRate > 0 {
		red := 1 - s.Cohorts[rollout.Treatment].ErrorRate/ctl.ErrorRate
		s.ErrorRateReduction = &red
	}
	return s, nil
}

// quantile is the q-quantile of xs by the nearest-rank method, 0 for none.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	sort.Float64s(xs)
	i := int(q*float64(len(xs))+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// print writes the comparison as a table.
func (s summary) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cohort\truns\tcalls\tfailed\terror rate\tattempts\twasted\tp50 latency\tp95 latency\t")
	for _, cohort := range []rollout.Cohort{rollout.Treatment, rollout.Control} {
		c := s.Cohorts[cohort]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f%%\t%d\t%d\t%.2fs\t%.2fs\t\n", cohort, c.Runs, c.Calls, c.FailedCalls,
			100*c.ErrorRate, c.Attempts, c.WastedAttempts, c.LatencyP50S, c.LatencyP95S)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	t, c := s.Cohorts[rollout.Treatment], s.Cohorts[rollout.Control]
	if s.ErrorRateReduction != nil {
		fmt.Fprintf(w, "\nerror rate: treatment %.1f%% vs control %.1f%%, a %.0f%% reduction\n", 100*t.ErrorRate, 100*c.ErrorRate, 100**s.ErrorRateReduction)
	}
	if t.Calls > 0 && c.Calls > 0 {
		_, err := fmt.Fprintf(w, "wasted attempts per call: treatment %.2f vs control %.2f\n",
			float64(t.WastedAttempts)/float64(t.Calls), float64(c.WastedAttempts)/float64(c.Calls))
		return err
	}
	return nil
}
