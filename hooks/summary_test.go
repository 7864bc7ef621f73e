package hooks_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
)

// SummaryOf reads the call's summary while the call is still running, as
// a proxy does before it writes its response.
func TestSummaryOfDuringTheCall(t *testing.T) {
	s := newStack(t, 100)
	_, ok := hooks.SummaryOf(context.Background())
	assert.False(t, ok, "outside a call")

	var during hooks.Summary
	svc := s.wrap(hooks.LLMFunc(func(ctx context.Context, _ hooks.Call, _ hooks.Request) (hooks.Response, error) {
		got, ok := hooks.SummaryOf(ctx)
		require.True(t, ok)
		assert.Equal(t, hooks.Summary{Cohort: rollout.Treatment}, got, "no event yet")
		hooks.Observe(nil).Observe(ctx, retry.Event{Sent: true, Decision: retry.Decision{
			Assessment: retry.Assessment{Class: retry.RateLimited, Status: 429},
			Attempt:    2, Action: retry.GiveUp, Reason: "rate_limited (HTTP 429): spent",
		}})
		during, _ = hooks.SummaryOf(ctx)
		return hooks.Response{}, nil
	}))
	_, err := svc.Complete(context.Background(), testCall, hooks.Request{})
	require.NoError(t, err)
	assert.Equal(t, hooks.Summary{
		Cohort: rollout.Treatment, Attempts: 2, Class: retry.RateLimited, Status: 429,
		Decision: retry.GiveUp, Reason: "rate_limited (HTTP 429): spent",
	}, during)
}
