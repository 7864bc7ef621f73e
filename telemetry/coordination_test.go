package telemetry

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/retry"
)

// With a shared store, the gauge reads whether it is degraded at each
// collection, and attempt spans say where their verdict came from.
func TestCoordination(t *testing.T) {
	var degraded atomic.Bool
	h := newHarness(t, Options{CoordinationDegraded: degraded.Load})
	assert.Contains(t, scrapeMetrics(t, h), "\ndynretry_coordination_degraded{otel_scope_name=")
	assert.Regexp(t, `\ndynretry_coordination_degraded\{[^}]*\} 0\n`, scrapeMetrics(t, h))
	degraded.Store(true)
	assert.Regexp(t, `\ndynretry_coordination_degraded\{[^}]*\} 1\n`, scrapeMetrics(t, h))

	ctx, span := h.tel.StartCall(context.Background(), treatmentCall("run-coord"))
	for _, local := range []bool{false, true} {
		h.tel.Observer().Observe(ctx, retry.Event{Key: testKey, Sent: true, Start: t0, End: t0.Add(time.Second), Local: local,
			Decision: retry.Decision{Attempt: 1, Action: retry.Success, Reason: "succeeded"}})
	}
	h.tel.EndCall(ctx, span, "", nil)
	var got []any
	for _, s := range h.spans.GetSpans() {
		if s.Name == SpanAttempt {
			got = append(got, attrMap(s.Attributes)[AttrCoordination])
		}
	}
	assert.Equal(t, []any{CoordinationShared, CoordinationLocal}, got)
}

// Without a shared store the gauge reads 0 (so a dashboard panel has data)
// and no span carries the attribute.
func TestNoCoordination(t *testing.T) {
	h := newHarness(t, Options{})
	recordCall(h.tel)
	assert.Regexp(t, `(?m)^dynretry_coordination_degraded\{[^}]*\} 0$`, scrapeMetrics(t, h))
	spans := h.spans.GetSpans()
	require.NotEmpty(t, spans)
	for _, s := range spans {
		assert.NotContains(t, attrMap(s.Attributes), AttrCoordination)
	}
}
