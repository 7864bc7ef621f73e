package hooks

import (
	"context"
	"errors"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
)

// Middleware returns the LLM-service middleware. For each call it evaluates
// the rollout flag with the run id (a provider change applies to the next
// call), marks the context with the cohort (see WithCohort and
// SDKRetriesOff), opens the call's span, and keeps the call's Summary. A
// failed call's error comes back as a *CallError carrying that Summary.
func Middleware(ro *rollout.Rollout, tel *telemetry.Telemetry) func(LLMService) LLMService {
	return func(next LLMService) LLMService {
		return LLMFunc(func(ctx context.Context, call Call, req Request) (Response, error) {
			a := ro.Assign(ctx, call.RunID)
			ctx = WithCohort(ctx, a.Cohort)
			ctx, span := tel.StartCall(ctx, telemetry.CallInfo{
				RunID: call.RunID, PhaseID: call.PhaseID, Role: call.Role,
				Provider: call.Provider, Model: call.Model, Flag: a,
			})
			ctx, rec := withRecorder(ctx, a.Cohort)
			resp, err := next.Complete(ctx, call, req)
			if err == nil {
				tel.EndCall(ctx, span, "", nil)
				return resp, nil
			}
			s := rec.summary()
			if s.Decision == retry.Success || s.Class == "" {
				// The last attempt's response arrived, then broke (a stream
				// cut) or was never sent.
				s.Class = retry.Connection
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					s.Class = retry.Canceled
				}
				s.Decision, s.Reason = retry.GiveUp, string(s.Class)+": the call failed after its last attempt's response began"
			}
			tel.EndCall(ctx, span, s.Class, err)
			return resp, &CallError{Err: err, Summary: s}
		})
	}
}
