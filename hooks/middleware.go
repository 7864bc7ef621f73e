package hooks

import (
	"cmp"
	"context"
	"errors"

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
// Summary.
func Middleware(ro *rollout.Rollout, tel *telemetry.Telemetry) func(LLMService) LLMService {
	settle := retry.DefaultConfig() // a call's end is decided alike in both cohorts
	return func(next LLMService) LLMService {
		return LLMFunc(func(ctx context.Context, call Call, req Request) (Response, error) {
			a := ro.Assign(ctx, call.RunID, call.EvaluationContext())
			ctx = WithCohort(ctx, a.Cohort)
			ctx, span := tel.StartCall(ctx, telemetry.CallInfo{
				RunID: call.RunID, PhaseID: call.PhaseID, Role: call.Role,
				Provider: call.Provider, Model: call.Model, Flag: a,
			})
			ctx, rec := withRecorder(ctx, a.Cohort)
			resp, err := next.Complete(ctx, call, req)
			if err == nil {
				tel.RecordResponse(ctx, span, telemetry.Response{Model: resp.Model, InputTokens: resp.InputTokens, OutputTokens: resp.OutputTokens})
				tel.EndCall(ctx, span, "", nil)
				return resp, nil
			}
			s := rec.summary()
			if s.Decision != retry.GiveUp {
				// The engine's (or, for control, the SDK's) last word was not a
				// give-up: the call ended another way, and Decide says how.
				var ended error
				if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					ended = cmp.Or(ctx.Err(), err)
				}
				d := settle.Decide(retry.Input{
					Point:      retry.AfterCall,
					Assessment: retry.Assessment{Class: s.Class, Status: s.Status},
					Attempt:    s.Attempts, Ended: ended, Committed: s.Decision == retry.Success,
				})
				s.Class, s.Decision, s.Reason = d.Class, d.Action, d.Reason
			}
			tel.EndCall(ctx, span, s.Class, err)
			return resp, &CallError{Err: err, Summary: s}
		})
	}
}
