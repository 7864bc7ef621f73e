package coordination_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/internal/redistest"
	"github.com/autopack/dynretry/internal/testutil"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/plugin/coordination"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

const secret = "a fleet secret of 32 characters!"

// host records the transport wrapper a plugin installs.
type host struct {
	transport func(http.RoundTripper) http.RoundTripper
}

func (h *host) WrapLLM(func(hooks.LLMService) hooks.LLMService)                 {}
func (h *host) WrapErrorReporter(func(hooks.ErrorReporter) hooks.ErrorReporter) {}
func (h *host) WrapTransport(w func(http.RoundTripper) http.RoundTripper)       { h.transport = w }

// redisEnv is the environment that selects srv's Redis.
func redisEnv(srv *redistest.Server, extra ...string) []string {
	return append([]string{
		"DYNRETRY_COORDINATION__BACKEND=redis",
		"DYNRETRY_COORDINATION__REDIS_URL=" + srv.URL(),
		"DYNRETRY_COORDINATION__CREDENTIAL_SECRET=" + secret,
		"DYNRETRY_COORDINATION__TIMEOUT=1s", // a stall of the test machine must not look like a Redis fault
	}, extra...)
}

// registered is a plugin with its host, spans and metrics.
type registered struct {
	p       *plugin.Plugin
	host    *host
	spans   *tracetest.InMemoryExporter
	metrics *sdkmetric.ManualReader
}

func register(t *testing.T, environ []string) registered {
	t.Helper()
	r := registered{host: new(host), spans: tracetest.NewInMemoryExporter(), metrics: sdkmetric.NewManualReader()}
	p, err := plugin.Register(context.Background(), r.host, plugin.Options{
		Environ: environ, OpenStore: coordination.Open,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Telemetry: telemetry.Options{SpanExporters: []sdktrace.SpanExporter{r.spans}, MetricReaders: []sdkmetric.Reader{r.metrics}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	r.p = p
	return r
}

// call sends one treatment request through the plugin's transport to api.
func (r registered) call(t *testing.T, api string) {
	t.Helper()
	ctx := hooks.WithCohort(context.Background(), rollout.Treatment)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sk-fleet-key")
	resp, err := r.host.transport(http.DefaultTransport).RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
}

// degraded reads the gauge.
func (r registered) degraded(t *testing.T) int64 {
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.metrics.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == telemetry.MetricCoordinationDegraded {
				return m.Data.(metricdata.Gauge[int64]).DataPoints[0].Value
			}
		}
	}
	t.Fatal("no coordination gauge")
	return -1
}

// coordinationOf returns the dynretry.coordination of the last attempt span.
func (r registered) coordinationOf(t *testing.T) string {
	spans := r.spans.GetSpans()
	for i := len(spans) - 1; i >= 0; i-- {
		if spans[i].Name == telemetry.SpanAttempt {
			for _, kv := range spans[i].Attributes {
				if string(kv.Key) == telemetry.AttrCoordination {
					return kv.Value.AsString()
				}
			}
			return ""
		}
	}
	t.Fatal("no attempt span")
	return ""
}

// Two executors registered with coordination.backend: redis share one
// limit's state, under the credential's keyed name; the gauge and the spans
// say when Redis is away, and coordination resumes by itself.
func TestRegisterWithRedis(t *testing.T) {
	srv := redistest.New(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Ratelimit-Limit-Requests", "60")
		w.Header().Set("X-Ratelimit-Remaining-Requests", "59")
		w.Header().Set("X-Ratelimit-Reset-Requests", "1s")
		w.Write([]byte(`{"id":"x"}`))
	}))
	defer api.Close()

	a, b := register(t, redisEnv(srv)), register(t, redisEnv(srv))
	assert.Equal(t, "redis", a.p.Settings().Coordination.Backend)
	a.call(t, api.URL)
	b.call(t, api.URL)
	assert.Equal(t, telemetry.CoordinationShared, a.coordinationOf(t))
	assert.Equal(t, int64(0), a.degraded(t))

	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	keys, err := c.Keys(context.Background(), "dynretry:*").Result()
	require.NoError(t, err)
	assert.Len(t, keys, 2, "one limit and one fleet, shared by both executors: %v", keys)
	for _, k := range keys {
		assert.NotContains(t, k, "sk-fleet-key")
	}

	srv.Kill()
	a.call(t, api.URL)
	assert.Equal(t, telemetry.CoordinationLocal, a.coordinationOf(t))
	assert.Equal(t, int64(1), a.degraded(t))
	require.NoError(t, srv.Restart())
	require.Eventually(t, func() bool { return a.degraded(t) == 0 }, 5*time.Second, 10*time.Millisecond)
	a.call(t, api.URL)
	assert.Equal(t, telemetry.CoordinationShared, a.coordinationOf(t))
}

// A configuration Register cannot open fails it, naming the key and not its
// value; with the memory backend there is neither gauge nor attribute.
func TestRegisterErrors(t *testing.T) {
	srv := redistest.New(t)
	for name, tc := range map[string]struct {
		environ   []string
		openStore bool
		want      string
	}{
		"no opener":     {environ: redisEnv(srv), want: `coordination.backend is "redis", but this program cannot open that store`},
		"bad option":    {environ: redisEnv(srv, "DYNRETRY_COORDINATION__REDIS_URL=redis://u:hunter2pass@h:1?pool_sizes=3"), openStore: true, want: "coordination.redis_url: redisstore: invalid Redis URL"},
		"no secret":     {environ: redisEnv(srv, "DYNRETRY_COORDINATION__CREDENTIAL_SECRET="), openStore: true, want: "coordination.credential_secret: required"},
		"short secret":  {environ: redisEnv(srv, "DYNRETRY_COORDINATION__CREDENTIAL_SECRET=hunter2"), openStore: true, want: "coordination.credential_secret = (not shown)"},
		"bad URL value": {environ: redisEnv(srv, "DYNRETRY_COORDINATION__REDIS_URL=http://u:hunter2pass@h"), openStore: true, want: "coordination.redis_url = (not shown)"},
	} {
		t.Run(name, func(t *testing.T) {
			o := plugin.Options{Environ: tc.environ, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if tc.openStore {
				o.OpenStore = coordination.Open
			}
			p, err := plugin.Register(context.Background(), new(host), o)
			require.Error(t, err)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "hunter2")
		})
	}
}

func TestMemoryBackend(t *testing.T) {
	r := register(t, []string{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{}`)) }))
	defer api.Close()
	r.call(t, api.URL)
	assert.Equal(t, "", r.coordinationOf(t))
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.metrics.Collect(context.Background(), &rm))
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != telemetry.MetricCoordinationDegraded {
				continue
			}
			found = true
			g, ok := m.Data.(metricdata.Gauge[int64])
			require.True(t, ok, "the gauge is an int64 gauge")
			require.Len(t, g.DataPoints, 1)
			assert.Equal(t, int64(0), g.DataPoints[0].Value, "memory: never degraded")
		}
	}
	assert.True(t, found, "the gauge is exported, at 0")
}

// A change of the coordination section is logged and applies at the next
// start; the rest of the change applies now.
func TestReloadKeepsCoordination(t *testing.T) {
	srv := redistest.New(t)
	path := filepath.Join(t.TempDir(), "models.yaml")
	write := func(prefix string, percent int) {
		body := "lovable_patterns:\n  p1_dynamic_retry_delays:\n    rollout_percent: " + strconv.Itoa(percent) +
			"\n    coordination: {backend: redis, key_prefix: \"" + prefix + "\", redis_url: \"" + srv.URL() + "\", credential_secret: \"" + secret + "\"}\n"
		require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
	}
	write("one:", 10)
	logs := new(testutil.SyncBuffer)
	p, err := plugin.Register(context.Background(), new(host), plugin.Options{
		ConfigPath: path, Environ: []string{}, OpenStore: coordination.Open, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	require.NoError(t, err)
	defer p.Shutdown(context.Background())
	write("two:", 20)
	require.Eventually(t, func() bool { return p.Settings().RolloutPercent == 20 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, "one:", p.Settings().Coordination.KeyPrefix, "the store in force")
	assert.Contains(t, logs.String(), "coordination section of models.yaml changed: it applies at the next start")
}

// The Redis client's own lines, such as its pool failing to dial a Redis
// that is down, go to the plugin's logger at level Debug, not to stderr.
func TestRedisClientLogs(t *testing.T) {
	srv := redistest.New(t)
	srv.Kill()
	var logs testutil.SyncBuffer
	h := new(host)
	p, err := plugin.Register(context.Background(), h, plugin.Options{
		Environ: redisEnv(srv), OpenStore: coordination.Open,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"id":"x"}`)) }))
	defer api.Close()
	registered{p: p, host: h}.call(t, api.URL)
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "level=DEBUG msg=\"redis: connection pool: failed to dial")
	}, 10*time.Second, 20*time.Millisecond, "logs:\n%s", &logs)
	assert.Contains(t, logs.String(), "source=go-redis")
	assert.Contains(t, logs.String(), "level=WARN msg=\"dynretry: the shared pacing store (Redis) is unavailable")
}
