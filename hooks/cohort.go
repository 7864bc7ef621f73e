package hooks

import (
	"context"

	"github.com/autopack/dynretry/rollout"
)

type cohortKey struct{}

// WithCohort returns ctx marked with the call's cohort; Transport routes by it.
func WithCohort(ctx context.Context, c rollout.Cohort) context.Context {
	return context.WithValue(ctx, cohortKey{}, c)
}

// CohortOf returns the cohort ctx is marked with, or Control when none.
func CohortOf(ctx context.Context) rollout.Cohort {
	if c, ok := ctx.Value(cohortKey{}).(rollout.Cohort); ok {
		return c
	}
	return rollout.Control
}

// SDKRetriesOff reports whether the SDK's own retries must be off for the
// call in ctx: true for treatment calls, which dynretry retries. The
// runner turns them off per request, e.g. with openai-go's
// option.WithMaxRetries(0), so that no call is retried by two layers; a
// control call keeps the SDK's behaviour untouched.
func SDKRetriesOff(ctx context.Context) bool { return CohortOf(ctx) == rollout.Treatment }
