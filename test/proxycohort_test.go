package test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/autopack/dynretry/examples/runner"
	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/internal/cohort"
	"github.com/autopack/dynretry/internal/testutil"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/proxy"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/sim"
	"github.com/autopack/dynretry/telemetry"
	"github.com/autopack/dynretry/telemetry/export"
)

// TestProxyCohortsAsInProcess: the same workload, run once with dynretry
// in process (the plugin registered with the runner) and once through the
// proxy (the runner's SDK clients pointed at it, their retries on, as a
// Python runner's would be), gives the same cohort figures from the trace
// file, read by internal/cohort as `dynretry rollout status` reads them:
// runs, calls, failed calls, attempts and wasted attempts per cohort. The
// control cohort's SDK retries are thus counted as in process, not as one
// call per attempt.
//
// The runs go one after another against a provider whose faults follow
// the order of requests (every fifth request a 429 with a short
// retry-after, then seeded 500s, connection resets and cut streams), in
// virtual time, so that both ways see the same faults.
func TestProxyCohortsAsInProcess(t *testing.T) {
	cfg := sim.Config{Seed: 11, ErrorRate: 0.15, ResetRate: 0.05, StreamErrorRate: 0.1}
	var runs []string
	for _, c := range []rollout.Cohort{rollout.Treatment, rollout.Control} {
		runs = append(runs, runsIn(c, 4)...)
	}
	slices.Sort(runs)
	work := []runner.Phase{
		{ID: "phase-1", Steps: []runner.Step{builder, auditor, doctor}},
		{ID: "phase-2", Steps: []runner.Step{builder, auditor, auditor}},
	}
	environ := []string{"DYNRETRY_ROLLOUT_PERCENT=50"}
	run := func(r *runner.Runner) {
		for _, id := range runs {
			r.Run(context.Background(), id, work)
		}
	}

	// In process.
	e := setup(t, plugin.Options{Environ: environ})
	var inProcess sim.Stats
	synctest.Test(t, func(t *testing.T) {
		p := limitEveryFifth(newSim(t, cfg))
		run(e.runner(p, testKey))
		inProcess = p.Stats()
	})

	// Through the proxy, which sends to the provider in process.
	traces := new(testutil.SyncBuffer)
	file, err := export.TraceFile(traces)
	require.NoError(t, err)
	var up handlerVar
	px, err := proxy.New(context.Background(), proxy.Options{Transport: sim.Transport{Handler: &up}, Plugin: plugin.Options{
		Environ:   append(upstreams(simURL), environ...),
		Telemetry: telemetry.Options{SpanExporters: []sdktrace.SpanExporter{file}},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}})
	require.NoError(t, err)
	var throughProxy sim.Stats
	synctest.Test(t, func(t *testing.T) {
		p := limitEveryFifth(newSim(t, cfg))
		up.set(p)
		run(runner.New(viaProxy(px), runner.Options{BaseURL: "http://proxy.local", APIKey: testKey, Dir: t.TempDir()}))
		synctest.Wait()
		px.Drain() // no call is left open: the proxy's timer belongs to the bubble
		throughProxy = p.Stats()
	})
	require.NoError(t, px.Shutdown(context.Background()))

	assert.Equal(t, inProcess.Received, throughProxy.Received, "the provider received the same requests")
	want, err := cohort.Read(strings.NewReader(e.traces.String()))
	require.NoError(t, err)
	got, err := cohort.Read(strings.NewReader(traces.String()))
	require.NoError(t, err)
	for _, c := range cohort.Cohorts {
		w, g := want.Cohorts[c], got.Cohorts[c]
		t.Logf("%s in process: %d runs, %d calls, %d failed, %d attempts, %d wasted; through the proxy: %d runs, %d calls, %d failed, %d attempts, %d wasted",
			c, w.Runs, w.Calls, w.FailedCalls, w.Attempts, w.WastedAttempts, g.Runs, g.Calls, g.FailedCalls, g.Attempts, g.WastedAttempts)
		assert.Equal(t, 4, g.Runs, c)
		assert.Equal(t, len(runs)/2*6, g.Calls, "%s: one call per step", c)
		assert.Greater(t, g.Attempts, g.Calls, "%s: some calls were retried", c)
		assert.Positive(t, g.FailedCalls, "%s: some calls failed", c)
		assert.Equal(t, []int{w.Runs, w.Calls, w.FailedCalls, w.Attempts, w.WastedAttempts},
			[]int{g.Runs, g.Calls, g.FailedCalls, g.Attempts, g.WastedAttempts}, "%s: runs, calls, failed calls, attempts, wasted attempts", c)
	}
}

// doctor is a Gemini call: genai sends it once, without the Stainless
// SDKs' retry count.
var doctor = runner.Step{Role: "doctor", Provider: "gemini",
	Request: hooks.Request{System: "You diagnose.", Prompt: "Why does the build fail?", MaxTokens: 60}}

// runsIn returns n run ids that the percentage rollout puts in cohort at
// 50%.
func runsIn(cohort rollout.Cohort, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		id := fmt.Sprintf("run-%s-%d", cohort, i)
		if (rollout.Bucket(id) < 50) == (cohort == rollout.Treatment) {
			out = append(out, id)
		}
	}
	return out
}

// limited is a provider that answers every fifth request it receives with
// a 429 of its dialect (retry after 50 ms) before the simulated provider
// sees it, so that the 429s follow the order of requests, not the clock.
type limited struct {
	*sim.Provider
	mu sync.Mutex
	n  int
}

func limitEveryFifth(p *sim.Provider) *limited { return &limited{Provider: p} }

func (l *limited) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.n++
	n := l.n
	l.mu.Unlock()
	if n%5 != 2 {
		l.Provider.ServeHTTP(w, r)
		return
	}
	io.Copy(io.Discard, r.Body)
	body := `{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}`
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/messages"):
		body = `{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}`
	case strings.HasPrefix(r.URL.Path, "/v1beta/"):
		body = `{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}`
	}
	w.Header().Set("Retry-After-Ms", "50")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	io.WriteString(w, body)
}

// handlerVar is a handler set later: the proxy is built outside the
// bubble, its provider inside.
type handlerVar struct {
	mu sync.Mutex
	h  http.Handler
}

func (v *handlerVar) set(h http.Handler) {
	v.mu.Lock()
	v.h = h
	v.mu.Unlock()
}

func (v *handlerVar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	h := v.h
	v.mu.Unlock()
	h.ServeHTTP(w, r)
}

// viaProxy returns a runner host whose SDK clients send to the proxy px in
// process, set up as a runner in another language is (see the README's
// Python section): each provider's base URL under its route, the call's
// run, phase and role in X-Autopack-* headers, the SDKs' retries left on.
// No dynretry runs in the runner.
func viaProxy(px *proxy.Proxy) *runner.Host {
	host := new(runner.Host)
	host.WrapLLM(func(next hooks.LLMService) hooks.LLMService {
		return hooks.LLMFunc(func(ctx context.Context, call hooks.Call, req hooks.Request) (hooks.Response, error) {
			return next.Complete(context.WithValue(ctx, runnerCallKey{}, call), call, req)
		})
	})
	srv := &http.Server{Handler: px}
	served := sim.Transport{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As an http.Server serves it: httputil.ReverseProxy cuts the
		// client's connection when a copy fails only then.
		px.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), http.ServerContextKey, srv)))
	})}
	host.WrapTransport(func(http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			call := req.Context().Value(runnerCallKey{}).(hooks.Call)
			out := req.Clone(req.Context())
			out.URL.Path = "/" + call.Provider + req.URL.Path
			out.Header.Set(proxy.HeaderRunID, call.RunID)
			out.Header.Set(proxy.HeaderPhaseID, call.PhaseID)
			out.Header.Set(proxy.HeaderRole, call.Role)
			return served.RoundTrip(out)
		})
	})
	return host
}

type runnerCallKey struct{}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
