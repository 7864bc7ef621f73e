// Package promtest is what the tests that need a real Prometheus share: a
// short workload of real SDK clients (examples/runner) over the simulated
// provider, with dynretry registered and /metrics served on loopback, and a
// Prometheus server (Debian's prometheus, which `make test` installs)
// scraping it every second.
//
//	w := promtest.NewWorkload(t)          // dynretry registered, /metrics served
//	p := promtest.Start(t, w.MetricsAddr) // Prometheus, scraping it
//	p.WaitScraped(t, time.Now())
//	w.Run(t)                              // the calls (again, for rates that change)
//	p.WaitScraped(t, w.End)               // until it has scraped the workload's end
//	v := p.Query(t, `sum(dynretry_calls_total)`, time.Now())
package promtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/autopack/dynretry/examples/runner"
	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/sim"
	"github.com/autopack/dynretry/telemetry"
	"github.com/autopack/dynretry/telemetry/export"
)

// Workload is the runner of the workload, and, once Run returns, what it
// did.
type Workload struct {
	runner *runner.Runner
	// misrouted is the same runner with a wrong base URL: every call
	// fails at once with a 404, before the provider's limits.
	misrouted *runner.Runner
	runs      int // runs started so far

	// MetricsAddr is where /metrics is served (host:port), until the test
	// ends.
	MetricsAddr string
	// Traces is the path of its traces, one JSON span per line.
	Traces string
	// Start and End bound the last Run.
	Start, End time.Time
	// Calls is the number of LLM calls made by every Run.
	Calls int
}

// provider is the simulated provider of the workload: rate limited
// throughout (8 requests a second per dialect after a burst of 8), and
// overloaded for 1.5 s in every 4 s, so that a Run of a few seconds meets
// an overload.
func provider() sim.Config {
	c := sim.Config{
		Seed: 7, RPM: 480, TPM: 480_000, ITPM: 400_000, OTPM: 120_000, Burst: 1.0 / 60,
		Latency: 100 * time.Millisecond,
	}
	for at := time.Second; at < 5*time.Minute; at += 4 * time.Second {
		c.Overloads = append(c.Overloads, sim.Window{Start: at, End: at + 1500*time.Millisecond})
	}
	return c
}

// phases is the work of a run: a streamed Anthropic builder call, an
// OpenAI auditor call and a Gemini doctor call; huge runs also ask with a
// prompt larger than any token window (a failure in both cohorts).
func phases(huge bool) []runner.Phase {
	prompt := strings.Repeat("Check the parser. ", 30)
	steps := []runner.Step{
		{Role: "builder", Provider: "anthropic", Request: hooks.Request{System: "build", Prompt: prompt, MaxTokens: 200, Stream: true}},
		{Role: "auditor", Provider: "openai", Request: hooks.Request{System: "audit", Prompt: prompt, MaxTokens: 100}},
		{Role: "doctor", Provider: "gemini", Request: hooks.Request{System: "diagnose", Prompt: prompt, MaxTokens: 100}},
	}
	if huge {
		steps = append(steps, runner.Step{Role: "auditor", Provider: "openai",
			Request: hooks.Request{System: "audit", Prompt: strings.Repeat("the whole repository ", 12_000), MaxTokens: 100}})
	}
	return []runner.Phase{{ID: "phase-1", Steps: steps}, {ID: "phase-2", Steps: steps[:2]}}
}

// NewWorkload starts the simulated provider on loopback and registers
// dynretry with a runner as a runner does (models.yaml's keys from the
// environment: rollout_percent 50, telemetry.prometheus_listen on a free
// loopback port). /metrics is served until the test ends.
func NewWorkload(t testing.TB) *Workload {
	t.Helper()
	ctx := context.Background()
	p, err := sim.New(provider())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	w := &Workload{Traces: filepath.Join(t.TempDir(), "traces.jsonl")}
	f, err := os.Create(w.Traces)
	if err != nil {
		t.Fatal(err)
	}
	traces, err := export.TraceFile(&lockedWriter{w: f})
	if err != nil {
		t.Fatal(err)
	}
	host := new(runner.Host)
	plug, err := plugin.Register(ctx, host, plugin.Options{
		Environ:   []string{"DYNRETRY_ROLLOUT_PERCENT=50", "DYNRETRY_TELEMETRY__PROMETHEUS_LISTEN=127.0.0.1:0"},
		Telemetry: telemetry.Options{ServiceName: "promtest", Prometheus: export.Prometheus, SpanExporters: []sdktrace.SpanExporter{traces}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		plug.Shutdown(context.Background())
		f.Close()
	})
	w.MetricsAddr = plug.Telemetry().MetricsAddr()
	opts := runner.Options{BaseURL: "http://" + ln.Addr().String(), APIKey: "sk-promtest-not-a-key", Dir: t.TempDir(), CallTimeout: 6 * time.Second}
	w.runner = runner.New(host, opts)
	opts.BaseURL += "/misrouted"
	w.misrouted = runner.New(host, opts)
	return w
}

// Run runs 10 runs at once, about half of them in the treatment cohort (by
// rollout.Bucket, the percentage rollout's rule), and returns when they are
// done: a few seconds. The first two runs of each cohort also send a
// request too large, and one call to a wrong base URL: a failure in every
// Run of both cohorts whatever the overloads do, of a class every Run
// shares, so that Prometheus, which cannot count the first increment of a
// new series, sees both cohorts fail in every Run but the first. Each Run
// adds runs of new ids; the provider's limits carry over.
func (w *Workload) Run(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	w.Start = time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	first := w.runs
	w.runs += 10
	huge := map[bool]int{}
	for i := first; i < w.runs; i++ {
		id := fmt.Sprintf("promtest-run-%03d", i)
		treatment := rollout.Bucket(id) < 50
		huge[treatment]++
		big := huge[treatment] <= 2
		work := phases(big)
		wg.Go(func() {
			res := w.runner.Run(ctx, id, work)
			if big {
				misrouted := []runner.Phase{{ID: "phase-3", Steps: work[0].Steps[1:2]}}
				res.Calls += w.misrouted.Run(ctx, id, misrouted).Calls
			}
			mu.Lock()
			w.Calls += res.Calls
			mu.Unlock()
		})
	}
	wg.Wait()
	w.End = time.Now()
}

// lockedWriter serializes the trace file's writes.
type lockedWriter struct {
	mu sync.Mutex
	w  *os.File
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Prometheus is a running Prometheus server.
type Prometheus struct {
	// URL is its address, for the HTTP API.
	URL string
	api promv1.API
}

// ScrapeInterval is how often Start's Prometheus scrapes.
const ScrapeInterval = time.Second

// Start starts Prometheus (the prometheus command on the PATH) on a free
// loopback port, scraping /metrics at each of targets every second, with a
// configuration it writes and its storage in a temporary directory, and
// returns once it is ready. It stops when the test ends.
func Start(t testing.TB, targets ...string) *Prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is needed: run scripts/deps.sh (as root) or apt-get install prometheus")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: %s\n  evaluation_interval: %s\nscrape_configs:\n  - job_name: dynretry\n    static_configs:\n      - targets: ['%s']\n",
		ScrapeInterval, ScrapeInterval, strings.Join(targets, "', '"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr,
		"--storage.tsdb.retention.time=1h", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
	})
	p := &Prometheus{URL: "http://" + addr}
	client, err := promapi.NewClient(promapi.Config{Address: p.URL})
	if err != nil {
		t.Fatal(err)
	}
	p.api = promv1.NewAPI(client)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("prometheus not ready after 30s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitScraped waits until Prometheus has scraped every target twice after
// after, so that the values at after are in its storage.
func (p *Prometheus) WaitScraped(t testing.TB, after time.Time) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		v, err := p.query(`min(timestamp(up{job="dynretry"} == 1))`, time.Now())
		if err == nil && len(v) == 1 && float64(v[0].Value) >= float64(after.Add(ScrapeInterval).UnixNano())/1e9 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("prometheus did not scrape the targets after %v within 30s", after)
}

// Query evaluates the PromQL expr at time at through the HTTP API
// (/api/v1/query) and returns the vector it gives.
func (p *Prometheus) Query(t testing.TB, expr string, at time.Time) model.Vector {
	t.Helper()
	v, err := p.query(expr, at)
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	return v
}

func (p *Prometheus) query(expr string, at time.Time) (model.Vector, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, _, _, err := p.api.Query(ctx, expr, at)
	if err != nil {
		return nil, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query %s: a %s, not a vector", expr, v.Type())
	}
	return vec, nil
}
