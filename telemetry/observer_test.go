package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	oftelemetry "github.com/open-feature/go-sdk/openfeature/telemetry"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func treatmentCall(run string) CallInfo {
	return CallInfo{
		RunID: run, PhaseID: "phase-7", Role: "builder", Provider: "openai", Model: "gpt-test",
		Flag: rollout.Assignment{
			Cohort: rollout.Treatment, FlagKey: "dynretry-enabled", Variant: "on",
			Reason: "SPLIT", Provider: "dynretry-rollout",
			Event: oftelemetry.EvaluationEvent{Name: "feature_flag.evaluation", Attributes: map[string]any{
				"feature_flag.key": "dynretry-enabled", "feature_flag.result.variant": "on",
				"feature_flag.provider.name": "dynretry-rollout", "feature_flag.result.reason": "split",
				"feature_flag.context.id": run,
			}},
		},
	}
}

var testKey = retry.Key{Provider: retry.OpenAI, Model: "gpt-test", Credential: retry.CredentialID("not-a-real-key")}

// byName indexes spans by a test label kept in the run id or the name.
func spansNamed(spans tracetest.SpanStubs, name string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func TestCallAndAttemptSpans(t *testing.T) {
	h := newHarness(t, Options{})
	obs := h.tel.Observer()
	root, rootSpan := h.tel.TracerProvider().Tracer("test").Start(context.Background(), "runner")

	// Call 1, treatment: a 429 with a hint is retried, then success.
	ctx, span := h.tel.StartCall(root, treatmentCall("run-1"))
	req := httptest.NewRequest(http.MethodPost, "https://user:pw@api.openai.com/v1/chat/completions?key=AIzaSecret&x=1", nil)
	ctx = WithRequest(ctx, req)
	got, ok := CallFrom(ctx)
	require.True(t, ok)
	require.Equal(t, "run-1", got.RunID)
	retryEv := retry.Event{
		Key: testKey, Sent: true, Start: t0, End: t0.Add(200 * time.Millisecond),
		Decision: retry.Decision{
			Assessment: retry.Assessment{
				Class: retry.RateLimited, Status: 429, Provider: retry.OpenAI,
				Hint: retry.Hint{Wait: 1500 * time.Millisecond, Source: retry.SourceRetryAfterMS},
			},
			Attempt: 1, Action: retry.Retry, HintSource: retry.SourceRetryAfterMS,
			DelayMin: 1500 * time.Millisecond, DelayMax: 1650 * time.Millisecond, Delay: 1600 * time.Millisecond,
			Hold:   retry.Hold{By: retry.HeldHint, For: 1500 * time.Millisecond},
			Reason: "rate_limited (HTTP 429): the server asked for 1.5s (retry-after-ms); retrying in 1.6s",
		},
	}
	obs.Observe(ctx, retryEv)
	okEv := retry.Event{
		Key: testKey, Sent: true, Start: t0.Add(1800 * time.Millisecond), End: t0.Add(2500 * time.Millisecond),
		Decision: retry.Decision{
			Assessment: retry.Assessment{Status: 200, Provider: retry.OpenAI},
			Attempt:    2, Action: retry.Success, HintSource: retry.SourceBackoff, Reason: "succeeded",
		},
	}
	obs.Observe(ctx, okEv)
	h.tel.EndCall(ctx, span, "", nil)

	// Call 2, treatment: a 429 whose hint is beyond the maximum: give up.
	ctx2, span2 := h.tel.StartCall(root, treatmentCall("run-2"))
	giveUpEv := retry.Event{
		Key: testKey, Sent: true, Start: t0.Add(3 * time.Second), End: t0.Add(3100 * time.Millisecond),
		Decision: retry.Decision{
			Assessment: retry.Assessment{
				Class: retry.RateLimited, Status: 429, Provider: retry.OpenAI,
				Hint: retry.Hint{Wait: 10 * time.Minute, Source: retry.SourceRetryAfter},
			},
			Attempt: 1, Action: retry.GiveUp, HintSource: retry.SourceRetryAfter,
			DelayMin: 10 * time.Minute, DelayMax: 10*time.Minute + 5*time.Second,
			Reason: "rate_limited (HTTP 429): the server asked for 10m0s (retry-after), more than the 2m0s maximum",
		},
	}
	obs.Observe(ctx2, giveUpEv)
	h.tel.EndCall(ctx2, span2, retry.RateLimited, errors.New("gave up"))

	// Call 3, control cohort: a 500 retried with backoff, then success.
	ctrl := treatmentCall("run-3")
	ctrl.Flag.Cohort, ctrl.Flag.Variant = rollout.Control, "off"
	ctx3, span3 := h.tel.StartCall(root, ctrl)
	ctrlEv := retry.Event{
		Key: testKey, Sent: true, Start: t0.Add(4 * time.Second), End: t0.Add(4100 * time.Millisecond),
		Decision: retry.Decision{
			Assessment: retry.Assessment{Class: retry.ServerError, Status: 500, Provider: retry.OpenAI},
			Attempt:    1, Action: retry.Retry, HintSource: retry.SourceBackoff,
			DelayMin: 400 * time.Millisecond, DelayMax: 600 * time.Millisecond, Delay: 500 * time.Millisecond,
			Reason: "server_error (HTTP 500): no usable hint, backoff; retrying in 500ms",
		},
	}
	obs.Observe(ctx3, ctrlEv)
	ctrlOK := okEv
	ctrlOK.Start, ctrlOK.End = t0.Add(4600*time.Millisecond), t0.Add(5*time.Second)
	obs.Observe(ctx3, ctrlOK)
	h.tel.EndCall(ctx3, span3, "", nil)

	// Call 4, treatment: a 529 retried, then the wait would pass the
	// deadline: a give-up before the second attempt is sent.
	ctx4, span4 := h.tel.StartCall(root, treatmentCall("run-4"))
	overEv := retry.Event{
		Key: testKey, Sent: true, Start: t0.Add(6 * time.Second), End: t0.Add(6050 * time.Millisecond),
		Decision: retry.Decision{
			Assessment: retry.Assessment{Class: retry.Overloaded, Status: 529, Provider: retry.Anthropic},
			Attempt:    1, Action: retry.Retry, HintSource: retry.SourceBackoff, Delay: 2 * time.Second,
			Reason: "overloaded (HTTP 529): no usable hint, backoff; retrying in 2s",
		},
	}
	obs.Observe(ctx4, overEv)
	unsent := overEv
	unsent.Sent, unsent.Start, unsent.End = false, t0.Add(7*time.Second), t0.Add(7*time.Second)
	unsent.Decision.Attempt, unsent.Decision.Action, unsent.Decision.Delay = 2, retry.GiveUp, 0
	unsent.Decision.Deadline = true
	unsent.Decision.Reason = "calls to this limit are held for 3s, past the deadline"
	obs.Observe(ctx4, unsent)
	h.tel.EndCall(ctx4, span4, retry.Overloaded, errors.New("deadline"))
	rootSpan.End()

	spans := h.spans.GetSpans()
	require.Len(t, spans, 4+7+1)
	runner := spansNamed(spans, "runner")[0]
	calls := spansNamed(spans, SpanCall)
	attempts := spansNamed(spans, SpanAttempt)
	require.Len(t, calls, 4)
	require.Len(t, attempts, 7)

	// Calls: children of the runner span, attributes, status.
	callByRun := map[string]tracetest.SpanStub{}
	for _, c := range calls {
		assert.Equal(t, runner.SpanContext.SpanID(), c.Parent.SpanID(), "call parent")
		assert.Equal(t, runner.SpanContext.TraceID(), c.SpanContext.TraceID())
		assert.Equal(t, trace.SpanKindClient, c.SpanKind)
		callByRun[attrMap(c.Attributes)[AttrRunID].(string)] = c
	}
	assert.Equal(t, map[string]any{
		AttrRunID: "run-1", AttrCohort: "treatment", AttrPhaseID: "phase-7", AttrRole: "builder",
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-test",
		"feature_flag.key": "dynretry-enabled", "feature_flag.result.variant": "on",
		"feature_flag.provider.name": "dynretry-rollout",
	}, attrMap(callByRun["run-1"].Attributes))
	assert.Equal(t, codes.Unset, callByRun["run-1"].Status.Code)
	require.Len(t, callByRun["run-1"].Events, 1)
	assert.Equal(t, EventFlagEvaluation, callByRun["run-1"].Events[0].Name)
	assert.Equal(t, map[string]any{
		"feature_flag.key": "dynretry-enabled", "feature_flag.result.variant": "on",
		"feature_flag.provider.name": "dynretry-rollout", "feature_flag.result.reason": "split",
		"feature_flag.context.id": "run-1",
	}, attrMap(callByRun["run-1"].Events[0].Attributes))

	assert.Equal(t, "rate_limited", attrMap(callByRun["run-2"].Attributes)["error.type"])
	assert.Equal(t, codes.Error, callByRun["run-2"].Status.Code)
	assert.Equal(t, "rate_limited", callByRun["run-2"].Status.Description)
	assert.Equal(t, "control", attrMap(callByRun["run-3"].Attributes)[AttrCohort])
	assert.Equal(t, "off", attrMap(callByRun["run-3"].Attributes)["feature_flag.result.variant"])
	assert.NotContains(t, attrMap(callByRun["run-3"].Attributes), "error.type")
	assert.Equal(t, "overloaded", attrMap(callByRun["run-4"].Attributes)["error.type"])

	// Attempts: children of their call, in order, with the event's times.
	type want struct {
		run   string
		ev    retry.Event
		attrs map[string]any
		kind  trace.SpanKind
		code  codes.Code
	}
	wants := []want{
		{"run-1", retryEv, map[string]any{
			AttrRunID: "run-1", AttrCohort: "treatment", AttrAttempt: int64(1), AttrClass: "rate_limited",
			AttrDecision: "retry", AttrSent: true, AttrHintSource: "retry-after-ms", AttrHintMS: int64(1500), AttrDelayMS: int64(1600),
			AttrReason: retryEv.Decision.Reason, "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-test",
			"http.response.status_code": int64(429), "error.type": "rate_limited",
			"http.request.method": "POST", "server.address": "api.openai.com", "server.port": int64(443),
			"url.full": "https://REDACTED:REDACTED@api.openai.com/v1/chat/completions?key=REDACTED&x=1",
		}, trace.SpanKindClient, codes.Unset},
		{"run-1", okEv, map[string]any{
			AttrRunID: "run-1", AttrCohort: "treatment", AttrAttempt: int64(2), AttrDecision: "success", AttrSent: true,
			AttrDelayMS: int64(0), AttrReason: "succeeded", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-test",
			"http.response.status_code": int64(200), "http.request.resend_count": int64(1),
			"http.request.method": "POST", "server.address": "api.openai.com", "server.port": int64(443),
			"url.full": "https://REDACTED:REDACTED@api.openai.com/v1/chat/completions?key=REDACTED&x=1",
		}, trace.SpanKindClient, codes.Unset},
		{"run-2", giveUpEv, map[string]any{
			AttrRunID: "run-2", AttrCohort: "treatment", AttrAttempt: int64(1), AttrClass: "rate_limited",
			AttrDecision: "give_up", AttrSent: true, AttrHintSource: "retry-after", AttrHintMS: int64(600000), AttrDelayMS: int64(0),
			AttrReason: giveUpEv.Decision.Reason, "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-test",
			"http.response.status_code": int64(429), "error.type": "rate_limited",
		}, trace.SpanKindClient, codes.Error},
		{"run-3", ctrlEv, map[string]any{
			AttrRunID: "run-3", AttrCohort: "control", AttrAttempt: int64(1), AttrClass: "server_error",
			AttrDecision: "retry", AttrSent: true, AttrHintSource: "backoff",
			AttrReason: ctrlEv.Decision.Reason, "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-test",
			"http.response.status_code": int64(500), "error.type": "server_error",
		}, trace.SpanKindClient, codes.Unset},
		{"run-3", ctrlOK, map[string]any{
			AttrRunID: "run-3", AttrCohort: "control", AttrAttempt: int64(2), AttrDecision: "success", AttrSent: true,
			AttrReason: "succeeded", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-test",
			"http.response.status_code": int64(200), "http.request.resend_count": int64(1),
		}, trace.SpanKindClient, codes.Unset},
		{"run-4", overEv, map[string]any{
			AttrRunID: "run-4", AttrCohort: "treatment", AttrAttempt: int64(1), AttrClass: "overloaded",
			AttrDecision: "retry", AttrSent: true, AttrHintSource: "backoff", AttrDelayMS: int64(2000),
			AttrReason: overEv.Decision.Reason, "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-test",
			"http.response.status_code": int64(529), "error.type": "overloaded",
		}, trace.SpanKindClient, codes.Unset},
		{"run-4", unsent, map[string]any{
			AttrRunID: "run-4", AttrCohort: "treatment", AttrAttempt: int64(2), AttrClass: "overloaded",
			AttrDecision: "give_up", AttrSent: false, AttrHintSource: "backoff", AttrDelayMS: int64(0),
			AttrReason: unsent.Decision.Reason, "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-test",
			"error.type": "overloaded",
		}, trace.SpanKindInternal, codes.Error},
	}
	for i, w := range wants {
		s := attempts[i]
		parent := callByRun[w.run]
		assert.Equal(t, parent.SpanContext.SpanID(), s.Parent.SpanID(), "attempt %d: parent", i)
		assert.Equal(t, parent.SpanContext.TraceID(), s.SpanContext.TraceID(), "attempt %d: trace", i)
		assert.Equal(t, w.attrs, attrMap(s.Attributes), "attempt %d: attributes", i)
		assert.True(t, s.StartTime.Equal(w.ev.Start), "attempt %d: start %v, want %v", i, s.StartTime, w.ev.Start)
		assert.True(t, s.EndTime.Equal(w.ev.End), "attempt %d: end %v, want %v", i, s.EndTime, w.ev.End)
		assert.Equal(t, w.kind, s.SpanKind, "attempt %d: kind", i)
		assert.Equal(t, w.code, s.Status.Code, "attempt %d: status", i)
	}
	assert.Equal(t, "rate_limited", attempts[2].Status.Description)
	assert.True(t, attempts[6].StartTime.Equal(attempts[6].EndTime), "an unsent attempt is a zero-length span")

	m := h.metrics(t)
	durations := m[MetricOperationDuration]
	delete(m, MetricOperationDuration)
	const gm = ",gen_ai.provider.name=openai,gen_ai.request.model=gpt-test"
	assert.Equal(t, map[string]map[string]any{
		MetricAttempts: {
			"dynretry.class=rate_limited,dynretry.cohort=treatment,dynretry.decision=retry" + gm:   int64(1),
			"dynretry.cohort=treatment,dynretry.decision=success" + gm:                             int64(1),
			"dynretry.class=rate_limited,dynretry.cohort=treatment,dynretry.decision=give_up" + gm: int64(1),
			"dynretry.class=server_error,dynretry.cohort=control,dynretry.decision=retry" + gm:     int64(1),
			"dynretry.cohort=control,dynretry.decision=success" + gm:                               int64(1),
			"dynretry.class=overloaded,dynretry.cohort=treatment,dynretry.decision=retry" + gm:     int64(1),
		},
		MetricGiveups: {
			"dynretry.class=rate_limited,dynretry.cohort=treatment" + gm: int64(1),
			"dynretry.class=overloaded,dynretry.cohort=treatment" + gm:   int64(1),
		},
		MetricDelay: {
			"dynretry.class=rate_limited,dynretry.cohort=treatment,dynretry.hint_source=retry-after-ms" + gm: histPoint{1, 1.6},
			"dynretry.class=overloaded,dynretry.cohort=treatment,dynretry.hint_source=backoff" + gm:          histPoint{1, 2},
		},
		MetricHolds: {
			"dynretry.class=rate_limited,dynretry.cohort=treatment,dynretry.hold=hint" + gm: int64(1),
		},
		MetricCalls: {
			"dynretry.cohort=treatment,dynretry.outcome=success" + gm:                             int64(1),
			"dynretry.class=rate_limited,dynretry.cohort=treatment,dynretry.outcome=failure" + gm: int64(1),
			"dynretry.cohort=control,dynretry.outcome=success" + gm:                               int64(1),
			"dynretry.class=overloaded,dynretry.cohort=treatment,dynretry.outcome=failure" + gm:   int64(1),
		},
		MetricCallWasted: {
			"dynretry.cohort=treatment" + gm: histPoint{3, 3}, // 1 + 1 + 1 (the unsent give-up is not an attempt)
			"dynretry.cohort=control" + gm:   histPoint{1, 1},
		},
		MetricCoordinationDegraded: {"": int64(0)},
	}, m)
	const ops = "dynretry.cohort=%s,gen_ai.operation.name=chat,gen_ai.provider.name=openai,gen_ai.request.model=gpt-test"
	counts := map[string]uint64{}
	for k, v := range durations {
		counts[k] = v.(histPoint).Count
	}
	assert.Equal(t, map[string]uint64{
		fmt.Sprintf(ops, "treatment"): 1,
		fmt.Sprintf(ops, "control"):   1,
		"dynretry.cohort=treatment,error.type=rate_limited,gen_ai.operation.name=chat,gen_ai.provider.name=openai,gen_ai.request.model=gpt-test": 1,
		"dynretry.cohort=treatment,error.type=overloaded,gen_ai.operation.name=chat,gen_ai.provider.name=openai,gen_ai.request.model=gpt-test":   1,
	}, counts)
}

func TestObserverWithoutCall(t *testing.T) {
	h := newHarness(t, Options{})
	ev := retry.Event{
		Key: testKey, Sent: true, Start: t0, End: t0.Add(time.Second),
		Decision: retry.Decision{Assessment: retry.Assessment{Status: 200}, Attempt: 1, Action: retry.Success, Reason: "succeeded"},
	}
	h.tel.Observer().Observe(context.Background(), ev)
	spans := h.spans.GetSpans()
	require.Len(t, spans, 1)
	assert.False(t, spans[0].Parent.IsValid(), "no parent: a root span")
	a := attrMap(spans[0].Attributes)
	assert.Equal(t, "control", a[AttrCohort])
	assert.Equal(t, "", a[AttrRunID])
	assert.NotContains(t, a, "http.request.resend_count")

	// An event without times is a zero-length span now.
	before := time.Now()
	h.tel.Observer().Observe(context.Background(), retry.Event{Decision: retry.Decision{Attempt: 1, Action: retry.Success}})
	s := h.spans.GetSpans()[1]
	assert.True(t, s.StartTime.Equal(s.EndTime))
	assert.False(t, s.StartTime.Before(before))
}

// A call's successful attempt is recorded when the call ends, after its
// response went on, with its own times; a failed one at once.
func TestSuccessRecordedAtEndCall(t *testing.T) {
	h := newHarness(t, Options{})
	ctx, span := h.tel.StartCall(context.Background(), treatmentCall("run-late"))
	obs := h.tel.Observer()
	obs.Observe(ctx, retry.Event{Key: testKey, Sent: true, Start: t0, End: t0.Add(time.Second),
		Decision: retry.Decision{Assessment: retry.Assessment{Class: retry.Overloaded, Status: 529}, Attempt: 1, Action: retry.Retry}})
	require.Len(t, h.spans.GetSpans(), 1, "a failed attempt is recorded at once")
	obs.Observe(ctx, retry.Event{Key: testKey, Sent: true, Start: t0.Add(2 * time.Second), End: t0.Add(3 * time.Second),
		Decision: retry.Decision{Assessment: retry.Assessment{Status: 200}, Attempt: 2, Action: retry.Success}})
	require.Len(t, h.spans.GetSpans(), 1, "the success waits for the call's end")
	_, ok := h.metrics(t)[MetricAttempts]["dynretry.cohort=treatment,dynretry.decision=success,gen_ai.provider.name=openai,gen_ai.request.model=gpt-test"]
	assert.False(t, ok, "nor is it counted before")

	h.tel.EndCall(ctx, span, "", nil)
	spans := h.spans.GetSpans()
	require.Len(t, spans, 3)
	assert.Equal(t, []string{SpanAttempt, SpanAttempt, SpanCall}, []string{spans[0].Name, spans[1].Name, spans[2].Name})
	s := spans[1]
	assert.Equal(t, "success", attrMap(s.Attributes)[AttrDecision])
	assert.True(t, s.StartTime.Equal(t0.Add(2*time.Second)) && s.EndTime.Equal(t0.Add(3*time.Second)), "its own times")
	assert.Equal(t, spans[2].SpanContext.SpanID(), s.Parent.SpanID())
	assert.Equal(t, int64(1), h.metrics(t)[MetricAttempts]["dynretry.cohort=treatment,dynretry.decision=success,gen_ai.provider.name=openai,gen_ai.request.model=gpt-test"])
}

func TestEndCallFailureWithoutClass(t *testing.T) {
	h := newHarness(t, Options{})
	ctx, span := h.tel.StartCall(context.Background(), CallInfo{RunID: "r"})
	h.tel.EndCall(ctx, span, "", errors.New("boom"))
	s := h.spans.GetSpans()[0]
	assert.Equal(t, codes.Error, s.Status.Code)
	assert.Equal(t, ErrorTypeOther, attrMap(s.Attributes)["error.type"])
	assert.Empty(t, s.Events, "no flag, no evaluation event")
	m := h.metrics(t)
	assert.Equal(t, map[string]any{"dynretry.cohort=control,dynretry.outcome=failure,gen_ai.provider.name=_OTHER": int64(1)}, m[MetricCalls])
	assert.Equal(t, map[string]any{"dynretry.cohort=control,gen_ai.provider.name=_OTHER": histPoint{1, 0}}, m[MetricCallWasted])
}

func TestNilTelemetry(t *testing.T) {
	var tel *Telemetry
	ctx, span := tel.StartCall(context.Background(), treatmentCall("run-nil"))
	assert.False(t, span.IsRecording())
	c, ok := CallFrom(ctx)
	assert.True(t, ok)
	assert.Equal(t, "run-nil", c.RunID)
	tel.Observer().Observe(ctx, retry.Event{})
	tel.EndCall(ctx, span, "", nil)
	assert.NotNil(t, tel.TracerProvider())
	assert.NotNil(t, tel.MeterProvider())
	assert.NoError(t, tel.Shutdown(context.Background()))
}

func TestShutdownTwice(t *testing.T) {
	tel, err := Setup(context.Background(), Options{})
	require.NoError(t, err)
	assert.NoError(t, tel.Shutdown(context.Background()))
	assert.NoError(t, tel.Shutdown(context.Background()))
}
