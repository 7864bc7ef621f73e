package proxy_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/proxy"
	"github.com/autopack/dynretry/telemetry"
)

const (
	rateLimited = `{"error":{"message":"Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	quota       = `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`
	invalid     = `{"error":{"message":"Invalid value for 'temperature'.","type":"invalid_request_error","param":"temperature","code":null}}`
)

// limitedOnce answers the first request 429 (retry after 20 ms), the
// others 200.
func limitedOnce(n int, w http.ResponseWriter, r *http.Request) {
	if n == 1 {
		status(429, rateLimited, "Retry-After-Ms", "20")(n, w, r)
		return
	}
	ok(n, w, r)
}

// Treatment: the engine retries within the request, sending the same body
// again, and the client sees one success.
func TestTreatmentRetries(t *testing.T) {
	up := newUpstream(t, limitedOnce)
	f := start(t, "", openAI(up, treatment...)...)
	resp := f.post(t, "/openai/v1/chat/completions", chatBody, proxy.HeaderPhaseID, "phase-1", proxy.HeaderRole, "auditor")
	body := read(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, body, "chat.completion")
	assert.Equal(t, "treatment", resp.Header.Get(proxy.HeaderCohort))
	assert.Empty(t, resp.Header.Get(proxy.HeaderClass), "a success has no failure headers")
	assert.Empty(t, resp.Header.Get(proxy.HeaderReason))

	got := up.requests()
	require.Len(t, got, 2)
	assert.Equal(t, chatBody, string(got[1].Body), "the body is sent again whole")
	assert.Equal(t, got[0].Header.Get("Authorization"), got[1].Header.Get("Authorization"))

	// The same spans as in process: the call with the run's attributes, an
	// attempt span per attempt.
	calls := f.spanAttrs("dynretry.call")
	require.Len(t, calls, 1)
	c := calls[0]
	assert.Equal(t, "run-1", c["dynretry.run_id"])
	assert.Equal(t, "phase-1", c["dynretry.phase_id"])
	assert.Equal(t, "auditor", c["dynretry.role"])
	assert.Equal(t, "openai", c["gen_ai.provider.name"])
	assert.Equal(t, "gpt-4o-mini", c["gen_ai.request.model"])
	assert.Equal(t, "treatment", c["dynretry.cohort"])
	assert.Equal(t, "dynamic-retry-delays", c["feature_flag.key"])
	assert.Equal(t, "dynretry-env", c["feature_flag.provider.name"])
	assert.NotEqual(t, "Error", c["status"])
	attempts := f.spanAttrs("dynretry.attempt")
	require.Len(t, attempts, 2)
	assert.Equal(t, "retry", attempts[0]["dynretry.decision"])
	assert.Equal(t, "rate_limited", attempts[0]["dynretry.class"])
	assert.Equal(t, "retry-after-ms", attempts[0]["dynretry.hint_source"])
	assert.Equal(t, int64(429), attempts[0]["http.response.status_code"])
	assert.Equal(t, "success", attempts[1]["dynretry.decision"])
	assert.Equal(t, int64(1), attempts[1]["http.request.resend_count"])
}

// A treatment give-up returns the provider's response with the call's
// headers and X-Should-Retry: false, so the SDK does not retry on top.
func TestTreatmentGiveUp(t *testing.T) {
	for name, tc := range map[string]struct {
		status     int
		body       string
		class      string
		attempts   string
		reasonPart string
	}{
		"quota":   {429, quota, "quota_exhausted", "1", "quota_exhausted (HTTP 429)"},
		"invalid": {400, invalid, "invalid_request", "1", "invalid_request (HTTP 400)"},
	} {
		t.Run(name, func(t *testing.T) {
			up := newUpstream(t, status(tc.status, tc.body))
			f := start(t, "", openAI(up, treatment...)...)
			resp := f.post(t, "/openai/v1/chat/completions", chatBody)
			body := read(t, resp)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.JSONEq(t, tc.body, body, "the provider's own body")
			assert.Equal(t, "treatment", resp.Header.Get(proxy.HeaderCohort))
			assert.Equal(t, tc.class, resp.Header.Get(proxy.HeaderClass))
			assert.Equal(t, tc.attempts, resp.Header.Get(proxy.HeaderAttempts))
			assert.Contains(t, resp.Header.Get(proxy.HeaderReason), tc.reasonPart)
			assert.Equal(t, "false", resp.Header.Get("X-Should-Retry"))
			assert.Len(t, up.requests(), 1)
			calls := f.spanAttrs("dynretry.call")
			require.Len(t, calls, 1)
			assert.Equal(t, "Error", calls[0]["status"])
			assert.Equal(t, tc.class, calls[0]["error.type"])
		})
	}
}

// Control: one attempt, passed through as the provider answered (no
// X-Should-Retry added), so the client's SDK retries as it always did; the
// attempt is observed with the SDK's attempt number.
func TestControlPassesThrough(t *testing.T) {
	up := newUpstream(t, status(429, rateLimited, "Retry-After", "1"))
	f := start(t, "", openAI(up, control...)...)
	resp := f.post(t, "/openai/v1/chat/completions", chatBody, "X-Stainless-Retry-Count", "1")
	read(t, resp)
	assert.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"), "the provider's headers pass")
	assert.Empty(t, resp.Header.Get("X-Should-Retry"))
	assert.Equal(t, "control", resp.Header.Get(proxy.HeaderCohort))
	assert.Equal(t, "rate_limited", resp.Header.Get(proxy.HeaderClass))
	assert.Equal(t, "2", resp.Header.Get(proxy.HeaderAttempts), "the SDK's second attempt")
	assert.Contains(t, resp.Header.Get(proxy.HeaderReason), "control cohort: the SDK retries this")
	assert.Len(t, up.requests(), 1)
	attempts := f.spanAttrs("dynretry.attempt")
	require.Len(t, attempts, 1)
	assert.Equal(t, int64(2), attempts[0]["dynretry.attempt"])
	assert.Equal(t, "control", attempts[0]["dynretry.cohort"])
}

// Cohorts come from the rollout by run id, as in process; a request
// without a run id cannot be placed by the percentage and is in control,
// unless the switch forces it.
func TestCohortByRunID(t *testing.T) {
	up := newUpstream(t, ok)
	cohort := func(f *fixture, runID string) string {
		resp := f.post(t, "/openai/v1/chat/completions", chatBody, proxy.HeaderRunID, runID)
		read(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return resp.Header.Get(proxy.HeaderCohort)
	}
	all := start(t, "", openAI(up, "DYNRETRY_ROLLOUT_PERCENT=100")...)
	assert.Equal(t, "treatment", cohort(all, "run-a"))
	assert.Equal(t, "control", cohort(all, ""), "no run id: not placed")
	calls := all.spanAttrs("dynretry.call")
	require.Len(t, calls, 2)
	assert.NotContains(t, calls[1], "dynretry.run_id")
	assert.Contains(t, all.dump(t), "error.type=targeting_key_missing", "the span says why")

	none := start(t, "", openAI(up, "DYNRETRY_ROLLOUT_PERCENT=0")...)
	assert.Equal(t, "control", cohort(none, "run-a"))

	half := start(t, "", openAI(up, "DYNRETRY_ROLLOUT_PERCENT=50")...)
	seen := map[string]int{}
	for i := range 40 {
		runID := "run-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		c := cohort(half, runID)
		seen[c]++
		assert.Equal(t, c, cohort(half, runID), "sticky per run")
	}
	assert.Positive(t, seen["treatment"])
	assert.Positive(t, seen["control"])

	forced := start(t, "", openAI(up, "DYNRETRY_ROLLOUT_PERCENT=0", "LOVABLE_DYNAMIC_RETRY_DELAYS=true")...)
	resp := forced.post(t, "/openai/v1/chat/completions", chatBody, proxy.HeaderRunID, "")
	read(t, resp)
	assert.Equal(t, "treatment", resp.Header.Get(proxy.HeaderCohort))
	killed := start(t, "", openAI(up, "DYNRETRY_ROLLOUT_PERCENT=100", "LOVABLE_DYNAMIC_RETRY_DELAYS=false")...)
	assert.Equal(t, "control", cohort(killed, "run-a"))
}

// An upstream that cannot be reached: the proxy answers 502 with the
// call's headers, in the route's error shape.
func TestUnreachableUpstream(t *testing.T) {
	for _, cohort := range []string{"control", "treatment"} {
		t.Run(cohort, func(t *testing.T) {
			env := append([]string{"DYNRETRY_PROXY__UPSTREAMS__ANTHROPIC=http://127.0.0.1:1"}, "LOVABLE_DYNAMIC_RETRY_DELAYS="+map[string]string{"control": "false", "treatment": "true"}[cohort])
			f := start(t, "", env...)
			// The client's timeout (1 s) bounds the engine's retries.
			resp := f.post(t, "/anthropic/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}`, "X-Stainless-Timeout", "1")
			body := read(t, resp)
			assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
			assert.Contains(t, body, `"type":"error"`)
			assert.Contains(t, body, "dynretry proxy: connection")
			assert.Equal(t, cohort, resp.Header.Get(proxy.HeaderCohort))
			assert.Equal(t, "connection", resp.Header.Get(proxy.HeaderClass))
			if cohort == "treatment" {
				assert.Equal(t, "false", resp.Header.Get("X-Should-Retry"))
				n := resp.Header.Get(proxy.HeaderAttempts)
				assert.NotEqual(t, "0", n)
			} else {
				assert.Empty(t, resp.Header.Get("X-Should-Retry"), "the SDK retries a connection error, as without dynretry")
				assert.Equal(t, "1", resp.Header.Get(proxy.HeaderAttempts))
			}
			assert.Contains(t, f.logs.String(), `"level":"WARN","msg":"dynretry proxy: no response to return"`)
		})
	}
}

// X-Stainless-Timeout is the client's timeout: the engine gives up in time
// to answer before it, with the provider's last response.
func TestClientTimeoutIsTheDeadline(t *testing.T) {
	up := newUpstream(t, status(429, rateLimited, "Retry-After", "5"))
	f := start(t, "", openAI(up, treatment...)...)
	start := time.Now()
	resp := f.post(t, "/openai/v1/chat/completions", chatBody, "X-Stainless-Timeout", "2")
	read(t, resp)
	took := time.Since(start)
	assert.Equal(t, 429, resp.StatusCode)
	assert.Less(t, took, 2*time.Second, "answered before the client's timeout")
	assert.Equal(t, "false", resp.Header.Get("X-Should-Retry"))
	assert.Contains(t, resp.Header.Get(proxy.HeaderReason), "deadline")
	assert.Len(t, up.requests(), 1)
}

// The upstream's own X-Dynretry-* headers never reach the client.
func TestUpstreamCannotSpoofHeaders(t *testing.T) {
	up := newUpstream(t, status(200, `{}`, "X-Dynretry-Cohort", "treatment", "X-Dynretry-Reason", "spoofed"))
	f := start(t, "", openAI(up, control...)...)
	resp := f.post(t, "/openai/v1/chat/completions", chatBody)
	read(t, resp)
	assert.Equal(t, "control", resp.Header.Get(proxy.HeaderCohort))
	assert.Empty(t, resp.Header.Get(proxy.HeaderReason))
}

// A hostile X-Stainless-Timeout is ignored: the call goes on as without it.
func TestHostileClientTimeout(t *testing.T) {
	for _, v := range []string{"soon", "-1", "0", "NaN", "Inf", "1e300", "86401", "0x10"} {
		up := newUpstream(t, limitedOnce)
		f := start(t, "", openAI(up, treatment...)...)
		resp := f.post(t, "/openai/v1/chat/completions", chatBody, "X-Stainless-Timeout", v)
		read(t, resp)
		assert.Equal(t, http.StatusOK, resp.StatusCode, v)
		assert.Len(t, up.requests(), 2, v)
	}
}

// blockingExporter holds the export of each call span until release is
// closed, and says on exporting that one is held.
type blockingExporter struct {
	exporting chan struct{}
	release   chan struct{}
}

func (e *blockingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	for _, s := range spans {
		if s.Name() == "dynretry.call" {
			e.exporting <- struct{}{}
			<-e.release
		}
	}
	return nil
}

func (e *blockingExporter) Shutdown(context.Context) error { return nil }

// The client has the whole response before the call's spans and metrics
// are recorded: a span exporter that holds the call span does not hold the
// response.
func TestResponseBeforeBookkeeping(t *testing.T) {
	up := newUpstream(t, ok)
	exp := &blockingExporter{exporting: make(chan struct{}, 1), release: make(chan struct{})}
	p, err := proxy.New(context.Background(), proxy.Options{Plugin: plugin.Options{
		Environ:   openAI(up, treatment...),
		Telemetry: telemetry.Options{SpanExporters: []sdktrace.SpanExporter{exp}},
		Logger:    slog.New(slog.DiscardHandler),
	}})
	require.NoError(t, err)
	srv := httptest.NewServer(p)
	defer func() {
		srv.Close()
		assert.NoError(t, p.Shutdown(context.Background()))
	}()
	f := &fixture{url: srv.URL, client: &http.Client{Timeout: 10 * time.Second}}
	defer f.client.CloseIdleConnections()
	defer close(exp.release)

	resp := f.post(t, "/openai/v1/chat/completions", chatBody)
	assert.Contains(t, read(t, resp), "chat.completion", "read whole while the call span is held")
	select {
	case <-exp.exporting:
	case <-time.After(10 * time.Second):
		t.Fatal("the call span was never exported")
	}
}
