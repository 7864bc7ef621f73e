package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
)

// Observer returns a retry.Observer that records each retry.Event as one
// span SpanAttempt and its metrics. It depends only on the Event and on
// what ctx carries (the CallInfo, the call's state from StartCall, the
// request from WithRequest), so it serves both cohorts: the engine's
// Retrier, and the control cohort's transport that builds an Event per SDK
// attempt.
//
// The span is a child of ctx's span (the call's span when ctx came from
// StartCall). It starts at e.Start and ends at e.End; when e.Sent is false
// (the call ended before the attempt was sent) it is a zero-length span at
// e.End, of kind Internal instead of Client. A zero e.End means now, a zero
// e.Start means e.End. Its attributes:
//
//	dynretry.run_id                 CallFrom(ctx).RunID ("" when ctx carries no CallInfo)
//	dynretry.cohort                 CallFrom(ctx)'s cohort, "control" when ctx carries none
//	dynretry.attempt                e.Decision.Attempt (1-based)
//	dynretry.decision               e.Decision.Action: success, retry or give_up
//	dynretry.sent                   e.Sent (bool)
//	dynretry.class                  e.Decision.Class; absent on success (and when empty)
//	dynretry.hint_source            e.Decision.HintSource; absent on success (and when empty)
//	dynretry.hint_ms                e.Decision.Hint.Wait in ms; only when the hint is valid and e.Sent
//	dynretry.delay_ms               e.Decision.Delay in ms (0 unless retry; absent for control,
//	                                whose delays the SDK chooses unseen)
//	dynretry.reason                 e.Decision.Reason, redacted (see Redact)
//	gen_ai.provider.name            GenAIProvider of e.Key.Provider, when not empty
//	gen_ai.request.model            e.Key.Model, when not empty
//	http.request.method, server.address, server.port, url.full
//	                                the request's, from WithRequest(ctx); only when e.Sent
//	http.response.status_code       e.Decision.Status; only when not 0 and e.Sent
//	http.request.resend_count       attempt−1; only when e.Sent and attempt > 1 (as the
//	                                semantic conventions ask: set if and only if resent)
//	error.type                      the class on a failure (retry or give_up), "_OTHER" without one
//	dynretry.coordination           "local" when e.Local, else "shared"; only with a shared
//	                                store (Options.CoordinationDegraded set)
//
// The span's status is Error on give_up, with the class as description
// (the reason is an attribute). Never emitted: e.Key.Credential, the
// provider's message (Decision.Message), the error's text (Decision.Err),
// any header.
//
// Metrics, all with dynretry.cohort, gen_ai.provider.name and
// gen_ai.request.model (the call's when ctx carries a CallInfo that names
// them, else e.Key's; bounded, see MaxModels), and dynretry.class when the
// event has a class: MetricAttempts +1 with dynretry.decision for each sent
// attempt (e.Sent; an attempt that was never sent is not counted),
// MetricGiveups +1 on give_up (sent or not), MetricDelay records
// e.Decision.Delay in seconds on retry, with dynretry.hint_source, and
// MetricHolds +1 with dynretry.hold when the outcome held its limit
// (e.Decision.Hold.By). A sent attempt that did not succeed also counts
// towards the call's MetricCallWasted (see EndCall).
//
// The span and metrics of a successful attempt of a call StartCall started
// are recorded when the call ends (EndCall), with the same timestamps and
// attributes: after its response went on to the caller, so that the caller
// does not wait for them. An attempt of a call that never ends is then not
// recorded.
//
// The Observer of a nil Telemetry does nothing.
func (t *Telemetry) Observer() retry.Observer {
	if t == nil {
		return retry.ObserverFunc(func(context.Context, retry.Event) {})
	}
	return observer{t}
}

type observer struct{ t *Telemetry }

// An observed is an event and the context it was observed in.
type observed struct {
	ctx context.Context
	e   retry.Event
}

// Observe records e, or leaves it to EndCall; see Telemetry.Observer.
func (o observer) Observe(ctx context.Context, e retry.Event) {
	if s := stateOf(ctx); s != nil && s.started && e.Decision.Action == retry.Success {
		if prev := s.success.Swap(&observed{ctx, e}); prev != nil {
			o.t.record(prev.ctx, prev.e) // a call that succeeded twice: keep both
		}
		return
	}
	o.t.record(ctx, e)
}

// record records e's span and metrics; see Telemetry.Observer.
func (t *Telemetry) record(ctx context.Context, e retry.Event) {
	d := e.Decision
	state := stateOf(ctx)
	var call CallInfo
	if state != nil {
		call = state.info
	}
	control := call.Cohort() == rollout.Control
	failed := d.Action != retry.Success

	end := e.End
	if end.IsZero() {
		end = time.Now()
	}
	start, kind := e.Start, trace.SpanKindClient
	if start.IsZero() || !e.Sent {
		start = end
	}
	if !e.Sent {
		kind = trace.SpanKindInternal
	}
	_, span := t.tracer.Start(ctx, SpanAttempt, trace.WithSpanKind(kind), trace.WithTimestamp(start))
	if span.IsRecording() {
		attrs := getAttrs()
		span.SetAttributes(t.attemptAttrs(ctx, *attrs, e, call, control)...)
		putAttrs(attrs)
		if d.Action == retry.GiveUp {
			desc := string(d.Class)
			if desc == "" {
				desc = ErrorTypeOther
			}
			span.SetStatus(codes.Error, desc)
		}
	}
	span.End(trace.WithTimestamp(end))

	if state != nil && state.started && e.Sent && failed {
		state.wasted.Add(1)
	}
	// The call's labels; the event's provider and model where the call
	// does not name them.
	var labels series
	if state != nil && state.started {
		labels = state.labels
	} else {
		labels = t.callLabels(call)
	}
	if call.Provider == "" {
		labels.provider = providerLabel(string(e.Key.Provider))
	}
	if call.Model == "" {
		labels.model = t.models.label(e.Key.Model)
	}
	if failed {
		labels.class = string(d.Class)
	}
	if e.Sent {
		l := labels
		l.key, l.value = keyDecision, string(d.Action)
		t.attempts.Add(ctx, 1, t.series.options(l).add...)
	}
	if d.Hold.By != "" {
		l := labels
		l.key, l.value = keyHold, string(d.Hold.By)
		t.holds.Add(ctx, 1, t.series.options(l).add...)
	}
	switch d.Action {
	case retry.GiveUp:
		t.giveups.Add(ctx, 1, t.series.options(labels).add...)
	case retry.Retry:
		if !control {
			l := labels
			l.key, l.value = keyHintSource, string(d.HintSource)
			t.delay.Record(ctx, d.Delay.Seconds(), t.series.options(l).record...)
		}
	}
}

// attemptAttrs appends the attributes of e's attempt span to attrs (see
// Telemetry.Observer) and returns the result.
func (t *Telemetry) attemptAttrs(ctx context.Context, attrs []attribute.KeyValue, e retry.Event, call CallInfo, control bool) []attribute.KeyValue {
	d := e.Decision
	provider, _ := GenAIProvider(string(e.Key.Provider))
	attrs = append(attrs,
		keyRunID.String(call.RunID),
		keyCohort.String(string(call.Cohort())),
		keyAttempt.Int(d.Attempt),
		keyDecision.String(string(d.Action)),
		keySent.Bool(e.Sent),
		keyReason.String(Redact(d.Reason)),
	)
	// In the control cohort the SDK chooses its delays unseen: no figure
	// rather than a false 0.
	if !control {
		attrs = append(attrs, keyDelayMS.Int64(d.Delay.Milliseconds()))
	}
	attrs = appendNonEmpty(attrs, KeyGenAIProvider.String(provider), KeyGenAIRequestModel.String(e.Key.Model))
	if d.Action != retry.Success {
		attrs = appendNonEmpty(attrs, keyClass.String(string(d.Class)), keyHintSource.String(string(d.HintSource)))
		errType := string(d.Class)
		if errType == "" {
			errType = ErrorTypeOther
		}
		attrs = append(attrs, KeyErrorType.String(errType))
	}
	if t.coordinated {
		c := CoordinationShared
		if e.Local {
			c = CoordinationLocal
		}
		attrs = append(attrs, keyCoord.String(c))
	}
	if e.Sent {
		attrs = append(attrs, requestAttrs(ctx)...)
		if d.Hint.Valid() {
			attrs = append(attrs, keyHintMS.Int64(d.Hint.Wait.Milliseconds()))
		}
		if d.Status != 0 {
			attrs = append(attrs, KeyHTTPStatusCode.Int(d.Status))
		}
		if d.Attempt > 1 {
			attrs = append(attrs, KeyHTTPResendCount.Int(d.Attempt-1))
		}
	}
	return attrs
}
