package hooks

import (
	"context"
	"errors"
	"strconv"

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
			switch ended := ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded); {
			case s.Decision == retry.GiveUp:
				// The engine's last word (or, for control, the SDK's rule) stands.
			case ended:
				s.Class, s.Decision, s.Reason = retry.Canceled, retry.GiveUp, "canceled: the caller's context ended"
				if s.Attempts > 0 {
					s.Reason += " after attempt " + strconv.Itoa(s.Attempts)
				}
			case s.Decision == retry.Success:
				s.Class, s.Decision = retry.Connection, retry.GiveUp
				s.Reason = "connection: the response broke after it began (a cut stream)"
			case s.Class == "":
				s.Class, s.Decision = retry.Connection, retry.GiveUp
				s.Reason = "connection: the call failed before any attempt was observed"
			default:
				s.Decision = retry.GiveUp
				s.Reason = string(s.Class) + ": the call failed after its last attempt"
			}
			tel.EndCall(ctx, span, s.Class, err)
			return resp, &CallError{Err: err, Summary: s}
		})
	}
}
