package hooks_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
)

// stack is the middleware with the parts plugin.Register wires: a rollout
// at a percentage, telemetry into memory, and a Retrier and Transport that
// report to the same observer.
type stack struct {
	ro    *rollout.Rollout
	tel   *telemetry.Telemetry
	spans *tracetest.InMemoryExporter
	obs   retry.Observer
	r     *retry.Retrier
}

// newStack builds a stack. Call it outside any synctest bubble: the
// OpenFeature SDK's goroutines must not belong to one.
func newStack(t *testing.T, percent float64) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{spans: tracetest.NewInMemoryExporter()}
	var err error
	s.ro, err = rollout.New(ctx, rollout.NewPercentProvider(true, percent), func(string) string { return "" })
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.ro.Shutdown(context.Background())) })
	s.tel, err = telemetry.Setup(ctx, telemetry.Options{SpanExporters: []sdktrace.SpanExporter{s.spans}})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.tel.Shutdown(context.Background())) })
	s.obs = hooks.Observe(s.tel.Observer())
	s.r = newRetrier(t, s.obs)
	return s
}

func (s *stack) wrap(next hooks.LLMService) hooks.LLMService {
	return hooks.Middleware(s.ro, s.tel)(next)
}

var testCall = hooks.Call{RunID: "run-mw", PhaseID: "phase-1", Role: "builder", Provider: "openai", Model: "gpt-4o-mini"}

func TestMiddlewareSuccessPassesThrough(t *testing.T) {
	s := newStack(t, 100)
	want := hooks.Response{Text: "done", InputTokens: 12, OutputTokens: 34}
	var gotCall hooks.Call
	var gotReq hooks.Request
	svc := s.wrap(hooks.LLMFunc(func(ctx context.Context, call hooks.Call, req hooks.Request) (hooks.Response, error) {
		gotCall, gotReq = call, req
		return want, nil
	}))
	req := hooks.Request{System: "sys", Prompt: "p", MaxTokens: 10, Stream: true}
	resp, err := svc.Complete(context.Background(), testCall, req)
	require.NoError(t, err)
	assert.Equal(t, want, resp)
	assert.Equal(t, testCall, gotCall)
	assert.Equal(t, req, gotReq)

	spans := s.spans.GetSpans()
	require.Len(t, spans, 1)
	assert.Equal(t, telemetry.SpanCall, spans[0].Name)
	assert.NotEqual(t, "Error", spans[0].Status.Code.String())
	attrs := map[string]any{}
	for _, kv := range spans[0].Attributes {
		attrs[string(kv.Key)] = kv.Value.AsInterface()
	}
	assert.Equal(t, int64(12), attrs["gen_ai.usage.input_tokens"])
	assert.Equal(t, int64(34), attrs["gen_ai.usage.output_tokens"])
	assert.NotContains(t, attrs, "gen_ai.response.model", "the response did not say")
}

// TestMiddlewareEvaluationContext: the flag is evaluated with the call's
// fields and the runner's attributes.
func TestMiddlewareEvaluationContext(t *testing.T) {
	var got openfeature.FlattenedContext
	eval := func(_ memprovider.InMemoryFlag, ec openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		got = ec
		return true, openfeature.ProviderResolutionDetail{Variant: "on", Reason: openfeature.TargetingMatchReason}
	}
	ro, err := rollout.New(context.Background(), memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		rollout.FlagKey: {Key: rollout.FlagKey, State: memprovider.Enabled, DefaultVariant: "on",
			Variants: map[string]any{"on": true, "off": false}, ContextEvaluator: &eval},
	}), func(string) string { return "" })
	require.NoError(t, err)
	defer ro.Shutdown(context.Background())
	call := testCall
	call.Attributes = map[string]any{"codebase_size": 250_000, "provider": "spoofed"}
	svc := hooks.Middleware(ro, nil)(hooks.LLMFunc(func(ctx context.Context, _ hooks.Call, _ hooks.Request) (hooks.Response, error) {
		assert.Equal(t, rollout.Treatment, hooks.CohortOf(ctx))
		return hooks.Response{}, nil
	}))
	_, err = svc.Complete(context.Background(), call, hooks.Request{})
	require.NoError(t, err)
	assert.Equal(t, openfeature.FlattenedContext{
		openfeature.TargetingKey: "run-mw", "codebase_size": 250_000, "provider": "openai",
		"model": "gpt-4o-mini", "role": "builder", "phase_id": "phase-1",
	}, got)
	assert.Equal(t, map[string]any{"codebase_size": 250_000, "provider": "spoofed"}, call.Attributes, "not modified")
}

// TestMiddlewareCohortInContext: inside the wrapped service the context says
// whether the SDK's retries must be off, exactly for the treatment cohort.
func TestMiddlewareCohortInContext(t *testing.T) {
	for _, tc := range []struct {
		percent float64
		want    rollout.Cohort
	}{{100, rollout.Treatment}, {0, rollout.Control}} {
		t.Run(fmt.Sprint(tc.percent), func(t *testing.T) {
			s := newStack(t, tc.percent)
			var off bool
			var cohort rollout.Cohort
			svc := s.wrap(hooks.LLMFunc(func(ctx context.Context, _ hooks.Call, _ hooks.Request) (hooks.Response, error) {
				off, cohort = hooks.SDKRetriesOff(ctx), hooks.CohortOf(ctx)
				return hooks.Response{}, nil
			}))
			_, err := svc.Complete(context.Background(), testCall, hooks.Request{})
			require.NoError(t, err)
			assert.Equal(t, tc.want, cohort)
			assert.Equal(t, tc.want == rollout.Treatment, off)
		})
	}
	assert.False(t, hooks.SDKRetriesOff(context.Background()), "an unmarked context is control")
	assert.Equal(t, rollout.Control, hooks.CohortOf(context.Background()))
}

// sdkLike is an LLM service that sends its request through the stack's
// transport the way an SDK does: with its own retries (counted in
// X-Stainless-Retry-Count) unless hooks.SDKRetriesOff, and an error for a
// final status >= 400.
func (s *stack) sdkLike(base http.RoundTripper) hooks.LLMService {
	client := &http.Client{Transport: hooks.NewTransport(base, s.r, s.obs)}
	return hooks.LLMFunc(func(ctx context.Context, _ hooks.Call, _ hooks.Request) (hooks.Response, error) {
		retries := 2
		if hooks.SDKRetriesOff(ctx) {
			retries = 0
		}
		for n := 0; ; n++ {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, openAIURL, strings.NewReader(chatBody))
			if err != nil {
				return hooks.Response{}, err
			}
			req.Header.Set("Authorization", "Bearer sk-test-middleware-000000")
			req.Header.Set("X-Stainless-Retry-Count", strconv.Itoa(n))
			resp, err := client.Do(req)
			if err != nil {
				return hooks.Response{}, err
			}
			resp.Body.Close()
			if resp.StatusCode < 400 {
				return hooks.Response{Text: "ok"}, nil
			}
			if n >= retries || resp.Header.Get("X-Should-Retry") == "false" {
				return hooks.Response{}, fmt.Errorf("sdk: %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
			}
			select { // the SDK's own backoff
			case <-time.After(500 * time.Millisecond << n):
			case <-ctx.Done():
				return hooks.Response{}, ctx.Err()
			}
		}
	})
}

func rateLimited(attempts *int) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		*attempts++
		return response(req, 429, http.Header{"Retry-After-Ms": {"200"}}, limitBody), nil
	})
}

func TestMiddlewareFailureSummaryTreatment(t *testing.T) {
	s := newStack(t, 100)
	synctest.Test(t, func(t *testing.T) {
		var attempts int
		svc := s.wrap(s.sdkLike(rateLimited(&attempts)))
		start := time.Now()
		_, err := svc.Complete(context.Background(), testCall, hooks.Request{})
		require.Error(t, err)
		var ce *hooks.CallError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "sdk: 429 Too Many Requests", err.Error(), "the error's text is the service's")
		assert.NotNil(t, errors.Unwrap(err))

		sum := ce.Summary
		assert.Equal(t, 8, attempts, "rate_limited: the engine makes the policy's 8 attempts, the SDK none of its own")
		assert.Equal(t, rollout.Treatment, sum.Cohort)
		assert.Equal(t, 8, sum.Attempts)
		assert.Equal(t, retry.RateLimited, sum.Class)
		assert.Equal(t, 429, sum.Status)
		assert.Equal(t, 200*time.Millisecond, sum.Hint)
		assert.Equal(t, retry.SourceRetryAfterMS, sum.HintSource)
		assert.Equal(t, retry.GiveUp, sum.Decision)
		assert.Contains(t, sum.Reason, "8 attempts made")
		assert.GreaterOrEqual(t, sum.Waited, 7*200*time.Millisecond, "7 waits of at least the hint")
		assert.Equal(t, time.Since(start), sum.Waited, "in virtual time the call only waited")
	})
	spans := s.spans.GetSpans()
	require.Len(t, spans, 9, "8 attempt spans and the call span")
	call := spans[len(spans)-1]
	assert.Equal(t, telemetry.SpanCall, call.Name)
	for _, sp := range spans[:8] {
		assert.Equal(t, telemetry.SpanAttempt, sp.Name)
		assert.Equal(t, call.SpanContext.SpanID(), sp.Parent.SpanID())
	}
}

func TestMiddlewareFailureSummaryControl(t *testing.T) {
	s := newStack(t, 0)
	synctest.Test(t, func(t *testing.T) {
		var attempts int
		svc := s.wrap(s.sdkLike(rateLimited(&attempts)))
		_, err := svc.Complete(context.Background(), testCall, hooks.Request{})
		var ce *hooks.CallError
		require.ErrorAs(t, err, &ce)
		sum := ce.Summary
		assert.Equal(t, 3, attempts, "control: the SDK's 3 attempts")
		assert.Equal(t, rollout.Control, sum.Cohort)
		assert.Equal(t, 3, sum.Attempts)
		assert.Equal(t, retry.RateLimited, sum.Class)
		assert.Equal(t, 429, sum.Status)
		assert.Equal(t, retry.SourceRetryAfterMS, sum.HintSource)
		assert.Equal(t, retry.GiveUp, sum.Decision)
		assert.Contains(t, sum.Reason, "control cohort")
	})
}

func TestMiddlewareFailureWithoutAttempt(t *testing.T) {
	for name, tc := range map[string]struct {
		err       error
		wantClass retry.Class
	}{
		"broken":   {errors.New("stream cut"), retry.Connection},
		"canceled": {fmt.Errorf("sdk: %w", context.Canceled), retry.Canceled},
		"deadline": {context.DeadlineExceeded, retry.Canceled},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStack(t, 100)
			svc := s.wrap(hooks.LLMFunc(func(context.Context, hooks.Call, hooks.Request) (hooks.Response, error) {
				return hooks.Response{}, tc.err
			}))
			_, err := svc.Complete(context.Background(), testCall, hooks.Request{})
			var ce *hooks.CallError
			require.ErrorAs(t, err, &ce)
			assert.ErrorIs(t, err, tc.err)
			assert.Equal(t, tc.wantClass, ce.Summary.Class)
			assert.Equal(t, retry.GiveUp, ce.Summary.Decision)
			assert.Equal(t, 0, ce.Summary.Attempts)
			assert.Equal(t, rollout.Treatment, ce.Summary.Cohort)
			assert.NotEmpty(t, ce.Summary.Reason)
		})
	}
}

// TestMiddlewareStreamCutAfterCommit: an attempt the engine saw succeed
// whose stream then broke ends as a connection give-up past the commit
// point, as Decide says after the call.
// A 429 before the successful attempt does not make the break a rate limit.
func TestMiddlewareStreamCutAfterCommit(t *testing.T) {
	limited := retry.Decision{Assessment: retry.Assessment{Class: retry.RateLimited, Status: 429}, Attempt: 1, Action: retry.Retry, Reason: "rate_limited"}
	for name, before := range map[string][]retry.Decision{
		"first attempt":   nil,
		"after a refusal": {limited},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStack(t, 100)
			cut := errors.New("unexpected EOF in the stream")
			svc := s.wrap(hooks.LLMFunc(func(ctx context.Context, _ hooks.Call, _ hooks.Request) (hooks.Response, error) {
				for _, d := range before {
					s.obs.Observe(ctx, retry.Event{Decision: d, Sent: true})
				}
				s.obs.Observe(ctx, retry.Event{Decision: retry.Decision{Attempt: len(before) + 1, Action: retry.Success, Reason: "succeeded"}, Sent: true})
				return hooks.Response{}, cut
			}))
			_, err := svc.Complete(context.Background(), testCall, hooks.Request{Stream: true})
			var ce *hooks.CallError
			require.ErrorAs(t, err, &ce)
			assert.ErrorIs(t, err, cut)
			assert.Equal(t, retry.GiveUp, ce.Summary.Decision)
			assert.Equal(t, retry.Connection, ce.Summary.Class)
			assert.Equal(t, len(before)+1, ce.Summary.Attempts)
			assert.Contains(t, ce.Summary.Reason, "commit point")
			assert.NotContains(t, ce.Summary.Reason, "HTTP 429")
		})
	}
}

// TestObserveWithoutCall: the observer Observe returns passes every event
// on, also outside a middleware call, and accepts a nil next.
func TestObserveWithoutCall(t *testing.T) {
	log := new(eventLog)
	e := retry.Event{Decision: retry.Decision{Attempt: 1, Action: retry.Success}}
	hooks.Observe(log).Observe(context.Background(), e)
	assert.Len(t, log.all(), 1)
	hooks.Observe(nil).Observe(context.Background(), e)
}

// TestMiddlewareControlEndsDuringSDKWait: a control call whose context ends
// while the SDK waits to retry has failed for good; its summary must not
// say that the SDK retries it (Decide, after the call, says it was
// canceled).
func TestMiddlewareControlEndsDuringSDKWait(t *testing.T) {
	s := newStack(t, 0)
	synctest.Test(t, func(t *testing.T) {
		var attempts int
		svc := s.wrap(s.sdkLike(rateLimited(&attempts)))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := svc.Complete(ctx, testCall, hooks.Request{})
		var ce *hooks.CallError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, 1, attempts)
		assert.Equal(t, retry.GiveUp, ce.Summary.Decision, "reason: %s", ce.Summary.Reason)
		assert.NotContains(t, ce.Summary.Reason, "the SDK retries this")
	})
}

// TestMiddlewareTreatmentStoppedBeforeSend: when the engine ends a call
// before its first attempt is sent, the summary keeps the engine's reason.
func TestMiddlewareTreatmentStoppedBeforeSend(t *testing.T) {
	s := newStack(t, 100)
	var attempts int
	svc := s.wrap(s.sdkLike(rateLimited(&attempts)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := svc.Complete(ctx, testCall, hooks.Request{})
	var ce *hooks.CallError
	require.ErrorAs(t, err, &ce)
	assert.Zero(t, attempts)
	assert.Zero(t, ce.Summary.Attempts)
	assert.Equal(t, retry.GiveUp, ce.Summary.Decision)
	assert.NotContains(t, ce.Summary.Reason, "response began", "no attempt was sent")
}

// TestHold: a call the wrapped service holds is not ended by Middleware,
// which returns the service's result as is; its holder ends it later, in a
// context with the call's values, with the summary of every attempt, as
// Middleware would have.
func TestHold(t *testing.T) {
	limited := retry.Decision{Attempt: 1, Action: retry.Retry, Assessment: retry.Assessment{Class: retry.RateLimited, Status: 429}}
	for name, tc := range map[string]struct {
		second  bool  // a second attempt, a success, before End
		err     error // End's
		failed  bool
		attempt int
	}{
		"resumed":  {second: true, attempt: 2},
		"no retry": {err: errors.New("the client did not retry"), failed: true, attempt: 1},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStack(t, 0)
			var held *hooks.OpenCall
			var callCtx context.Context
			svc := s.wrap(hooks.LLMFunc(func(ctx context.Context, _ hooks.Call, _ hooks.Request) (hooks.Response, error) {
				s.obs.Observe(ctx, retry.Event{Decision: limited, Sent: true})
				held = hooks.Hold(ctx)
				assert.Nil(t, hooks.Hold(ctx), "held once")
				callCtx = context.WithoutCancel(ctx)
				return hooks.Response{Text: "partial"}, errors.New("sdk: 429")
			}))
			resp, err := svc.Complete(context.Background(), testCall, hooks.Request{})
			assert.EqualError(t, err, "sdk: 429", "the service's result as is")
			assert.Equal(t, "partial", resp.Text)
			require.NotNil(t, held)
			require.Len(t, s.spans.GetSpans(), 1, "the attempt's span; the call is open")

			if tc.second {
				s.obs.Observe(callCtx, retry.Event{Decision: retry.Decision{Attempt: 2, Action: retry.Success}, Sent: true})
			}
			_, err = held.End(callCtx, hooks.Response{}, tc.err)
			spans := s.spans.GetSpans()
			require.Len(t, spans, tc.attempt+1)
			call := spans[len(spans)-1]
			assert.Equal(t, telemetry.SpanCall, call.Name)
			for _, sp := range spans[:tc.attempt] {
				assert.Equal(t, call.SpanContext.SpanID(), sp.Parent.SpanID())
			}
			if !tc.failed {
				require.NoError(t, err)
				assert.NotEqual(t, "Error", call.Status.Code.String())
				return
			}
			var ce *hooks.CallError
			require.ErrorAs(t, err, &ce)
			assert.ErrorIs(t, err, tc.err)
			assert.Equal(t, "Error", call.Status.Code.String())
			assert.Equal(t, retry.RateLimited, ce.Summary.Class, "the last outcome's")
			assert.Equal(t, retry.GiveUp, ce.Summary.Decision)
			assert.Contains(t, ce.Summary.Reason, "the caller's client ended the call after attempt 1")
		})
	}
	assert.Nil(t, hooks.Hold(context.Background()), "no call to hold")
}
