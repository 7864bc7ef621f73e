package rollout_test

import (
	"context"
	"errors"
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
	assert.Equal(t, "dynretry-percent", r1.Assign(t.Context(), "run-1").Provider, "r1 does not see r2's env")

	require.NoError(t, r1.Shutdown(t.Context()))
	a := r1.Assign(t.Context(), "run-1")
	assert.Equal(t, rollout.Control, a.Cohort)
	assert.ErrorIs(t, a.Err, rollout.ErrShutdown)
	assert.Equal(t, "ERROR", a.Reason)
	assert.Equal(t, rollout.Treatment, r2.Assign(t.Context(), "run-1").Cohort, "r2 still works after r1's Shutdown")
}

func TestAssignWithoutRunID(t *testing.T) {
	r := newRollout(t, rollout.NewPercentProvider(true, 100), unset)
	a := r.Assign(t.Context(), "")
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
	a := r.Assign(t.Context(), "run-1")
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
	a := r.Assign(t.Context(), "run-1")
	assert.Equal(t, rollout.Assignment{
		Cohort: rollout.Treatment, FlagKey: rollout.FlagKey, Variant: "yes", Reason: "STATIC", Provider: "InMemoryProvider",
	}, a)
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
	assert.Equal(t, rollout.Treatment, r.Assign(t.Context(), "run-1").Cohort)

	require.NoError(t, r.Shutdown(t.Context()))
	assert.Equal(t, int32(1), p.shutdowns.Load())
	require.NoError(t, r.Shutdown(t.Context()), "a second Shutdown")
	assert.Equal(t, int32(1), p.shutdowns.Load(), "the provider is shut down once")
	assert.ErrorIs(t, r.Assign(t.Context(), "run-1").Err, rollout.ErrShutdown)
}
