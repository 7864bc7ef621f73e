package proxy_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/proxy"
	"github.com/autopack/dynretry/telemetry"
)

const okReply = `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`

// canned answers every request at once with okReply, in process.
type canned struct{}

func (canned) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{
		StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(okReply))}},
		Body:          io.NopCloser(strings.NewReader(okReply)),
		ContentLength: int64(len(okReply)), Request: req,
	}, nil
}

// BenchmarkServeHTTP measures the CPU cost of one call through each
// handler, against an upstream transport that answers at once in process:
// a bare httputil.ReverseProxy, and dynretry proxy in each cohort with the
// telemetry of a deployment (a Prometheus-like reader, spans batched).
func BenchmarkServeHTTP(b *testing.B) {
	body := `{"model":"gpt-4o-mini","max_tokens":200,"messages":[{"role":"user","content":"` + strings.Repeat("abc ", 100) + `"}]}`
	run := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPost, "/openai/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testKey)
			req.Header.Set(proxy.HeaderRunID, "run-bench")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatal(rec.Code, rec.Body.String())
			}
		}
	}
	b.Run("bare", func(b *testing.B) {
		target, _ := url.Parse("http://upstream.test")
		run(b, &httputil.ReverseProxy{Transport: canned{}, Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Path = strings.TrimPrefix(pr.Out.URL.Path, "/openai")
			pr.SetURL(target)
		}})
	})
	for _, cohort := range []string{"treatment", "control"} {
		b.Run(cohort, func(b *testing.B) {
			p, err := proxy.New(context.Background(), proxy.Options{Transport: canned{}, Plugin: plugin.Options{
				Environ: []string{"DYNRETRY_PROXY__UPSTREAMS__OPENAI=http://upstream.test",
					"LOVABLE_DYNAMIC_RETRY_DELAYS=" + map[string]string{"treatment": "true", "control": "false"}[cohort]},
				Telemetry: telemetry.Options{
					BatchSpanExporters: []sdktrace.SpanExporter{tracetest.NewNoopExporter()},
					MetricReaders:      []sdkmetric.Reader{sdkmetric.NewManualReader()},
				},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			}})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			run(b, p)
		})
	}
}
