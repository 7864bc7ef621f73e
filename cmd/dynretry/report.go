package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/autopack/dynretry/internal/atomicfile"
	"github.com/autopack/dynretry/internal/cohort"
	"github.com/autopack/dynretry/internal/report"
	"github.com/autopack/dynretry/rollout"
)

func newReport() *cobra.Command {
	var html string
	cmd := &cobra.Command{
		Use:   "report [--html FILE] TRACES.jsonl",
		Short: "Compare the cohorts from exported traces alone",
		Long: `Reads spans written one JSON object per line (the demo's traces.jsonl, or any
file written by dynretry's JSON-lines exporter) and prints the per-cohort
comparison: runs, calls, failed calls and error rate with its 95% interval,
attempts, wasted attempts and call latency, and a two-proportion test of the
error rates.

--html FILE also writes the comparison as one self-contained web page (no
network needed to view it): error rates with intervals, wasted attempts per
call, the latency distribution, failures by class and a timeline of 429s and
waits.

A file that cannot be read, or that holds no dynretry call span, is an error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := readTraces(args[0])
			if err != nil {
				return err
			}
			if err := printSummary(cmd.OutOrStdout(), s); err != nil {
				return err
			}
			if html != "" {
				return writeHTML(html, s, args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&html, "html", "", "also write the comparison as a self-contained HTML page to `FILE`")
	return cmd
}

// readTraces reads and summarizes the traces file at path.
func readTraces(path string) (*cohort.Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("traces: %w", err)
	}
	defer f.Close()
	s, err := cohort.Read(f)
	if err != nil {
		return nil, fmt.Errorf("traces %s: %w", path, err)
	}
	return s, nil
}

// writeHTML writes the page for s to path, through a temporary file in the
// same directory renamed into place, so a reader never sees half a page.
func writeHTML(path string, s *cohort.Summary, source string) error {
	return atomicfile.Write(path, func(w io.Writer) error { return report.Write(w, s, filepath.Base(source)) })
}

// printSummary writes the comparison as a table, then the error rates with
// their intervals and test, and the wasted attempts per call. A cohort
// without calls is said to have none, and nothing is compared with it.
func printSummary(w io.Writer, s *cohort.Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cohort\truns\tcalls\tfailed\terror rate\tattempts\twasted\tp50 latency\tp95 latency\t")
	for _, name := range cohort.Cohorts {
		c := s.Cohorts[name]
		if c.Calls == 0 {
			fmt.Fprintf(tw, "%s\t%d\t%d\t-\t-\t%d\t%d\t-\t-\t\n", name, c.Runs, c.Calls, c.Attempts, c.WastedAttempts)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f%%\t%d\t%d\t%.2fs\t%.2fs\t\n", name, c.Runs, c.Calls, c.FailedCalls,
			100*c.ErrorRate, c.Attempts, c.WastedAttempts, c.LatencyP50S, c.LatencyP95S)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	t, c := s.Cohorts[rollout.Treatment], s.Cohorts[rollout.Control]
	var empty []error
	for _, name := range cohort.Cohorts {
		if s.Cohorts[name].Calls == 0 {
			empty = append(empty, fmt.Errorf("the %s cohort has no calls", name))
		}
	}
	if len(empty) > 0 {
		_, err := fmt.Fprintf(w, "\n%v: nothing to compare\n", errors.Join(empty...))
		return err
	}
	interval := func(st *cohort.Stats) string {
		lo, hi := cohort.Wilson(st.FailedCalls, st.Calls, cohort.Z95)
		return fmt.Sprintf("%.1f%% [%.1f%%, %.1f%%]", 100*st.ErrorRate, 100*lo, 100*hi)
	}
	fmt.Fprintf(w, "\nerror rate (95%% Wilson interval): treatment %s vs control %s", interval(t), interval(c))
	if s.ErrorRateReduction != nil {
		fmt.Fprintf(w, ", a %.0f%% reduction", 100**s.ErrorRateReduction)
	}
	fmt.Fprintln(w)
	if z, p, ok := cohort.TwoProportionZ(t.FailedCalls, t.Calls, c.FailedCalls, c.Calls); ok {
		fmt.Fprintf(w, "two-proportion z-test: z = %.2f, p %s (one look; `dynretry rollout status` for daily checks)\n", z, cohort.FormatP(p))
	}
	_, err := fmt.Fprintf(w, "wasted attempts per call: treatment %.2f vs control %.2f\n", t.WastedPerCall(), c.WastedPerCall())
	return err
}
