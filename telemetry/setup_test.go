package telemetry

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"github.com/autopack/dynretry/internal/testutil"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/telemetry/export"
)

// recordCall records one call of two attempts, a 429 retried and a success.
func recordCall(tel *Telemetry) {
	ctx, span := tel.StartCall(context.Background(), treatmentCall("run-file"))
	obs := tel.Observer()
	obs.Observe(ctx, retry.Event{
		Key: testKey, Sent: true, Start: t0, End: t0.Add(time.Second),
		Decision: retry.Decision{
			Assessment: retry.Assessment{
				Class: retry.RateLimited, Status: 429,
				Hint: retry.Hint{Wait: 2 * time.Second, Source: retry.SourceRetryAfter},
			},
			Attempt: 1, Action: retry.Retry, HintSource: retry.SourceRetryAfter, Delay: 2100 * time.Millisecond,
			Reason: "rate_limited (HTTP 429): the server asked for 2s (retry-after); retrying in 2.1s",
		},
	})
	obs.Observe(ctx, retry.Event{
		Key: testKey, Sent: true, Start: t0.Add(3100 * time.Millisecond), End: t0.Add(4 * time.Second),
		Decision: retry.Decision{Assessment: retry.Assessment{Status: 200}, Attempt: 2, Action: retry.Success, Reason: "succeeded"},
	})
	ctx2, span2 := tel.StartCall(context.Background(), treatmentCall("run-file-2"))
	obs.Observe(ctx2, retry.Event{
		Key: testKey, Sent: true, Start: t0, End: t0.Add(time.Second),
		Decision: retry.Decision{
			Assessment: retry.Assessment{Class: retry.QuotaExhausted, Status: 429},
			Attempt:    1, Action: retry.GiveUp, HintSource: retry.SourceBackoff,
			Reason: "quota_exhausted (HTTP 429): billing, spend cap, credits or a daily or monthly quota; no wait within a run helps",
		},
	})
	tel.EndCall(ctx2, span2, retry.QuotaExhausted, errors.New("insufficient_quota"))
	tel.EndCall(ctx, span, "", nil)
}

func TestTraceFile(t *testing.T) {
	file := new(testutil.SyncBuffer)
	tel, err := Setup(context.Background(), Options{SpanExporters: traceFile(t, file)})
	require.NoError(t, err)
	recordCall(tel)
	// Spans are written as they end, before Shutdown.
	require.Equal(t, 5, strings.Count(file.String(), "\n"))
	require.NoError(t, tel.Shutdown(context.Background()))

	type jsonSpan struct {
		Name        string
		SpanContext struct{ TraceID, SpanID string }
		Parent      struct{ SpanID string }
		StartTime   time.Time
		EndTime     time.Time
		Attributes  []struct {
			Key   string
			Value struct {
				Type  string
				Value any
			}
		}
		Resource []struct{ Key string }
	}
	var spans []jsonSpan
	sc := bufio.NewScanner(strings.NewReader(file.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s jsonSpan
		require.NoError(t, json.Unmarshal(sc.Bytes(), &s), "line %q", sc.Text())
		spans = append(spans, s)
	}
	require.NoError(t, sc.Err())
	require.Len(t, spans, 5)
	// In the order they ended: run-file's first attempt, run-file-2's
	// attempt and call, then run-file's successful attempt, recorded when
	// its call ended, and its call.
	names := []string{spans[0].Name, spans[1].Name, spans[2].Name, spans[3].Name, spans[4].Name}
	assert.Equal(t, []string{SpanAttempt, SpanAttempt, SpanCall, SpanAttempt, SpanCall}, names)

	attrs := func(s jsonSpan) map[string]any {
		m := map[string]any{}
		for _, a := range s.Attributes {
			m[a.Key] = a.Value.Value
		}
		return m
	}
	first := attrs(spans[0])
	assert.Equal(t, "run-file", first[AttrRunID])
	assert.Equal(t, "treatment", first[AttrCohort])
	assert.Equal(t, float64(1), first[AttrAttempt])
	assert.Equal(t, "rate_limited", first[AttrClass])
	assert.Equal(t, "retry", first[AttrDecision])
	assert.Equal(t, true, first[AttrSent])
	assert.Equal(t, "retry-after", first[AttrHintSource])
	assert.Equal(t, float64(2000), first[AttrHintMS])
	assert.Equal(t, float64(2100), first[AttrDelayMS])
	assert.Equal(t, float64(429), first["http.response.status_code"])
	assert.True(t, spans[0].StartTime.Equal(t0))
	assert.Equal(t, spans[4].SpanContext.SpanID, spans[0].Parent.SpanID, "attempt's parent is its call")
	assert.Equal(t, "give_up", attrs(spans[1])[AttrDecision])
	assert.Equal(t, "quota_exhausted", attrs(spans[2])["error.type"])
	assert.Equal(t, "success", attrs(spans[3])[AttrDecision])
	assert.True(t, spans[3].StartTime.Equal(t0.Add(3100*time.Millisecond)), "the attempt's own start")
	assert.True(t, spans[3].EndTime.Equal(t0.Add(4*time.Second)), "the attempt's own end")
	assert.Equal(t, spans[4].SpanContext.SpanID, spans[3].Parent.SpanID)
	assert.Equal(t, "dynretry-enabled", attrs(spans[4])["feature_flag.key"])
	var service bool
	for _, r := range spans[0].Resource {
		service = service || r.Key == "service.name"
	}
	assert.True(t, service, "resource has service.name")
}

// TestOTLP: with an OTLP endpoint in the standard variables, export.FromEnv
// gives OTLP over HTTP exporters that send traces and metrics there.
func TestOTLP(t *testing.T) {
	var (
		mu    sync.Mutex
		paths = map[string]int{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		if r.Method == http.MethodPost {
			paths[r.URL.Path]++
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_METRICS_EXPORTER", "")

	env, err := export.FromEnv(context.Background())
	require.NoError(t, err)
	require.Len(t, env.SpanExporters, 1)
	require.Len(t, env.MetricReaders, 1)
	tel, err := Setup(context.Background(), Options{
		ServiceName: "dynretry-test", BatchSpanExporters: env.SpanExporters, MetricReaders: env.MetricReaders,
	})
	require.NoError(t, err)
	recordCall(tel)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, tel.Shutdown(ctx))

	mu.Lock()
	defer mu.Unlock()
	assert.Positive(t, paths["/v1/traces"], "POSTs on /v1/traces: %v", paths)
	assert.Positive(t, paths["/v1/metrics"], "POSTs on /v1/metrics: %v", paths)
	srv.CloseClientConnections()
}

func TestSetupServiceName(t *testing.T) {
	for name, tc := range map[string]struct{ opt, env, want string }{
		"default":     {"", "", DefaultServiceName},
		"option":      {"svc-opt", "", "svc-opt"},
		"env":         {"", "svc-env", "svc-env"},
		"option wins": {"svc-opt", "svc-env", "svc-opt"},
		"env attrs":   {"", "", "svc-attrs"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("OTEL_SERVICE_NAME", tc.env)
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
			if name == "env attrs" {
				t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=svc-attrs,deployment.environment.name=test")
			}
			res, err := newResource(context.Background(), tc.opt)
			require.NoError(t, err)
			v, ok := res.Set().Value("service.name")
			require.True(t, ok)
			assert.Equal(t, tc.want, v.AsString())
		})
	}
}
