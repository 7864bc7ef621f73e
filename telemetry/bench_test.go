package telemetry

import (
	"context"
	"net/http"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/autopack/dynretry/retry"
)

// BenchmarkCall measures what telemetry costs one call of one attempt, as
// the proxy and the transport record it: StartCall, the request's
// attributes, the attempt's event, the response and EndCall, with the
// exporters of a deployment (spans batched, metrics read on demand).
func BenchmarkCall(b *testing.B) {
	success := retry.Decision{Attempt: 1, Action: retry.Success, Reason: "succeeded"}
	success.Status = 200
	retried := retry.Decision{Attempt: 1, Action: retry.Retry, HintSource: retry.SourceRetryAfterMS, Delay: 1100 * time.Millisecond,
		Reason: "rate_limited (HTTP 429): the server asked for 1s (retry-after-ms); retrying in 1.1s (range 1s–1.2s), attempt 1 of at most 5"}
	retried.Class, retried.Status = retry.RateLimited, 429
	retried.Hint = retry.Hint{Wait: time.Second, Source: retry.SourceRetryAfterMS}
	for name, d := range map[string]retry.Decision{"success": success, "retry": retried} {
		e := retry.Event{Key: testKey, Sent: true, Budget: -1, Decision: d}
		b.Run(name, func(b *testing.B) {
			tel, err := Setup(context.Background(), Options{
				BatchSpanExporters: []sdktrace.SpanExporter{tracetest.NewNoopExporter()},
				MetricReaders:      []sdkmetric.Reader{sdkmetric.NewManualReader()},
			})
			if err != nil {
				b.Fatal(err)
			}
			defer tel.Shutdown(context.Background())
			obs := tel.Observer()
			req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/v1/chat/completions", http.NoBody)
			info := treatmentCall("run-bench")
			b.ReportAllocs()
			for b.Loop() {
				ctx, span := tel.StartCall(context.Background(), info)
				ctx = WithRequest(ctx, req)
				now := time.Now()
				e.Start, e.End = now, now
				obs.Observe(ctx, e)
				tel.RecordResponse(ctx, span, Response{Model: "gpt-test", InputTokens: 100, OutputTokens: 20})
				tel.EndCall(ctx, span, "", nil)
			}
		})
	}
}

// BenchmarkRedact measures Redact on text without a credential (an
// engine's reason, a URL: the common case) and on text with one.
func BenchmarkRedact(b *testing.B) {
	for name, s := range map[string]string{
		"reason": "rate_limited (HTTP 429): the server asked for 1s (retry-after-ms); retrying in 1.1s (range 1s–1.2s), attempt 1 of at most 5",
		"url":    "http://127.0.0.1:8080/v1/chat/completions",
		"secret": "Incorrect API key provided: " + fakeOpenAIKey + ".",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Redact(s)
			}
		})
	}
}
