package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/autopack/dynretry/retry"
)

// Spans sampled out cost no attributes, and the metrics stay whole: they
// do not depend on the span.
func TestUnsampledSpansKeepMetrics(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	h := newHarness(t, Options{})
	ctx, span := h.tel.StartCall(context.Background(), treatmentCall("run-unsampled"))
	require.False(t, span.IsRecording())
	t0 := time.Now()
	d := retry.Decision{Attempt: 1, Action: retry.Retry, HintSource: retry.SourceBackoff, Delay: time.Second, Reason: "retrying"}
	d.Class, d.Status = retry.ServerError, 500
	h.tel.Observer().Observe(ctx, retry.Event{Key: testKey, Sent: true, Start: t0, End: t0, Decision: d})
	h.tel.RecordResponse(ctx, span, Response{InputTokens: 10, OutputTokens: 2})
	h.tel.EndCall(ctx, span, retry.ServerError, errors.New("failed"))

	assert.Empty(t, h.spans.GetSpans())
	m := h.metrics(t)
	model := "gen_ai.provider.name=openai,gen_ai.request.model=gpt-test"
	assert.Equal(t, map[string]any{"dynretry.class=server_error,dynretry.cohort=treatment,dynretry.decision=retry," + model: int64(1)}, m[MetricAttempts])
	assert.Equal(t, map[string]any{"dynretry.class=server_error,dynretry.cohort=treatment,dynretry.outcome=failure," + model: int64(1)}, m[MetricCalls])
	assert.Equal(t, map[string]any{"dynretry.cohort=treatment," + model: histPoint{1, 1}}, m[MetricCallWasted])
	genai := "dynretry.cohort=treatment,%sgen_ai.operation.name=chat,gen_ai.provider.name=openai,gen_ai.request.model=gpt-test%s"
	assert.Contains(t, m[MetricOperationDuration], fmt.Sprintf(genai, "error.type=server_error,", ""))
	assert.Equal(t, map[string]any{
		fmt.Sprintf(genai, "", ",gen_ai.token.type=input"):  histPoint{1, 10},
		fmt.Sprintf(genai, "", ",gen_ai.token.type=output"): histPoint{1, 2},
	}, m[MetricTokenUsage])
}

// The cache of series options stops growing at maxSeries; a series beyond
// it still gets its own labels.
func TestSeriesCacheBound(t *testing.T) {
	var c seriesCache
	labelsOf := func(o *seriesOptions) attribute.Set { return metric.NewAddConfig(o.add).Attributes() }
	s := func(model string) series {
		return series{cohort: "treatment", provider: "openai", model: model, key: keyDecision, value: "success"}
	}
	for i := range maxSeries + 10 {
		c.options(s(strconv.Itoa(i)))
	}
	n := 0
	c.m.Range(func(any, any) bool { n++; return true })
	assert.Equal(t, maxSeries, n)

	beyond := labelsOf(c.options(s("beyond")))
	model, ok := beyond.Value(KeyGenAIRequestModel)
	require.True(t, ok)
	assert.Equal(t, "beyond", model.AsString())
	assert.Same(t, c.options(s("7")), c.options(s("7")), "a cached series is built once")
	assert.Equal(t, labelsOf(c.options(s("7"))), attribute.NewSet(keyCohort.String("treatment"),
		KeyGenAIProvider.String("openai"), KeyGenAIRequestModel.String("7"), keyDecision.String("success")))
}
