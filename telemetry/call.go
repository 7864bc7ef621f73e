package telemetry

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

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
	// Provider and Model say where the call went: the provider as the
	// runner names it ("openai", "anthropic", "gemini"; see GenAIProvider)
	// and the model asked for.
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

// Response is what a call's answer says of itself.
type Response struct {
	// Model is the model that answered (gen_ai.response.model); "" when the
	// response does not say.
	Model string
	// InputTokens and OutputTokens are the tokens the response reports;
	// 0 when it does not report them.
	InputTokens, OutputTokens int64
}

type callKey struct{}

// callState is what ctx carries of a call: its CallInfo and, when
// StartCall made it, what telemetry counts of the call while it runs.
type callState struct {
	info    CallInfo
	started bool         // made by StartCall
	start   time.Time    // when StartCall started the call
	labels  series       // the call's cohort, provider and model labels (StartCall)
	wasted  atomic.Int64 // attempts sent that did not succeed
	// success is the call's successful attempt, which the Observer leaves
	// to EndCall to record.
	success atomic.Pointer[observed]
	// request is the call's last request (WithRequest).
	request atomic.Pointer[request]
}

// WithCall returns a copy of ctx carrying c.
func WithCall(ctx context.Context, c CallInfo) context.Context {
	return context.WithValue(ctx, callKey{}, &callState{info: c})
}

// CallFrom returns the CallInfo ctx carries, and whether it carries one.
func CallFrom(ctx context.Context) (CallInfo, bool) {
	if s := stateOf(ctx); s != nil {
		return s.info, true
	}
	return CallInfo{}, false
}

// stateOf returns the call state ctx carries, or nil.
func stateOf(ctx context.Context) *callState {
	s, _ := ctx.Value(callKey{}).(*callState)
	return s
}

// StartCall starts the span of one LLM call, SpanCall, as a child of ctx's
// span, and returns a context carrying the span and c (see WithCall); pass
// it to the call, so that the attempt spans the Observer makes are the
// call's children, and to RecordResponse and EndCall.
//
// The span, of kind Client, follows the GenAI client conventions:
// gen_ai.operation.name "chat", gen_ai.provider.name (GenAIProvider of
// c.Provider) and gen_ai.request.model. It also carries dynretry.run_id,
// dynretry.cohort, dynretry.phase_id, dynretry.role (each only when not
// empty, the cohort always) and the flag evaluation as feature_flag.key,
// feature_flag.result.variant and feature_flag.provider.name. The
// evaluation is recorded as the event c.Flag.Event (EventFlagEvaluation, as
// OpenFeature's telemetry helper built it: feature_flag.context.id,
// feature_flag.result.reason, error.type, …), its error.message redacted,
// at the call's start. Attributes and event are added when the call ends
// (EndCall), after its response went on, and only when the span is
// recording (sampled): the span's processors and exporters see them at its
// end, a sampler does not see them at its start.
func (t *Telemetry) StartCall(ctx context.Context, c CallInfo) (context.Context, trace.Span) {
	if t == nil {
		return WithCall(ctx, c), trace.SpanFromContext(context.Background()) // non-recording
	}
	state := &callState{info: c, started: true, start: time.Now(), labels: t.callLabels(c)}
	ctx = context.WithValue(ctx, callKey{}, state)
	return t.tracer.Start(ctx, SpanCall, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(state.start))
}

// describeCall adds the attributes and the flag evaluation event of
// StartCall to the call's span.
func describeCall(span trace.Span, state *callState) {
	c := state.info
	attrs := getAttrs()
	defer putAttrs(attrs)
	provider, _ := GenAIProvider(c.Provider)
	*attrs = append(*attrs, KeyGenAIOperation.String(OperationChat), keyCohort.String(string(c.Cohort())))
	*attrs = appendNonEmpty(*attrs,
		KeyGenAIProvider.String(provider), KeyGenAIRequestModel.String(c.Model),
		keyRunID.String(c.RunID), keyPhaseID.String(c.PhaseID), keyRole.String(c.Role),
		KeyFlagKey.String(c.Flag.FlagKey), KeyFlagVariant.String(c.Flag.Variant),
		KeyFlagProvider.String(c.Flag.Provider))
	span.SetAttributes(*attrs...)
	if ev := c.Flag.Event; ev.Name != "" {
		span.AddEvent(ev.Name, trace.WithTimestamp(state.start), trace.WithAttributes(eventAttrs(ev.Attributes)...))
	}
}

// attrPool recycles the attribute slices spans are given: a span copies
// the attributes it is set.
var attrPool = sync.Pool{New: func() any {
	s := make([]attribute.KeyValue, 0, 24)
	return &s
}}

func getAttrs() *[]attribute.KeyValue { return attrPool.Get().(*[]attribute.KeyValue) }

func putAttrs(s *[]attribute.KeyValue) {
	clear(*s) // drop the references to the values' strings
	*s = (*s)[:0]
	attrPool.Put(s)
}

// eventAttrs turns an OpenFeature evaluation event's attributes into span
// event attributes: strings, booleans and numbers, error.message redacted
// and cut to 200 bytes.
func eventAttrs(m map[string]any) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			if k == "error.message" {
				v = truncate(Redact(v), 200)
			}
			out = append(out, attribute.String(k, v))
		case bool:
			out = append(out, attribute.Bool(k, v))
		case int:
			out = append(out, attribute.Int(k, v))
		case int64:
			out = append(out, attribute.Int64(k, v))
		case float64:
			out = append(out, attribute.Float64(k, v))
		}
		// Other values (a flag's object value) are dropped: their text
		// could hold anything.
	}
	return out
}

// RecordResponse records what the call's answer says of itself on span
// (the call's, from StartCall, with ctx the context StartCall returned):
// gen_ai.response.model, gen_ai.usage.input_tokens and
// gen_ai.usage.output_tokens, each only when r gives it. Each token count
// given is also recorded on MetricTokenUsage with its gen_ai.token.type.
func (t *Telemetry) RecordResponse(ctx context.Context, span trace.Span, r Response) {
	if t == nil {
		return
	}
	labels := t.labelsOf(ctx)
	labels.op, labels.key = true, KeyGenAITokenType
	var attrs [3]attribute.KeyValue
	n := 0
	if r.Model != "" {
		attrs[n] = KeyGenAIResponseModel.String(r.Model)
		n++
	}
	for _, u := range [...]struct {
		key  attribute.Key
		kind string
		n    int64
	}{{KeyGenAIInputTokens, "input", r.InputTokens}, {KeyGenAIOutputTokens, "output", r.OutputTokens}} {
		if u.n <= 0 {
			continue
		}
		attrs[n] = u.key.Int64(u.n)
		n++
		labels.value = u.kind
		t.tokens.Int64Histogram.Record(ctx, u.n, t.series.options(labels).record...)
	}
	if n > 0 {
		span.SetAttributes(attrs[:n]...)
	}
}

// EndCall ends a span StartCall started, with ctx the context StartCall
// returned. The call failed when class is not empty or err is not nil; then
// the span's status is Error and its error.type is class (ErrorTypeOther
// when class is empty). err's text is never recorded.
//
// Metrics, with the cohort, gen_ai.provider.name and gen_ai.request.model
// (both bounded: see providerLabel and MaxModels): MetricCalls +1 with the outcome
// ("success" or "failure") and, on failure, the class when known;
// MetricOperationDuration records the time since StartCall in seconds, with
// gen_ai.operation.name and, on failure, error.type; MetricCallWasted
// records the call's wasted attempts (those the Observer saw sent that did
// not succeed).
//
// The call's successful attempt, which the Observer left to EndCall, is
// recorded first: its span and metrics, as the Observer would have.
func (t *Telemetry) EndCall(ctx context.Context, span trace.Span, class retry.Class, err error) {
	if t == nil {
		return
	}
	now := time.Now()
	if s := stateOf(ctx); s != nil {
		if o := s.success.Swap(nil); o != nil {
			t.record(o.ctx, o.e)
		}
		if s.started && span.IsRecording() {
			describeCall(span, s)
		}
	}
	labels := t.labelsOf(ctx)
	calls, duration := labels, labels
	calls.key, calls.value = keyOutcome, OutcomeSuccess
	duration.op = true
	if class != "" || err != nil {
		errType := string(class)
		if errType == "" {
			errType = ErrorTypeOther
		}
		span.SetAttributes(KeyErrorType.String(errType))
		span.SetStatus(codes.Error, errType)
		calls.value, calls.class = OutcomeFailure, string(class)
		duration.key, duration.value = KeyErrorType, errType
	}
	span.End(trace.WithTimestamp(now))
	t.calls.Add(ctx, 1, t.series.options(calls).add...)
	if s := stateOf(ctx); s != nil && s.started {
		t.duration.Float64Histogram.Record(ctx, now.Sub(s.start).Seconds(), t.series.options(duration).record...)
		t.wasted.Record(ctx, s.wasted.Load(), t.series.options(labels).record...)
	}
}

// callLabels returns the labels of the metrics of call c: dynretry.cohort,
// gen_ai.provider.name and, when known, gen_ai.request.model (both
// bounded: see providerLabel and MaxModels).
func (t *Telemetry) callLabels(c CallInfo) series {
	return series{cohort: string(c.Cohort()), provider: providerLabel(c.Provider), model: t.models.label(c.Model)}
}

// labelsOf returns the labels of the metrics of the call in ctx (see
// callLabels), kept by StartCall.
func (t *Telemetry) labelsOf(ctx context.Context) series {
	s := stateOf(ctx)
	switch {
	case s == nil:
		return t.callLabels(CallInfo{})
	case s.started:
		return s.labels
	}
	return t.callLabels(s.info)
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
