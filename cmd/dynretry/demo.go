package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autopack/dynretry/examples/runner"
	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/sim"
	"github.com/autopack/dynretry/telemetry/export"
	"github.com/spf13/cobra"
)

// demoFlags configure the demo.
type demoFlags struct {
	out           string
	runs          int
	percent       float64
	seed          uint64
	metricsListen string
}

func newDemo() *cobra.Command {
	f := demoFlags{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the example runner against the simulated provider, half the runs with dynretry",
		Long: `Starts the simulated provider on loopback and runs many runs of the example
runner at once, with dynretry registered as a plugin and rolled out to a share of
the runs (--percent). The provider is rate limited throughout, overloaded for a
few seconds, and some calls ask for more than a limit allows. Prints a
per-cohort comparison and writes, under --out:

  traces.jsonl                             every span, one JSON object per line
  summary.json                             the per-cohort figures
  report.html                              the comparison as a web page
  .autonomous_runs/{run_id}/errors/        the runner's error reports

With --metrics-listen ADDR it also serves Prometheus's /metrics on ADDR while
it runs (the names are in the README's Telemetry section).

The API key comes from DYNRETRY_DEMO_API_KEY when set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&f.out, "out", "dynretry-out", "directory for traces, summary and error reports")
	cmd.Flags().IntVar(&f.runs, "runs", 40, "runs to execute at once")
	cmd.Flags().Float64Var(&f.percent, "percent", 50, "percentage of runs in the treatment cohort")
	cmd.Flags().Uint64Var(&f.seed, "seed", 1, "seed of the provider's faults")
	cmd.Flags().StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus /metrics on this `ADDR` (host:port) while the demo runs")
	return cmd
}

// demoProvider is the simulated provider's behaviour in the demo: rate
// limited throughout (each dialect admits 4 requests a second after a burst
// of 12), overloaded from 6 s to 11 s.
func demoProvider(seed uint64) sim.Config {
	return sim.Config{
		Seed: seed, RPM: 240, TPM: 240_000, ITPM: 200_000, OTPM: 60_000, Burst: 0.05,
		Latency:   150 * time.Millisecond,
		Overloads: []sim.Window{{Start: 6 * time.Second, End: 11 * time.Second}},
	}
}

// demoPhases is the work of one run: two phases of a streamed builder call
// and an auditor call; one run in eight also asks the doctor with a prompt
// larger than any token window (a non-retryable error).
func demoPhases(i int) []runner.Phase {
	prompt := strings.Repeat("Refactor the parser and keep its tests green. ", 20)
	steps := []runner.Step{
		{Role: "builder", Provider: "anthropic", Request: hooks.Request{System: "You build.", Prompt: prompt, MaxTokens: 300, Stream: true}},
		{Role: "auditor", Provider: "openai", Request: hooks.Request{System: "You audit.", Prompt: prompt, MaxTokens: 200}},
	}
	phases := []runner.Phase{{ID: "phase-1", Steps: steps}, {ID: "phase-2", Steps: steps}}
	if i%8 == 7 {
		huge := strings.Repeat("all of the repository ", 12_000)
		phases[1].Steps = append(phases[1].Steps, runner.Step{Role: "doctor", Provider: "openai",
			Request: hooks.Request{System: "You diagnose.", Prompt: huge, MaxTokens: 100}})
	}
	return phases
}

func runDemo(ctx context.Context, f demoFlags, stdout, stderr io.Writer) (err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.runs < 1 {
		return usageErrorf("--runs must be at least 1, got %d", f.runs)
	}
	if f.percent < 0 || f.percent > 100 {
		return usageErrorf("--percent must be within [0, 100], got %v", f.percent)
	}
	if _, _, err := net.SplitHostPort(f.metricsListen); f.metricsListen != "" && err != nil {
		return usageErrorf("--metrics-listen wants host:port, such as 127.0.0.1:9464, got %q", f.metricsListen)
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	tracePath := filepath.Join(f.out, "traces.jsonl")
	traces, err := os.Create(tracePath)
	if err != nil {
		return err
	}
	defer traces.Close()

	provider, err := sim.New(demoProvider(f.seed))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: provider, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	key := os.Getenv("DYNRETRY_DEMO_API_KEY")
	if key == "" {
		key = randomKey()
	}
	tel, err := telemetryOptions(ctx, "dynretry-demo", traces)
	if err != nil {
		return err
	}
	tel.PrometheusListen, tel.Prometheus = f.metricsListen, export.Prometheus
	host := new(runner.Host)
	p, err := plugin.Register(ctx, host, plugin.Options{
		FlagProvider: rollout.NewPercentProvider(true, f.percent),
		Telemetry:    tel,
	})
	if err != nil {
		return err
	}
	r := runner.New(host, runner.Options{
		BaseURL: "http://" + ln.Addr().String(), APIKey: key, Dir: f.out, CallTimeout: 20 * time.Second,
	})

	fmt.Fprintf(stderr, "dynretry demo: %d runs, %.0f%% with dynretry, against the simulated provider at %s\n", f.runs, f.percent, ln.Addr())
	if addr := p.Telemetry().MetricsAddr(); addr != "" {
		fmt.Fprintf(stderr, "serving Prometheus metrics at http://%s/metrics\n", addr)
	}
	start := time.Now()
	var done, calls, failed atomic.Int64
	stop := make(chan struct{})
	var progress sync.WaitGroup
	progress.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(stderr, "  %4.0fs  runs done %d/%d  calls %d  failed %d\n", time.Since(start).Seconds(), done.Load(), f.runs, calls.Load(), failed.Load())
			}
		}
	})
	var wg sync.WaitGroup
	for i := range f.runs {
		wg.Go(func() {
			res := r.Run(ctx, fmt.Sprintf("demo-run-%03d", i), demoPhases(i))
			calls.Add(int64(res.Calls))
			failed.Add(int64(res.Failed))
			done.Add(1)
		})
	}
	wg.Wait()
	close(stop)
	progress.Wait()
	if err := p.Shutdown(ctx); err != nil {
		return fmt.Errorf("flushing telemetry: %w", err)
	}
	if err := traces.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "finished in %.1fs\n\n", time.Since(start).Seconds())

	s, err := readTraces(tracePath)
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.out, "summary.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	reportPath := filepath.Join(f.out, "report.html")
	if err := writeHTML(reportPath, s, tracePath); err != nil {
		return err
	}
	if err := printSummary(stdout, s); err != nil {
		return err
	}
	st := provider.Stats()
	fmt.Fprintf(stdout, "\nprovider: %d requests received, %d succeeded\n", st.Received, st.Succeeded)
	fmt.Fprintf(stdout, "wrote %s, %s, %s and the error reports under %s\n", tracePath, filepath.Join(f.out, "summary.json"), reportPath, filepath.Join(f.out, ".autonomous_runs"))
	return errors.Join(ctx.Err())
}

// randomKey makes an API key for the run, so that no fixed secret is in the
// code.
func randomKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "sk-demo-" + hex.EncodeToString(b)
}
