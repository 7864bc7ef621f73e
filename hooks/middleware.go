package hooks

import (
	"cmp"
	"context"
	"errors"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
)

// Middleware returns the LLM-service middleware. For each call it evaluates
// the rollout flag with the run id and the call's EvaluationContext (a
// provider change applies to the next call), marks the context with the
// cohort (see WithCohort and SDKRetriesOff), opens the call's span, records
// what the response says of itself (model, tokens), and keeps the call's
// Summary. A failed call's error comes back as a *CallError carrying that
// Summary. A call the wrapped service holds (see Hold) is ended by its
// holder instead, and next's result is returned as is.
func Middleware(ro *rollout.Rollout, tel *telemetry.Telemetry) func(LLMService) LLMService {
	settle := retry.DefaultConfig() // a call's end is decided alike in both cohorts
	return func(next LLMService) LLMService {
		return LLMFunc(func(ctx context.Context, call Call, req Request) (Response, error) {
			ctx, c := begin(ctx, ro, tel, &settle, call)
			resp, err := next.Complete(ctx, call, req)
			if c.held.Load() {
				return resp, err
			}
			return c.End(ctx, resp, err)
		})
	}
}

// An OpenCall is a call Middleware began and has not ended: its span and
// its Summary so far.
type OpenCall struct {
	tel    *telemetry.Telemetry
	settle *retry.Config
	span   trace.Span
	rec    *recorder
	held   atomic.Bool
}

type openCallKey struct{}

// begin assigns the call's cohort, starts its span and its Summary, and
// returns the context the call runs in.
func begin(ctx context.Context, ro *rollout.Rollout, tel *telemetry.Telemetry, settle *retry.Config, call Call) (context.Context, *OpenCall) {
	a := ro.Assign(ctx, call.RunID, call.EvaluationContext())
	ctx = WithCohort(ctx, a.Cohort)
	ctx, span := tel.StartCall(ctx, telemetry.CallInfo{
		RunID: call.RunID, PhaseID: call.PhaseID, Role: call.Role,
		Provider: call.Provider, Model: call.Model, Flag: a,
	})
	ctx, rec := withRecorder(ctx, a.Cohort)
	c := &OpenCall{tel: tel, settle: settle, span: span, rec: rec}
	return context.WithValue(ctx, openCallKey{}, c), c
}

// Hold takes the end of the call ctx belongs to over from Middleware, for a
// call that outlives one Complete (a proxy's control call spans the SDK's
// separate requests): Middleware then returns the wrapped service's result
// as is, and the holder must end the call with End, once. It returns nil
// when ctx belongs to no call of Middleware's, or its call is held already.
func Hold(ctx context.Context) *OpenCall {
	c, _ := ctx.Value(openCallKey{}).(*OpenCall)
	if c == nil || c.held.Swap(true) {
		return nil
	}
	return c
}

// End ends the call as Middleware does when the wrapped service returns
// resp and err: a success records what resp says of itself; a failure is
// settled from the call's Summary and returned as a *CallError. ctx must
// carry the call's values (the context Middleware passed on, or one derived
// from it); whether it ended says whether the caller's context did.
func (c *OpenCall) End(ctx context.Context, resp Response, err error) (Response, error) {
	if err == nil {
		c.tel.RecordResponse(ctx, c.span, telemetry.Response{Model: resp.Model, InputTokens: resp.InputTokens, OutputTokens: resp.OutputTokens})
		c.tel.EndCall(ctx, c.span, "", nil)
		return resp, nil
	}
	s := c.rec.summary()
	if s.Decision != retry.GiveUp {
		// The engine's (or, for control, the SDK's) last word was not a
		// give-up: the call ended another way, and Decide says how.
		var ended error
		if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			ended = cmp.Or(ctx.Err(), err)
		}
		// Past the commit point (the last attempt succeeded, then its
		// response broke) the failure is the break, not an earlier attempt's.
		committed := s.Decision == retry.Success
		last := retry.Assessment{Class: s.Class, Status: s.Status}
		if committed {
			last = retry.Assessment{}
		}
		d := c.settle.Decide(retry.Input{
			Point: retry.AfterCall, Assessment: last,
			Attempt: s.Attempts, Ended: ended, Committed: committed,
		})
		s.Class, s.Decision, s.Reason = d.Class, d.Action, d.Reason
	}
	c.tel.EndCall(ctx, c.span, s.Class, err)
	return resp, &CallError{Err: err, Summary: s}
}
