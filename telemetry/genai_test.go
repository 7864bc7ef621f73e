package telemetry

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/telemetry/export"
)

func TestRecordResponse(t *testing.T) {
	h := newHarness(t, Options{})
	ctx, span := h.tel.StartCall(context.Background(), treatmentCall("run-1"))
	h.tel.RecordResponse(ctx, span, Response{Model: "gpt-test-2026-01-01", InputTokens: 1200, OutputTokens: 300})
	h.tel.EndCall(ctx, span, "", nil)
	ctx, span = h.tel.StartCall(context.Background(), treatmentCall("run-2"))
	h.tel.RecordResponse(ctx, span, Response{}) // the response said nothing
	h.tel.EndCall(ctx, span, "", nil)

	spans := h.spans.GetSpans()
	require.Len(t, spans, 2)
	a := attrMap(spans[0].Attributes)
	assert.Equal(t, "gpt-test-2026-01-01", a["gen_ai.response.model"])
	assert.Equal(t, int64(1200), a["gen_ai.usage.input_tokens"])
	assert.Equal(t, int64(300), a["gen_ai.usage.output_tokens"])
	for _, k := range []string{"gen_ai.response.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"} {
		assert.NotContains(t, attrMap(spans[1].Attributes), k)
	}
	const l = "dynretry.cohort=treatment,gen_ai.operation.name=chat,gen_ai.provider.name=openai,gen_ai.request.model=gpt-test,gen_ai.token.type="
	assert.Equal(t, map[string]any{l + "input": histPoint{1, 1200}, l + "output": histPoint{1, 300}}, h.metrics(t)[MetricTokenUsage])
	var nilTel *Telemetry
	nilTel.RecordResponse(ctx, span, Response{Model: "x"}) // does nothing
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.openai.com/v1/chat/completions":                                    "https://api.openai.com/v1/chat/completions",
		"https://u:p@gw.example/v1?x=1#frag":                                            "https://REDACTED:REDACTED@gw.example/v1?x=1",
		"https://generativelanguage.googleapis.com/v1beta/models/m:generate?key=AIzaXY": "https://generativelanguage.googleapis.com/v1beta/models/m:generate?key=REDACTED",
		"https://s3.example/o?X-Amz-Signature=abc&X-Amz-Credential=AK&a=b":              "https://s3.example/o?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&a=b",
		"https://gw.example/v1?note=sk-proj-abcdefghijklmnop&Key=zzz":                   "https://gw.example/v1?note=" + Redacted + "&Key=REDACTED",
	} {
		u, err := url.Parse(in)
		require.NoError(t, err)
		assert.Equal(t, want, RedactURL(u), in)
	}
}

func TestModelLabelsBounded(t *testing.T) {
	h := newHarness(t, Options{})
	for i := range MaxModels + 5 {
		c := treatmentCall("run")
		c.Model = fmt.Sprintf("model-%02d", i)
		ctx, span := h.tel.StartCall(context.Background(), c)
		h.tel.EndCall(ctx, span, "", nil)
	}
	models := map[string]int64{}
	for k, v := range h.metrics(t)[MetricCalls] {
		_, m, _ := strings.Cut(k, "gen_ai.request.model=")
		models[m] += v.(int64)
	}
	assert.Len(t, models, MaxModels+1)
	assert.Equal(t, int64(5), models[ErrorTypeOther])
	assert.Equal(t, int64(1), models["model-00"])
	spans := h.spans.GetSpans()
	assert.Equal(t, fmt.Sprintf("model-%02d", MaxModels+4), attrMap(spans[len(spans)-1].Attributes)["gen_ai.request.model"], "spans keep the model")
}

func TestGenAIProvider(t *testing.T) {
	for in, want := range map[string]string{"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini", "bedrock": "aws.bedrock", "mystery": "mystery"} {
		got, known := GenAIProvider(in)
		assert.Equal(t, want, got)
		assert.Equal(t, in != "mystery", known, in)
	}
	assert.Equal(t, ErrorTypeOther, providerLabel("mystery"))
	assert.Equal(t, ErrorTypeOther, providerLabel(""))
	assert.Equal(t, "gcp.gemini", providerLabel("gemini"))
}

func TestGauges(t *testing.T) {
	degraded, percent := false, 10.0
	h := newHarness(t, Options{
		CoordinationDegraded: func() bool { return degraded },
		RolloutPercent:       func() float64 { return percent },
	})
	m := h.metrics(t)
	assert.Equal(t, map[string]any{"": int64(0)}, m[MetricCoordinationDegraded])
	assert.Equal(t, map[string]any{"": 10.0}, m[MetricRolloutPercent])
	degraded, percent = true, 50
	m = h.metrics(t)
	assert.Equal(t, map[string]any{"": int64(1)}, m[MetricCoordinationDegraded])
	assert.Equal(t, map[string]any{"": 50.0}, m[MetricRolloutPercent])
	percent = math.NaN()
	assert.NotContains(t, h.metrics(t), MetricRolloutPercent, "not known: not reported")
	scrape := scrapeMetrics(t, h)
	assert.Contains(t, scrape, "\ndynretry_coordination_degraded{")
}

func TestPrometheusListen(t *testing.T) {
	tel, err := Setup(context.Background(), Options{PrometheusListen: "127.0.0.1:0", Prometheus: export.Prometheus})
	require.NoError(t, err)
	addr := tel.MetricsAddr()
	require.NotEmpty(t, addr)
	ctx, span := tel.StartCall(context.Background(), treatmentCall("run-1"))
	tel.EndCall(ctx, span, "", nil)
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `dynretry_calls_total{dynretry_cohort="treatment"`)
	assert.Contains(t, string(body), "gen_ai_client_operation_duration_seconds_bucket{")
	require.NoError(t, tel.Shutdown(context.Background()))
	_, err = http.Get("http://" + addr + "/metrics")
	assert.Error(t, err, "Shutdown stops serving")
	assert.Empty(t, (*Telemetry)(nil).MetricsAddr())

	// The address is taken: a clear error, and nothing left running.
	tel, err = Setup(context.Background(), Options{PrometheusListen: "127.0.0.1:0", Prometheus: export.Prometheus})
	require.NoError(t, err)
	defer tel.Shutdown(context.Background())
	_, err = Setup(context.Background(), Options{PrometheusListen: tel.MetricsAddr(), Prometheus: export.Prometheus})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "telemetry: prometheus_listen: listen tcp "+tel.MetricsAddr())

	_, err = Setup(context.Background(), Options{PrometheusListen: "127.0.0.1:0"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no Prometheus exporter was given")
}
