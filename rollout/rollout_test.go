package rollout_test

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/memprovider"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/rollout"
)

// lifecycleProvider is a PercentProvider with an Init that can fail and a Shutdown that is counted.
type lifecycleProvider struct {
	*rollout.PercentProvider
	initErr   error
	inits     atomic.Int32
	shutdowns atomic.Int32
}

func (p *lifecycleProvider) Init(openfeature.EvaluationContext) error {
	p.inits.Add(1)
	return p.initErr
}

func (p *lifecycleProvider) Shutdown() { p.shutdowns.Add(1) }

func TestTwoRolloutsDoNotInterfere(t *testing.T) {
	ids := runIDs(1000)
	p1, p2 := rollout.NewPercentProvider(true, 100), rollout.NewPercentProvider(true, 0)
	env1, env2 := &fakeEnv{}, &fakeEnv{}
	r1, err := rollout.New(t.Context(), p1, env1.getenv)
	require.NoError(t, err)
	r2 := newRollout(t, p2, env2.getenv)

	assert.Equal(t, len(ids), count(assignAll(t, r1, ids)))
	assert.Zero(t, count(assignAll(t, r2, ids)))

	p1.Set(true, 10)
	env2.set("true")
	on1 := assignAll(t, r1, ids)
	for id, on := range on1 {
		require.Equal(t, rollout.Bucket(id) < 10, on, id)
	}
	assert.Equal(t, len(ids), count(assignAll(t, r2, ids)), "r2 forced on by its own env")
	assert.Equal(t, "dynretry-percent", r1.Assign(t.Context(), "run-1", nil).Provider, "r1 does not see r2's env")

	require.NoError(t, r1.Shutdown(t.Context()))
	a := r1.Assign(t.Context(), "run-1", nil)
	assert.Equal(t, rollout.Control, a.Cohort)
	assert.ErrorIs(t, a.Err, rollout.ErrShutdown)
	assert.Equal(t, "ERROR", a.Reason)
	assert.Equal(t, rollout.Treatment, r2.Assign(t.Context(), "run-1", nil).Cohort, "r2 still works after r1's Shutdown")
}

func TestAssignWithoutRunID(t *testing.T) {
	r := newRollout(t, rollout.NewPercentProvider(true, 100), unset)
	a := r.Assign(t.Context(), "", nil)
	assert.Equal(t, rollout.Control, a.Cohort)
	assert.Equal(t, "ERROR", a.Reason)
	assert.Equal(t, "dynretry-percent", a.Provider)
	assert.Empty(t, a.Variant)
	require.Error(t, a.Err)
	assert.Contains(t, a.Err.Error(), string(openfeature.TargetingKeyMissingCode))
}

// TestAssignFlagUnknownEverywhere: a provider that does not know FlagKey, and EnvVar unset.
func TestAssignFlagUnknownEverywhere(t *testing.T) {
	r := newRollout(t, memprovider.NewInMemoryProvider(nil), unset)
	a := r.Assign(t.Context(), "run-1", nil)
	assert.Equal(t, rollout.Control, a.Cohort)
	assert.Equal(t, "ERROR", a.Reason)
	assert.Empty(t, a.Provider)
	require.Error(t, a.Err)
	assert.Contains(t, a.Err.Error(), string(openfeature.FlagNotFoundCode))
}

// TestAssignOtherProvider: any provider serving FlagKey can decide; Assignment names it.
func TestAssignOtherProvider(t *testing.T) {
	mp := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		rollout.FlagKey: {
			Key:            rollout.FlagKey,
			State:          memprovider.Enabled,
			DefaultVariant: "yes",
			Variants:       map[string]any{"yes": true, "no": false},
		},
	})
	r := newRollout(t, mp, unset)
	a := r.Assign(t.Context(), "run-1", nil)
	assert.Equal(t, rollout.Assignment{
		Cohort: rollout.Treatment, FlagKey: rollout.FlagKey, Variant: "yes", Reason: "STATIC", Provider: "InMemoryProvider",
	}, withoutEvent(a))
}

func TestNewErrors(t *testing.T) {
	_, err := rollout.New(t.Context(), nil, unset)
	require.Error(t, err)

	p := &lifecycleProvider{PercentProvider: rollout.NewPercentProvider(true, 10), initErr: errors.New("flag source unreachable")}
	_, err = rollout.New(t.Context(), p, unset)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "flag source unreachable")
	assert.Equal(t, int32(1), p.shutdowns.Load(), "a failed New shuts the provider down")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = rollout.New(ctx, rollout.NewPercentProvider(true, 10), unset)
	require.ErrorIs(t, err, context.Canceled)
}

func TestShutdown(t *testing.T) {
	p := &lifecycleProvider{PercentProvider: rollout.NewPercentProvider(true, 100)}
	r, err := rollout.New(t.Context(), p, unset)
	require.NoError(t, err)
	assert.Equal(t, int32(1), p.inits.Load())
	assert.Equal(t, rollout.Treatment, r.Assign(t.Context(), "run-1", nil).Cohort)

	require.NoError(t, r.Shutdown(t.Context()))
	assert.Equal(t, int32(1), p.shutdowns.Load())
	require.NoError(t, r.Shutdown(t.Context()), "a second Shutdown")
	assert.Equal(t, int32(1), p.shutdowns.Load(), "the provider is shut down once")
	assert.ErrorIs(t, r.Assign(t.Context(), "run-1", nil).Err, rollout.ErrShutdown)
}

// TestAssignEvent: the evaluation is recorded as OpenFeature's telemetry
// helper builds it, with the deciding provider and the run id as
// feature_flag.context.id.
func TestAssignEvent(t *testing.T) {
	env := &fakeEnv{}
	r := newRollout(t, rollout.NewPercentProvider(true, 50), env.getenv)
	a := r.Assign(t.Context(), "lovable-p5-core", nil)
	assert.Equal(t, "feature_flag.evaluation", a.Event.Name)
	assert.Equal(t, map[string]any{
		"feature_flag.key": rollout.FlagKey, "feature_flag.provider.name": "dynretry-percent",
		"feature_flag.result.variant": "on", "feature_flag.result.reason": "targeting_match",
		"feature_flag.context.id": "lovable-p5-core",
	}, a.Event.Attributes)

	env.set("false")
	a = r.Assign(t.Context(), "lovable-p5-core", nil)
	assert.Equal(t, "dynretry-env", a.Event.Attributes["feature_flag.provider.name"])
	assert.Equal(t, "env-off", a.Event.Attributes["feature_flag.result.variant"])
	assert.Equal(t, "static", a.Event.Attributes["feature_flag.result.reason"])

	env.set("maybe")
	a = r.Assign(t.Context(), "lovable-p5-core", nil)
	assert.Equal(t, "error", a.Event.Attributes["feature_flag.result.reason"])
	assert.Equal(t, "parse_error", a.Event.Attributes["error.type"])
	assert.Contains(t, a.Event.Attributes["error.message"], `"maybe" is not a boolean`)

	require.NoError(t, r.Shutdown(t.Context()))
	a = r.Assign(t.Context(), "lovable-p5-core", nil)
	assert.Equal(t, "general", a.Event.Attributes["error.type"])
	assert.Equal(t, "lovable-p5-core", a.Event.Attributes["feature_flag.context.id"])
	assert.NotContains(t, a.Event.Attributes, "feature_flag.provider.name", "no provider answered")
}

// TestAssignAttributes: the call's attributes reach the provider in the
// evaluation context, beside the run id as targeting key.
func TestAssignAttributes(t *testing.T) {
	eval := func(_ memprovider.InMemoryFlag, ec openfeature.FlattenedContext) (any, openfeature.ProviderResolutionDetail) {
		if size, _ := ec["codebase_size"].(int); size > 100_000 {
			return false, openfeature.ProviderResolutionDetail{Variant: "off", Reason: openfeature.TargetingMatchReason}
		}
		return true, openfeature.ProviderResolutionDetail{Variant: "on", Reason: openfeature.TargetingMatchReason}
	}
	mp := memprovider.NewInMemoryProvider(map[string]memprovider.InMemoryFlag{
		rollout.FlagKey: {
			Key: rollout.FlagKey, State: memprovider.Enabled, DefaultVariant: "on",
			Variants: map[string]any{"on": true, "off": false}, ContextEvaluator: &eval,
		},
	})
	r := newRollout(t, mp, unset)
	attrs := map[string]any{"codebase_size": 250_000, "role": "builder"}
	assert.Equal(t, rollout.Control, r.Assign(t.Context(), "run-1", attrs).Cohort)
	assert.Equal(t, map[string]any{"codebase_size": 250_000, "role": "builder"}, attrs, "not modified")
	assert.Equal(t, rollout.Treatment, r.Assign(t.Context(), "run-1", map[string]any{"codebase_size": 20_000}).Cohort)
	assert.Equal(t, rollout.Treatment, r.Assign(t.Context(), "run-1", nil).Cohort)
}

// TestRolloutPercent: what the rollout gauge reports.
func TestRolloutPercent(t *testing.T) {
	env := &fakeEnv{}
	p := rollout.NewPercentProvider(true, 10)
	r := newRollout(t, p, env.getenv)
	assert.Equal(t, 10.0, r.Percent())
	p.Set(true, 50)
	assert.Equal(t, 50.0, r.Percent())
	p.Set(false, 50)
	assert.Equal(t, 0.0, r.Percent(), "disabled")
	p.Set(true, 50)
	env.set("on")
	assert.Equal(t, 100.0, r.Percent())
	env.set("off")
	assert.Equal(t, 0.0, r.Percent())
	env.set("maybe")
	assert.True(t, math.IsNaN(r.Percent()), "an invalid switch: unknown")
	env.set("")
	assert.Equal(t, 50.0, r.Percent())

	other := newRollout(t, memprovider.NewInMemoryProvider(nil), unset)
	assert.True(t, math.IsNaN(other.Percent()), "another provider: unknown")
}
