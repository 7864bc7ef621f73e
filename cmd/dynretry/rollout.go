package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/autopack/dynretry/internal/cohort"
	"github.com/autopack/dynretry/internal/flagsource"
	"github.com/autopack/dynretry/rollout"
)

// rolloutFlags are the flags every rollout subcommand takes.
type rolloutFlags struct {
	traces     string
	prometheus string
	window     time.Duration
	config     string
	flagd      string
	json       bool
	force      bool
	policy     cohort.Policy
}

// dataSource gives the per-cohort figures the guard compares.
type dataSource func(ctx context.Context) (*cohort.Summary, error)

func newRolloutCmd() *cobra.Command {
	f := &rolloutFlags{}
	cmd := &cobra.Command{
		Use:   "rollout status|advance|rollback",
		Short: "Guard the rollout's stages: 10% → 50% → 100%, and back to 0%",
		Long: `Compares the cohorts (from --traces, or from the metrics a Prometheus server
scraped with --prometheus, over the last --window) and says whether the
rollout may advance to its next stage (0 → 10 → 50 → 100%), should hold, or
should return to 0%. It advances only when treatment is, with confidence, not
worse than control by more than a tolerance on each of: error rate, wasted
attempts per call, and p95 time to answer (a failed call counts as never
answered); each cohort needs --min-calls calls first. The intervals are
always valid (a normal-mixture confidence sequence), so the check may run
every day without raising its error rate. A significant regression beyond a
tolerance recommends returning to 0%.

The percentage lives in models.yaml (--config, the default; the key
lovable_patterns.p1_dynamic_retry_delays.rollout_percent) or in a flagd flag
file (--flagd, the fractional weights of the flag dynamic-retry-delays).
advance and rollback replace that file atomically and change nothing else
in it.

  status    print the recommendation and its reasons
  advance   move to the next stage, only when the recommendation is advance
  rollback  return to 0%, only when the recommendation is rollback (--force:
            regardless, the way back is always open)

Exit status: 0 when the command did what it says (status always); 1 on an
error, or when advance or rollback was not warranted (the file unchanged).`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.traces, "traces", "", "compare the cohorts in this traces `FILE` (JSON lines, as the demo's traces.jsonl)")
	pf.StringVar(&f.prometheus, "prometheus", "", "compare the cohorts from the metrics this Prometheus server scraped (`URL`, HTTP API)")
	pf.DurationVar(&f.window, "window", 7*24*time.Hour, "with --prometheus: compare the calls of this last `DURATION` (a stage's week)")
	pf.StringVar(&f.config, "config", "", "the rollout percentage is in this models.yaml `FILE` (default models.yaml)")
	pf.StringVar(&f.flagd, "flagd", "", "the rollout percentage is in this flagd flag `FILE`")
	pf.BoolVar(&f.json, "json", false, "print the verdict as JSON")
	d := cohort.DefaultPolicy
	pf.IntVar(&f.policy.MinCalls, "min-calls", d.MinCalls, "calls each cohort needs before any decision")
	pf.Float64Var(&f.policy.Alpha, "alpha", d.Alpha, "chance of a wrong advance or rollback, over every check ever made")
	pf.Float64Var(&f.policy.MaxErrorIncrease, "max-error-increase", d.MaxErrorIncrease, "accepted increase of the error rate (0.01: one percentage point)")
	pf.Float64Var(&f.policy.MaxWastedIncrease, "max-wasted-increase", d.MaxWastedIncrease, "accepted increase of wasted attempts per call")
	pf.Float64Var(&f.policy.MaxP95Increase, "max-p95-increase", d.MaxP95Increase, "accepted increase of the p95 time to answer (0.2: 20% slower)")
	cmd.MarkFlagsMutuallyExclusive("traces", "prometheus")
	cmd.MarkFlagsMutuallyExclusive("config", "flagd")

	// run evaluates, then acts on the verdict.
	run := func(act func(w io.Writer, v cohort.Verdict, s *cohort.Summary, src flagsource.Source) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			v, s, src, err := f.evaluate(cmd.Context())
			if err != nil {
				return err
			}
			return act(cmd.OutOrStdout(), v, s, src)
		}
	}
	status := &cobra.Command{
		Use: "status", Short: "Print the recommendation and its reasons", Args: cobra.NoArgs,
		RunE: run(func(w io.Writer, v cohort.Verdict, s *cohort.Summary, src flagsource.Source) error {
			return f.print(w, v, s, src, nil)
		}),
	}
	advance := &cobra.Command{
		Use: "advance", Short: "Move to the next stage when the comparison allows it", Args: cobra.NoArgs,
		RunE: run(func(w io.Writer, v cohort.Verdict, s *cohort.Summary, src flagsource.Source) error {
			if v.Recommendation != cohort.Advance {
				f.print(w, v, s, src, nil)
				return fmt.Errorf("not advancing from %g%%: the recommendation is %s", v.Percent, v.Recommendation)
			}
			if err := src.SetPercent(v.Next); err != nil {
				return err
			}
			return f.print(w, v, s, src, &change{From: v.Percent, To: v.Next})
		}),
	}
	rollback := &cobra.Command{
		Use: "rollback", Short: "Return to 0% when treatment regressed (--force: regardless)", Args: cobra.NoArgs,
		RunE: run(func(w io.Writer, v cohort.Verdict, s *cohort.Summary, src flagsource.Source) error {
			if v.Recommendation != cohort.Rollback && !f.force {
				f.print(w, v, s, src, nil)
				return fmt.Errorf("not rolling back from %g%%: no significant regression (the recommendation is %s); --force returns to 0%% regardless", v.Percent, v.Recommendation)
			}
			if err := src.SetPercent(0); err != nil {
				return err
			}
			return f.print(w, v, s, src, &change{From: v.Percent, To: 0})
		}),
	}
	rollback.Flags().BoolVar(&f.force, "force", false, "return to 0% whatever the comparison says")
	cmd.AddCommand(status, advance, rollback)
	return cmd
}

// change is what advance or rollback wrote.
type change struct {
	From float64 `json:"from"`
	To   float64 `json:"to"`
}

// source returns where the percentage lives.
func (f *rolloutFlags) source() flagsource.Source {
	if f.flagd != "" {
		return flagsource.Flagd{Path: f.flagd}
	}
	path := f.config
	if path == "" {
		path = "models.yaml"
	}
	return flagsource.ModelsYAML{Path: path}
}

// data returns where the figures come from.
func (f *rolloutFlags) data() (dataSource, error) {
	switch {
	case f.traces != "":
		return func(context.Context) (*cohort.Summary, error) {
			s, err := readTraces(f.traces)
			if errors.Is(err, cohort.ErrNoCalls) {
				return cohort.Empty(), nil // no data: the guard holds
			}
			return s, err
		}, nil
	case f.prometheus != "":
		if f.window <= 0 {
			return nil, usageErrorf("--window must be positive, got %v", f.window)
		}
		return func(ctx context.Context) (*cohort.Summary, error) {
			s, err := cohort.FromPrometheus(ctx, f.prometheus, f.window, time.Now())
			if errors.Is(err, cohort.ErrNoCalls) {
				return cohort.Empty(), nil // no data: the guard holds
			}
			return s, err
		}, nil
	}
	return nil, errors.New("rollout: give the data to compare: --traces FILE or --prometheus URL")
}

// evaluate reads the percentage and the figures and asks the guard.
func (f *rolloutFlags) evaluate(ctx context.Context) (cohort.Verdict, *cohort.Summary, flagsource.Source, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	data, err := f.data()
	if err != nil {
		return cohort.Verdict{}, nil, nil, err
	}
	src := f.source()
	percent, err := src.Percent()
	if err != nil {
		return cohort.Verdict{}, nil, nil, fmt.Errorf("rollout: reading the percentage: %w", err)
	}
	s, err := data(ctx)
	if err != nil {
		return cohort.Verdict{}, nil, nil, fmt.Errorf("rollout: %w", err)
	}
	return cohort.Evaluate(s, percent, f.policy), s, src, nil
}

// statusJSON is the JSON form of a verdict (design notes: "percent",
// "recommendation", "reasons", "cohorts").
type statusJSON struct {
	Percent        float64                          `json:"percent"`
	Recommendation cohort.Recommendation            `json:"recommendation"`
	Next           float64                          `json:"next"`
	Reasons        []string                         `json:"reasons"`
	Cohorts        map[rollout.Cohort]*cohort.Stats `json:"cohorts"`
	Checks         []cohort.Check                   `json:"checks"`
	Source         string                           `json:"source"`
	Changed        *change                          `json:"changed,omitempty"`
}

// print writes the verdict, and the change made if any.
func (f *rolloutFlags) print(w io.Writer, v cohort.Verdict, s *cohort.Summary, src flagsource.Source, c *change) error {
	if f.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(statusJSON{Percent: v.Percent, Recommendation: v.Recommendation, Next: v.Next, Reasons: v.Reasons,
			Cohorts: s.Cohorts, Checks: v.Checks, Source: src.String(), Changed: c})
	}
	fmt.Fprintf(w, "rollout at %g%% in %s: %s", v.Percent, src, v.Recommendation)
	if v.Next != v.Percent {
		fmt.Fprintf(w, " to %g%%", v.Next)
	}
	fmt.Fprintln(w)
	for _, r := range v.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	if c != nil {
		fmt.Fprintf(w, "wrote %g%% to %s (was %g%%)\n", c.To, src, c.From)
	}
	if env := os.Getenv("DYNRETRY_ROLLOUT_PERCENT"); env != "" && f.flagd == "" {
		fmt.Fprintf(w, "note: DYNRETRY_ROLLOUT_PERCENT=%s is set here; where it is set for the runners it overrides the file\n", env)
	}
	return nil
}
