package main

import (
	"bufio"
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
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autopack/dynretry/examples/runner"
	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/internal/cohort"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/plugin/coordination"
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
	processes     int
	config        string
	worker        workerFlags
}

// workerFlags are a fleet worker's: the demo re-executes its own binary
// with them, one process per shard of the runs.
type workerFlags struct {
	on       bool
	provider string // the simulated provider's base URL
	shard    string // "k/n": the runs i with i%n == k
	traces   string // where the worker writes its spans
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

With --processes N the runs are shared among N processes of this binary, on
one API key, as autopack's executors are: with the default configuration each
keeps its own pacing state; with coordination.backend: redis (--config, or
DYNRETRY_COORDINATION__BACKEND=redis and its REDIS_URL and CREDENTIAL_SECRET)
they share it, and pace as one client. With --metrics-listen, process k of N
serves its own /metrics on ADDR's port + k (each a free port when it is 0).

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
	cmd.Flags().IntVar(&f.processes, "processes", 1, "OS processes to share the runs among, on one API key")
	cmd.Flags().StringVar(&f.config, "config", "", "models.yaml to read (default: $DYNRETRY_CONFIG, else the defaults)")
	cmd.Flags().BoolVar(&f.worker.on, "worker", false, "run as one process of a --processes fleet")
	cmd.Flags().StringVar(&f.worker.provider, "provider", "", "the worker's simulated provider")
	cmd.Flags().StringVar(&f.worker.shard, "shard", "", "the worker's runs, k/n")
	cmd.Flags().StringVar(&f.worker.traces, "traces", "", "the worker's trace file")
	for _, name := range []string{"worker", "provider", "shard", "traces"} {
		cmd.Flags().MarkHidden(name)
	}
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
// (Anthropic) and an auditor call (OpenAI); every other run also asks the
// doctor (Gemini) in its first phase, and one run in eight asks the doctor
// with a prompt larger than any token window (a non-retryable error).
func demoPhases(i int) []runner.Phase {
	prompt := strings.Repeat("Refactor the parser and keep its tests green. ", 20)
	steps := []runner.Step{
		{Role: "builder", Provider: "anthropic", Request: hooks.Request{System: "You build.", Prompt: prompt, MaxTokens: 300, Stream: true}},
		{Role: "auditor", Provider: "openai", Request: hooks.Request{System: "You audit.", Prompt: prompt, MaxTokens: 200}},
	}
	phases := []runner.Phase{{ID: "phase-1", Steps: steps}, {ID: "phase-2", Steps: steps}}
	if i%2 == 1 {
		phases[0].Steps = append(slices.Clip(steps), runner.Step{Role: "doctor", Provider: "gemini",
			Request: hooks.Request{System: "You diagnose.", Prompt: prompt, MaxTokens: 200}})
	}
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
	switch {
	case f.processes == 0: // a demoFlags built without the flag
		f.processes = 1
	case f.processes < 1:
		return usageErrorf("--processes must be at least 1, got %d", f.processes)
	}
	if f.worker.on {
		return runWorker(ctx, f, stdout, stderr)
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	tracePath := filepath.Join(f.out, "traces.jsonl")

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
	baseURL := "http://" + ln.Addr().String()

	key := os.Getenv("DYNRETRY_DEMO_API_KEY")
	if key == "" {
		key = randomKey()
	}

	fmt.Fprintf(stderr, "dynretry demo: %d runs in %d process(es), %.0f%% with dynretry, against the simulated provider at %s\n", f.runs, f.processes, f.percent, ln.Addr())
	start := time.Now()
	var done, calls, failed atomic.Int64
	onRun := func(r runResult) {
		calls.Add(int64(r.Calls))
		failed.Add(int64(r.Failed))
		done.Add(1)
	}
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
	if f.processes == 1 {
		err = runShard(ctx, f, baseURL, key, 0, 1, tracePath, onRun, stderr)
	} else {
		err = runFleet(ctx, f, baseURL, key, tracePath, onRun, stderr)
	}
	close(stop)
	progress.Wait()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "finished in %.1fs\n\n", time.Since(start).Seconds())

	s, err := readTraces(tracePath)
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(struct {
		*cohort.Summary
		Processes int `json:"processes"`
	}{s, f.processes}, "", "  ")
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

// A runResult is what one run did; a fleet worker prints one per line.
type runResult struct {
	Calls  int `json:"calls"`
	Failed int `json:"failed"`
}

// runShard runs, in this process, the runs i with i%n == k: it registers
// the plugin (with the configuration of --config, the environment, and the
// shared store it names), runs them at once against the provider at
// baseURL, writes every span to tracePath and calls onRun after each run.
func runShard(ctx context.Context, f demoFlags, baseURL, key string, k, n int, tracePath string, onRun func(runResult), stderr io.Writer) error {
	traces, err := os.Create(tracePath)
	if err != nil {
		return err
	}
	defer traces.Close()
	tel, err := telemetryOptions(ctx, "dynretry-demo", traces)
	if err != nil {
		return err
	}
	tel.PrometheusListen, tel.Prometheus = shardListen(f.metricsListen, k), export.Prometheus
	host := new(runner.Host)
	p, err := plugin.Register(ctx, host, plugin.Options{
		ConfigPath:   f.config,
		FlagProvider: rollout.NewPercentProvider(true, f.percent),
		Telemetry:    tel,
		OpenStore:    coordination.Open,
	})
	if err != nil {
		return err
	}
	if addr := p.Telemetry().MetricsAddr(); addr != "" {
		fmt.Fprintf(stderr, "serving Prometheus metrics at http://%s/metrics\n", addr)
	}
	r := runner.New(host, runner.Options{
		BaseURL: baseURL, APIKey: key, Dir: f.out, CallTimeout: 20 * time.Second,
	})
	var wg sync.WaitGroup
	for i := k; i < f.runs; i += n {
		wg.Go(func() {
			res := r.Run(ctx, fmt.Sprintf("demo-run-%03d", i), demoPhases(i))
			onRun(runResult{Calls: res.Calls, Failed: res.Failed})
		})
	}
	wg.Wait()
	if err := p.Shutdown(ctx); err != nil {
		return fmt.Errorf("flushing telemetry: %w", err)
	}
	return traces.Close()
}

// shardListen is where process k of a fleet serves its metrics: addr's
// port + k, or a free port when addr's port is 0; "" for none.
func shardListen(addr string, k int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || k == 0 {
		return addr
	}
	n, err := strconv.Atoi(port)
	if err != nil || n == 0 {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(n+k))
}

// runWorker is one process of a fleet: it runs its shard and prints a
// runResult line per run.
func runWorker(ctx context.Context, f demoFlags, stdout, stderr io.Writer) error {
	var k, n int
	if _, err := fmt.Sscanf(f.worker.shard, "%d/%d", &k, &n); err != nil || n < 1 || k < 0 || k >= n {
		return usageErrorf("--shard %q: want k/n with 0 <= k < n", f.worker.shard)
	}
	var mu sync.Mutex
	enc := json.NewEncoder(stdout)
	return runShard(ctx, f, f.worker.provider, os.Getenv("DYNRETRY_DEMO_API_KEY"), k, n, f.worker.traces, func(r runResult) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(r)
	}, stderr)
}

// runFleet runs the runs in f.processes processes of this binary, each on
// its shard, and joins their spans into tracePath. The API key goes to them
// in their environment, never on a command line.
func runFleet(ctx context.Context, f demoFlags, baseURL, key, tracePath string, onRun func(runResult), stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	parts := make([]string, f.processes)
	var wg sync.WaitGroup
	errs := make([]error, f.processes)
	for k := range f.processes {
		parts[k] = filepath.Join(f.out, fmt.Sprintf("traces.%d.jsonl", k))
		args := []string{"demo", "--worker", "--provider", baseURL, "--shard", fmt.Sprintf("%d/%d", k, f.processes),
			"--traces", parts[k], "--out", f.out, "--runs", strconv.Itoa(f.runs), "--percent", strconv.FormatFloat(f.percent, 'g', -1, 64)}
		if f.config != "" {
			args = append(args, "--config", f.config)
		}
		if f.metricsListen != "" {
			args = append(args, "--metrics-listen", f.metricsListen)
		}
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Env = append(os.Environ(), "DYNRETRY_DEMO_API_KEY="+key)
		cmd.Stderr = stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		wg.Go(func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var r runResult
				if json.Unmarshal(sc.Bytes(), &r) == nil {
					onRun(r)
				}
			}
			if err := cmd.Wait(); err != nil {
				errs[k] = fmt.Errorf("demo process %d of %d: %w", k+1, f.processes, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return joinFiles(tracePath, parts)
}

// joinFiles writes the files parts one after the other into path, and
// removes them.
func joinFiles(path string, parts []string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	for _, p := range parts {
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if err != nil {
			return err
		}
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return out.Close()
}

// randomKey makes an API key for the run, so that no fixed secret is in the
// code.
func randomKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "sk-demo-" + hex.EncodeToString(b)
}
