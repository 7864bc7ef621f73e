package telemetry

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
)

var (
	noopTracerProvider trace.TracerProvider = tracenoop.NewTracerProvider()
	noopMeterProvider  metric.MeterProvider = metricnoop.NewMeterProvider()
)

// CallInfo describes one LLM call for spans and metrics. None of it may be
// a secret: every field is emitted as is (the flag's error, redacted).
type CallInfo struct {
	// RunID, PhaseID and Role say which run, phase and role made the call.
	RunID, PhaseID, Role string
	// Provider and Model say where the call went.
	Provider, Model string
	// Flag is the feature flag evaluation that chose the call's cohort. An
	// empty Flag.Cohort counts as rollout.Control.
	Flag rollout.Assignment
}

// Cohort is c.Flag.Cohort, or rollout.Control when it is empty.
func (c CallInfo) Cohort() rollout.Cohort {
	if c.Flag.Cohort == "" {
		return rollout.Control
	}
	return c.Flag.Cohort
}

type callKey struct{}

// WithCall returns a copy of ctx carrying c.
func WithCall(ctx context.Context, c CallInfo) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// CallFrom returns the CallInfo ctx carries, and whether it carries one.
func CallFrom(ctx context.Context) (CallInfo, bool) {
	c, ok := ctx.Value(callKey{}).(CallInfo)
	return c, ok
}

// cohortOf is the cohort of ctx's call, rollout.Control when ctx carries
// none.
func cohortOf(ctx context.Context) string {
	c, _ := CallFrom(ctx)
	return string(c.Cohort())
}

// StartCall starts the span of one LLM call, SpanCall, as a child of ctx's
// span, and returns a context carrying the span and c (see WithCall); pass
// it to the call, so that the attempt spans the Observer makes are the
// call's children, and to EndCall.
//
// The span carries dynretry.run_id, dynretry.cohort, dynretry.phase_id,
// dynretry.role, dynretry.provider, dynretry.model (each only when not
// empty, the cohort always) and the flag evaluation as feature_flag.key,
// feature_flag.result.variant and feature_flag.provider.name. The same
// evaluation is recorded as an event EventFlagEvaluation, with
// feature_flag.result.reason (lower-cased) and, when the evaluation failed,
// error.type "_OTHER" and feature_flag.error.message (redacted).
func (t *Telemetry) StartCall(ctx context.Context, c CallInfo) (context.Context, trace.Span) {
	ctx = WithCall(ctx, c)
	if t == nil {
		return ctx, trace.SpanFromContext(context.Background()) // non-recording
	}
	attrs := []attribute.KeyValue{keyCohort.String(string(c.Cohort()))}
	attrs = appendNonEmpty(attrs,
		keyRunID.String(c.RunID), keyPhaseID.String(c.PhaseID), keyRole.String(c.Role),
		keyProvider.String(c.Provider), keyModel.String(c.Model))
	flag := appendNonEmpty(nil,
		KeyFlagKey.String(c.Flag.FlagKey), KeyFlagVariant.String(c.Flag.Variant),
		KeyFlagProvider.String(c.Flag.Provider))
	attrs = append(attrs, flag...)
	ctx, span := t.tracer.Start(ctx, SpanCall, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	if len(flag) > 0 || c.Flag.Reason != "" || c.Flag.Err != nil {
		ev := appendNonEmpty(flag, KeyFlagReason.String(strings.ToLower(c.Flag.Reason)))
		if c.Flag.Err != nil {
			ev = append(ev, KeyErrorType.String(ErrorTypeOther),
				KeyFlagError.String(truncate(Redact(c.Flag.Err.Error()), 200)))
		}
		span.AddEvent(EventFlagEvaluation, trace.WithAttributes(ev...))
	}
	return ctx, span
}

// EndCall ends a span StartCall started, with ctx the context StartCall
// returned. The call failed when class is not empty or err is not nil; then
// the span's status is Error and its error.type is class (ErrorTypeOther
// when class is empty). err's text is never recorded. It adds 1 to
// MetricCalls with the cohort, the outcome ("success" or "failure") and, on
// failure, the class when known.
func (t *Telemetry) EndCall(ctx context.Context, span trace.Span, class retry.Class, err error) {
	if t == nil {
		return
	}
	failed := class != "" || err != nil
	attrs := []attribute.KeyValue{keyCohort.String(cohortOf(ctx))}
	if failed {
		errType := string(class)
		if errType == "" {
			errType = ErrorTypeOther
		}
		span.SetAttributes(KeyErrorType.String(errType))
		span.SetStatus(codes.Error, errType)
		attrs = append(attrs, keyOutcome.String(OutcomeFailure))
		if class != "" {
			attrs = append(attrs, keyClass.String(string(class)))
		}
	} else {
		attrs = append(attrs, keyOutcome.String(OutcomeSuccess))
	}
	span.End()
	t.calls.Add(ctx, 1, metric.WithAttributes(attrs...))
}

// appendNonEmpty appends the attributes of kvs whose value is not "".
func appendNonEmpty(attrs []attribute.KeyValue, kvs ...attribute.KeyValue) []attribute.KeyValue {
	for _, kv := range kvs {
		if kv.Value.Type() != attribute.STRING || kv.Value.AsString() != "" {
			attrs = append(attrs, kv)
		}
	}
	return attrs
}
