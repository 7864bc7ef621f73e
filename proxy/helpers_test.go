package proxy_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/autopack/dynretry/internal/testutil"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/proxy"
	"github.com/autopack/dynretry/sim"
	"github.com/autopack/dynretry/telemetry"
	"github.com/autopack/dynretry/telemetry/export"
)

// TestMain checks that the tests leave no goroutine behind.
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

// testKey is the API key of the tests that do not look for it.
const testKey = "sk-proxy-test-key-000000000000"

// A fixture is a proxy serving on loopback, its telemetry and its log.
type fixture struct {
	proxy     *proxy.Proxy
	url       string // the proxy's base URL
	client    *http.Client
	spans     *tracetest.InMemoryExporter
	traceFile *testutil.SyncBuffer // the JSON-lines trace file, flushed by Shutdown
	metrics   *sdkmetric.ManualReader
	logs      *testutil.SyncBuffer
	handlers  sync.WaitGroup // requests being served on loopback (start)
}

// serve is the proxy's handler, counted in f.handlers.
func (f *fixture) serve(w http.ResponseWriter, r *http.Request) {
	f.handlers.Add(1)
	defer f.handlers.Done()
	f.proxy.ServeHTTP(w, r)
}

// settle waits for the requests being served on loopback to end: the proxy
// records a call's spans and metrics after its response went to the
// client. (A bubble's requests, startInProcess, have ended when
// synctest.Test returns.)
func (f *fixture) settle() { f.handlers.Wait() }

// start starts a proxy with environ as its environment (the upstreams are
// set there, e.g. DYNRETRY_PROXY__UPSTREAMS__OPENAI=URL) and configPath as
// its models.yaml ("" for none).
func start(t *testing.T, configPath string, environ ...string) *fixture {
	t.Helper()
	f := newFixture(t, configPath, nil, environ)
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	f.url = srv.URL
	tr := &http.Transport{}
	f.client = &http.Client{Transport: tr}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	return f
}

// inProcess is the base URL of a proxy that startInProcess started.
const inProcess = "http://proxy.test"

// startInProcess starts a proxy whose openai route goes to up, and a
// client that calls it, both in process without sockets (sim.Transport),
// so that they run in a testing/synctest bubble. Call it outside the
// bubble (the OpenFeature SDK's goroutines must not belong to one), and
// drain the proxy inside it (its timer belongs to the bubble).
func startInProcess(t *testing.T, up http.Handler, environ ...string) *fixture {
	t.Helper()
	f := newFixture(t, "", sim.Transport{Handler: up}, append([]string{"DYNRETRY_PROXY__UPSTREAMS__OPENAI=http://upstream.test"}, environ...))
	f.url = inProcess
	srv := &http.Server{Handler: f.proxy}
	f.client = &http.Client{Transport: sim.Transport{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As an http.Server serves it: httputil.ReverseProxy cuts the
		// client's connection when a copy fails only then.
		f.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), http.ServerContextKey, srv)))
	})}}
	return f
}

// newFixture starts a proxy with transport to its upstreams (nil for the
// default), environ and configPath; it is shut down when the test ends.
func newFixture(t *testing.T, configPath string, transport http.RoundTripper, environ []string) *fixture {
	t.Helper()
	f := &fixture{spans: tracetest.NewInMemoryExporter(), traceFile: new(testutil.SyncBuffer), metrics: sdkmetric.NewManualReader(), logs: new(testutil.SyncBuffer)}
	file, err := export.TraceFile(f.traceFile)
	require.NoError(t, err)
	p, err := proxy.New(context.Background(), proxy.Options{Transport: transport, Plugin: plugin.Options{
		ConfigPath: configPath,
		Environ:    append([]string{}, environ...),
		Telemetry: telemetry.Options{
			SpanExporters: []sdktrace.SpanExporter{f.spans, file},
			MetricReaders: []sdkmetric.Reader{f.metrics},
		},
		Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}})
	require.NoError(t, err)
	f.proxy = p
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	return f
}

// configFile writes a models.yaml whose dynretry section is section (YAML,
// one flow-style line) and returns its path.
func configFile(t *testing.T, section string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "models.yaml")
	yaml := "lovable_patterns:\n  p1_dynamic_retry_delays:\n    " + section + "\n"
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	return path
}

// A request an upstream received.
type received struct {
	Method, Path, RawPath, Query, Host string
	Header                             http.Header
	Body                               []byte // the first MiB
	Size                               int64  // the whole body's
}

// An upstream is a handler that records what it receives and answers with
// reply; newUpstream serves it on loopback.
type upstream struct {
	*httptest.Server // nil when it serves in process
	mu               sync.Mutex
	got              []received
	reply            func(n int, w http.ResponseWriter, r *http.Request) // n: the 1-based request number
}

func newUpstream(t *testing.T, reply func(n int, w http.ResponseWriter, r *http.Request)) *upstream {
	t.Helper()
	u := &upstream{reply: reply}
	u.Server = httptest.NewServer(u)
	t.Cleanup(u.Close)
	return u
}

// ServeHTTP records r and answers it with u.reply.
func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body bytes.Buffer
	size, _ := io.Copy(&body, io.LimitReader(r.Body, 1<<20))
	rest, _ := io.Copy(io.Discard, r.Body)
	u.mu.Lock()
	u.got = append(u.got, received{
		Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Query: r.URL.RawQuery, Host: r.Host,
		Header: r.Header.Clone(), Body: body.Bytes(), Size: size + rest,
	})
	n := len(u.got)
	u.mu.Unlock()
	u.reply(n, w, r)
}

func (u *upstream) requests() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.got...)
}

// ok answers 200 with a chat completion.
func ok(_ int, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`)
}

// status answers every request with code and body.
func status(code int, body string, header ...string) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// The environments of the cohorts: the switch forces every call.
var (
	treatment = []string{"LOVABLE_DYNAMIC_RETRY_DELAYS=true"}
	control   = []string{"LOVABLE_DYNAMIC_RETRY_DELAYS=false"}
)

// openAI is the environment sending the openai route to u.
func openAI(u *upstream, env ...string) []string {
	return append([]string{"DYNRETRY_PROXY__UPSTREAMS__OPENAI=" + u.URL}, env...)
}

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}`

// post sends body to the proxy at path with the run's headers and the test
// key.
func (f *fixture) post(t *testing.T, path, body string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(proxy.HeaderRunID, "run-1")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.client.Do(req)
	require.NoError(t, err)
	return resp
}

// read reads and closes resp's body.
func read(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return string(b)
}

// spanAttrs returns the attributes of the ended spans named name.
func (f *fixture) spanAttrs(name string) []map[string]any {
	f.settle()
	var out []map[string]any
	for _, s := range f.spans.GetSpans() {
		if s.Name != name {
			continue
		}
		m := map[string]any{"status": s.Status.Code.String()}
		for _, kv := range s.Attributes {
			m[string(kv.Key)] = kv.Value.AsInterface()
		}
		out = append(out, m)
	}
	return out
}

// dump returns everything the proxy exported or logged, as text: spans
// (with their events and attributes), metrics and the log.
func (f *fixture) dump(t *testing.T) string {
	t.Helper()
	f.settle()
	var b bytes.Buffer
	for _, s := range f.spans.GetSpans() {
		b.WriteString(s.Name + " " + s.Status.Description + "\n")
		write := func(kvs []attribute.KeyValue) {
			for _, kv := range kvs {
				b.WriteString(string(kv.Key) + "=" + kv.Value.Emit() + "\n")
			}
		}
		write(s.Attributes)
		for _, e := range s.Events {
			b.WriteString(e.Name + "\n")
			write(e.Attributes)
		}
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, f.metrics.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			b.WriteString(m.Name + "\n")
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					for _, kv := range dp.Attributes.ToSlice() {
						b.WriteString(string(kv.Key) + "=" + kv.Value.Emit() + "\n")
					}
				}
			}
		}
	}
	b.WriteString(f.logs.String())
	return b.String()
}
