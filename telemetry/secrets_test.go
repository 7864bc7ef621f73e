package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/autopack/dynretry/internal/testutil"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/retry"
)

// canary is in every fake secret; it must appear in no telemetry output.
const canary = "CANARY7f3q"

var (
	fakeOpenAIKey    = "sk-proj-" + canary + "abcdefghijklmnop"
	fakeAnthropicKey = "sk-ant-api03-" + canary + "qrstuvwxyz"
	fakeGoogleKey    = "AIzaSy" + canary + "0123456789abcdef"
)

// assertNoCanary checks every span (names, attributes, events, status,
// resource), every metric attribute, the trace file and the Prometheus
// scrape.
func assertNoCanary(t *testing.T, h *harness, file *testutil.SyncBuffer) {
	t.Helper()
	spans := h.spans.GetSpans()
	require.NotEmpty(t, spans)
	for _, s := range spans {
		b, err := json.Marshal(s)
		require.NoError(t, err)
		assert.NotContains(t, string(b), canary, "span %s", s.Name)
		for _, kv := range s.Attributes {
			assert.NotContains(t, kv.Value.String(), canary, "span %s attribute %s", s.Name, kv.Key)
		}
		for _, ev := range s.Events {
			for _, kv := range ev.Attributes {
				assert.NotContains(t, kv.Value.String(), canary, "span %s event %s attribute %s", s.Name, ev.Name, kv.Key)
			}
		}
		assert.NotContains(t, s.Status.Description, canary)
	}
	attrs := h.metricAttrs(t)
	require.NotEmpty(t, attrs)
	for _, a := range attrs {
		assert.NotContains(t, a, canary, "metric attribute")
	}
	require.NotEmpty(t, file.String())
	assert.NotContains(t, file.String(), canary, "trace file")
	scrape := scrapeMetrics(t, h)
	assert.NotContains(t, scrape, canary, "prometheus scrape")
}

func scrapeMetrics(t *testing.T, h *harness) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.prom.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

// TestNoSecretsInEvents feeds events that carry fake keys everywhere an
// Event can carry text.
func TestNoSecretsInEvents(t *testing.T) {
	file := new(testutil.SyncBuffer)
	h := newHarness(t, Options{SpanExporters: traceFile(t, file)})
	info := treatmentCall("run-canary")
	info.Flag.Err = errors.New("flag provider: api_key=" + canary + " rejected")
	info.Flag.Event.Attributes["error.message"] = "flag provider: api_key=" + canary + " rejected"
	info.Flag.Event.Attributes["feature_flag.result.value"] = map[string]string{"x": canary}
	ctx, span := h.tel.StartCall(context.Background(), info)
	key := retry.Key{Provider: retry.OpenAI, Model: "gpt-test", Credential: fakeOpenAIKey} // wrongly raw
	for i, a := range []retry.Action{retry.Retry, retry.GiveUp} {
		h.tel.Observer().Observe(ctx, retry.Event{
			Key: key, Sent: true, Start: t0, End: t0.Add(time.Second),
			Decision: retry.Decision{
				Assessment: retry.Assessment{
					Class: retry.Auth, Status: 401, Provider: retry.OpenAI,
					Message: "Incorrect API key provided: " + fakeOpenAIKey,
					Err:     errors.New("POST: 401 x-api-key: " + fakeAnthropicKey),
				},
				Attempt: i + 1, Action: a, HintSource: retry.SourceBackoff, Delay: time.Second,
				Reason: "auth (HTTP 401): provider said API key not valid: " + fakeGoogleKey,
			},
		})
	}
	h.tel.EndCall(ctx, span, retry.Auth, errors.New("401: Incorrect API key provided: "+fakeOpenAIKey))
	assertNoCanary(t, h, file)

	var sawRedacted bool
	for _, s := range h.spans.GetSpans() {
		if r, ok := attrMap(s.Attributes)[AttrReason]; ok {
			sawRedacted = sawRedacted || strings.Contains(r.(string), Redacted)
		}
	}
	assert.True(t, sawRedacted, "the reason is kept, redacted")
}

// TestNoSecretsFromEngine runs the real engine over a transport whose
// requests carry a fake key and whose provider echoes it in its errors.
func TestNoSecretsFromEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		file := new(testutil.SyncBuffer)
		h := newHarness(t, Options{SpanExporters: traceFile(t, file)})
		r, err := retry.New(retry.DefaultConfig(), retry.WithObserver(h.tel.Observer()))
		require.NoError(t, err)

		var n int
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			n++
			h := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req_1"}}
			switch n {
			case 1: // a rate limit that echoes the key
				h.Set("Retry-After-Ms", "1200")
				return response(req, 429, h, `{"error":{"message":"Rate limit reached for key `+fakeOpenAIKey+
					` Please try again in 1.2s.","type":"requests","code":"rate_limit_exceeded"}}`), nil
			default: // the key is refused
				return response(req, 401, h, `{"error":{"message":"Incorrect API key provided: `+fakeOpenAIKey+
					`. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}`), nil
			}
		})
		client := &http.Client{Transport: &retry.Transport{Base: base, Retrier: r}}

		info := treatmentCall("run-engine")
		ctx, span := h.tel.StartCall(context.Background(), info)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.openai.com/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-test","messages":[]}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+fakeOpenAIKey)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, 401, resp.StatusCode)
		h.tel.EndCall(ctx, span, retry.Auth, nil)

		spans := h.spans.GetSpans()
		require.Len(t, spans, 3)
		call := spans[2]
		require.Equal(t, SpanCall, call.Name)
		first, second := attrMap(spans[0].Attributes), attrMap(spans[1].Attributes)
		assert.Equal(t, "retry", first[AttrDecision])
		assert.Equal(t, "retry-after-ms", first[AttrHintSource])
		assert.Equal(t, int64(1200), first[AttrHintMS])
		assert.Equal(t, "give_up", second[AttrDecision])
		assert.Equal(t, "auth", second[AttrClass])
		assert.Equal(t, int64(1), second["http.request.resend_count"])
		for _, s := range spans[:2] {
			assert.Equal(t, SpanAttempt, s.Name)
			assert.Equal(t, call.SpanContext.SpanID(), s.Parent.SpanID())
		}
		// Virtual time: the first attempt at start, the second after the delay.
		assert.True(t, spans[0].StartTime.Equal(start), "first attempt starts at %v, want %v", spans[0].StartTime, start)
		delay := time.Duration(first[AttrDelayMS].(int64)) * time.Millisecond
		assert.GreaterOrEqual(t, spans[1].StartTime.Sub(spans[0].EndTime), delay)

		assertNoCanary(t, h, file)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func response(req *http.Request, status int, h http.Header, body string) *http.Response {
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Header: h, Request: req,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
}
