package test

import (
	"context"
	"fmt"
	"github.com/autopack/dynretry/internal/testutil"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/autopack/dynretry/examples/runner"
	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/sim"
	"github.com/autopack/dynretry/telemetry"
	"github.com/autopack/dynretry/telemetry/export"
)

// simURL is the providers' address; sim.Transport serves it in-process.
const simURL = "http://sim.local"

// modelsYAML is the repository's models.yaml.
const modelsYAML = "../models.yaml"

// testKey is the API key of the tests that do not look for it.
const testKey = "sk-e2e-test-key-0000000000000000"

// env is a runner's startup with dynretry registered, and where its
// telemetry goes.
type env struct {
	plugin *plugin.Plugin
	host   *runner.Host
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	traces *testutil.SyncBuffer // the JSON-lines trace file
	logs   *testutil.SyncBuffer // the plugin's log
	dir    string               // the runner's working directory
}

// setup registers dynretry with a new runner host, as a runner does at
// startup. o.Environ nil means an empty environment here, not the
// process's. Call it outside any synctest bubble: the OpenFeature SDK's
// goroutines must not belong to one.
func setup(t *testing.T, o plugin.Options) *env {
	t.Helper()
	e := &env{
		host: new(runner.Host), spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader(),
		traces: new(testutil.SyncBuffer), logs: new(testutil.SyncBuffer), dir: t.TempDir(),
	}
	if o.Environ == nil {
		o.Environ = []string{}
	}
	o.Telemetry.SpanExporters = append(o.Telemetry.SpanExporters, e.spans)
	o.Telemetry.MetricReaders = append(o.Telemetry.MetricReaders, e.reader)
	file, err := export.TraceFile(e.traces)
	require.NoError(t, err)
	o.Telemetry.SpanExporters = append(o.Telemetry.SpanExporters, file)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p, err := plugin.Register(context.Background(), e.host, o)
	require.NoError(t, err)
	e.plugin = p
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	return e
}

// runner builds the runner, sending to h in-process, with key as its API
// key. Call it inside the bubble the runs run in.
func (e *env) runner(h http.Handler, key string) *runner.Runner {
	return runner.New(e.host, runner.Options{BaseURL: simURL, APIKey: key, Dir: e.dir, Transport: sim.Transport{Handler: h}})
}

func newSim(t *testing.T, cfg sim.Config) *sim.Provider {
	t.Helper()
	p, err := sim.New(cfg)
	require.NoError(t, err)
	return p
}

// The runner's steps.
var (
	auditor = runner.Step{Role: "auditor", Provider: "openai",
		Request: hooks.Request{System: "You audit.", Prompt: "Check the diff for regressions.", MaxTokens: 60}}
	builder = runner.Step{Role: "builder", Provider: "anthropic",
		Request: hooks.Request{System: "You build.", Prompt: "Write the parser and its tests.", MaxTokens: 60, Stream: true}}
	// hugeDoctor asks for more tokens than any window of the tests' providers
	// holds: a request_too_large failure, never retried by dynretry.
	hugeDoctor = runner.Step{Role: "doctor", Provider: "openai",
		Request: hooks.Request{System: "You diagnose.", Prompt: strings.Repeat("all of the repository ", 2000), MaxTokens: 60}}
)

// phases returns n phases of a streamed builder call and an auditor call.
func phases(n int) []runner.Phase {
	out := make([]runner.Phase, n)
	for i := range out {
		out[i] = runner.Phase{ID: fmt.Sprintf("phase-%d", i+1), Steps: []runner.Step{builder, auditor}}
	}
	return out
}

// runAll executes every run at once, as parallel executors do.
func runAll(ctx context.Context, r *runner.Runner, runs map[string][]runner.Phase) map[string]runner.Result {
	var mu sync.Mutex
	out := make(map[string]runner.Result, len(runs))
	var wg sync.WaitGroup
	for id, ph := range runs {
		wg.Go(func() {
			res := r.Run(ctx, id, ph)
			mu.Lock()
			out[id] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// span is an exported span with its attributes as a map.
type span struct {
	tracetest.SpanStub
	attrs map[string]any
}

func (s span) str(key string) string {
	v, _ := s.attrs[key].(string)
	return v
}

func (s span) int(key string) (int64, bool) {
	v, ok := s.attrs[key].(int64)
	return v, ok
}

func attrMap(kvs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

// calls returns the call spans, by span id.
func (e *env) calls() map[trace.SpanID]span {
	out := map[trace.SpanID]span{}
	for _, s := range e.spans.GetSpans() {
		if s.Name == telemetry.SpanCall {
			out[s.SpanContext.SpanID()] = span{s, attrMap(s.Attributes)}
		}
	}
	return out
}

// attempts returns the attempt spans by their parent's span id, each
// call's in the order of dynretry.attempt.
func (e *env) attempts() map[trace.SpanID][]span {
	out := map[trace.SpanID][]span{}
	for _, s := range e.spans.GetSpans() {
		if s.Name == telemetry.SpanAttempt {
			id := s.Parent.SpanID()
			out[id] = append(out[id], span{s, attrMap(s.Attributes)})
		}
	}
	for _, as := range out {
		slices.SortStableFunc(as, func(a, b span) int {
			x, _ := a.int(telemetry.AttrAttempt)
			y, _ := b.int(telemetry.AttrAttempt)
			return int(x - y)
		})
	}
	return out
}

// sentAttempts counts the attempt spans of attempts that were sent.
func (e *env) sentAttempts() int {
	n := 0
	for _, s := range e.spans.GetSpans() {
		if s.Name == telemetry.SpanAttempt && attrMap(s.Attributes)[telemetry.AttrSent] == true {
			n++
		}
	}
	return n
}

// metrics returns, for each instrument, the attribute sets of its points.
func (e *env) metrics(t *testing.T) map[string][]attribute.Set {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, e.reader.Collect(context.Background(), &rm))
	out := map[string][]attribute.Set{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name] = append(out[m.Name], p.Attributes)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[m.Name] = append(out[m.Name], p.Attributes)
				}
			}
		}
	}
	return out
}

// checkSpans checks every call span and every attempt span against the
// telemetry contract and each attempt span against its call span, and
// returns the number of attempt spans checked. wantCohort, wantVariant and
// wantProvider, when not "", are every call's.
func checkSpans(t *testing.T, e *env, wantCohort, wantVariant, wantProvider string) int {
	t.Helper()
	calls, attempts := e.calls(), e.attempts()
	require.NotEmpty(t, calls)
	n := 0
	for id, as := range attempts {
		call, ok := calls[id]
		if !assert.True(t, ok, "attempt span %s has no call span as parent", as[0].SpanContext.SpanID()) {
			continue
		}
		assert.Equal(t, call.SpanContext.TraceID(), as[0].SpanContext.TraceID(), "same trace")
		for i, a := range as {
			n++
			checkAttempt(t, call, a, i+1, i == len(as)-1)
		}
	}
	for id, c := range calls {
		assert.NotEmpty(t, c.str(telemetry.AttrRunID))
		assert.Equal(t, "dynamic-retry-delays", c.str(string(telemetry.KeyFlagKey)))
		assert.NotEmpty(t, c.str(string(telemetry.KeyFlagVariant)))
		assert.NotEmpty(t, c.str(string(telemetry.KeyFlagProvider)))
		if wantCohort != "" {
			assert.Equal(t, wantCohort, c.str(telemetry.AttrCohort), "call span of %s", c.str(telemetry.AttrRunID))
		}
		if wantVariant != "" {
			assert.Equal(t, wantVariant, c.str(string(telemetry.KeyFlagVariant)))
		}
		if wantProvider != "" {
			assert.Equal(t, wantProvider, c.str(string(telemetry.KeyFlagProvider)))
		}
		assert.NotEmpty(t, attempts[id], "call %s of run %s has no attempt span", c.str(telemetry.AttrRole), c.str(telemetry.AttrRunID))
	}
	return n
}

// checkAttempt checks one attempt span, the n-th of its call.
func checkAttempt(t *testing.T, call, a span, n int, last bool) {
	t.Helper()
	where := fmt.Sprintf("run %s, %s call, attempt %d", call.str(telemetry.AttrRunID), call.str(telemetry.AttrRole), n)
	assert.Equal(t, call.str(telemetry.AttrRunID), a.str(telemetry.AttrRunID), where)
	assert.Equal(t, call.str(telemetry.AttrCohort), a.str(telemetry.AttrCohort), where)
	attempt, ok := a.int(telemetry.AttrAttempt)
	assert.True(t, ok, where)
	assert.Equal(t, int64(n), attempt, "%s: attempts are 1-based and consecutive", where)

	decision := a.str(telemetry.AttrDecision)
	if last {
		assert.Contains(t, []string{"success", "give_up"}, decision, "%s: the last attempt ends the call", where)
	} else {
		assert.Equal(t, "retry", decision, "%s: only the last attempt ends the call", where)
	}
	delay, ok := a.int(telemetry.AttrDelayMS)
	if a.str(telemetry.AttrCohort) == "control" {
		assert.False(t, ok, "%s: no dynretry.delay_ms in control, whose delays the SDK chooses", where)
	} else {
		assert.True(t, ok, "%s: dynretry.delay_ms", where)
	}
	if decision != "retry" {
		assert.Zero(t, delay, "%s: delay_ms is 0 unless the decision is retry", where)
	}
	assert.NotEmpty(t, a.str(telemetry.AttrReason), "%s: dynretry.reason", where)

	sent := a.attrs[telemetry.AttrSent] == true
	status, hasStatus := a.int(string(telemetry.KeyHTTPStatusCode))
	resend, hasResend := a.int(string(telemetry.KeyHTTPResendCount))
	if sent {
		assert.Equal(t, n > 1, hasResend, "%s: http.request.resend_count iff resent", where)
		if hasResend {
			assert.Equal(t, int64(n-1), resend, where)
		}
	}
	class := a.str(telemetry.AttrClass)
	source := a.str(telemetry.AttrHintSource)
	_, hasHint := a.int(telemetry.AttrHintMS)
	if decision == "success" {
		assert.True(t, sent, where)
		assert.True(t, hasStatus, "%s: http.response.status_code", where)
		assert.Less(t, status, int64(400), where)
		assert.Empty(t, class, where)
		assert.NotContains(t, a.attrs, string(telemetry.KeyErrorType), where)
		assert.False(t, hasHint, where)
		return
	}
	assert.NotEmpty(t, class, "%s: dynretry.class on a failure", where)
	assert.Equal(t, class, a.str(string(telemetry.KeyErrorType)), "%s: error.type", where)
	assert.NotEmpty(t, source, "%s: dynretry.hint_source on a failure", where)
	if sent {
		assert.Equal(t, source != "backoff", hasHint, "%s: dynretry.hint_ms iff a hint was used (source %s)", where, source)
		if class != "connection" && class != "canceled" && class != "timeout" {
			assert.True(t, hasStatus, "%s: http.response.status_code", where)
			assert.GreaterOrEqual(t, status, int64(400), where)
		}
	}
	if decision == "retry" && call.str(telemetry.AttrCohort) == "treatment" {
		assert.Positive(t, delay, "%s: a treatment retry waits", where)
	}
}

// checkMetrics checks that each instrument has points and that every point
// carries dynretry.cohort, among wantCohorts. The delay histogram has
// points only for treatment: control's delays are the SDK's, unseen.
func checkMetrics(t *testing.T, e *env, wantCohorts ...string) {
	t.Helper()
	m := e.metrics(t)
	for _, name := range []string{telemetry.MetricAttempts, telemetry.MetricCalls, telemetry.MetricGiveups, telemetry.MetricDelay} {
		if name == telemetry.MetricDelay && !slices.Contains(wantCohorts, "treatment") {
			assert.Empty(t, m[name], "control records no retry delays")
			continue
		}
		if !assert.NotEmpty(t, m[name], "metric %s has no points", name) {
			continue
		}
		for _, set := range m[name] {
			v, ok := set.Value(attribute.Key(telemetry.AttrCohort))
			if assert.True(t, ok, "a point of %s without dynretry.cohort: %v", name, set.ToSlice()) {
				assert.Contains(t, wantCohorts, v.AsString(), "a point of %s", name)
			}
		}
	}
}
