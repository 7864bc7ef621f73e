package rollout_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/rollout"
)

// counting serves FlagKey as on says and counts its evaluations. It emits
// no events: it cannot tell of a change.
type counting struct {
	openfeature.NoopProvider
	n  atomic.Int64
	on atomic.Bool
}

func (p *counting) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: "counting"} }

func (p *counting) BooleanEvaluation(context.Context, string, bool, openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	p.n.Add(1)
	return openfeature.BoolResolutionDetail{Value: p.on.Load(), ProviderResolutionDetail: openfeature.ProviderResolutionDetail{Reason: openfeature.StaticReason, Variant: "v"}}
}

// eventing is counting that emits events.
type eventing struct {
	*counting
	events chan openfeature.Event
}

func (p eventing) EventChannel() <-chan openfeature.Event { return p.events }

// A run's assignment is kept for its later calls with the same attributes
// until the provider emits an event; other runs and attributes are
// evaluated.
func TestAssignmentsAreSticky(t *testing.T) {
	p := eventing{counting: new(counting), events: make(chan openfeature.Event, 1)}
	r := newRollout(t, p, unset)
	attrs := map[string]any{"model": "gpt-4o-mini", "codebase_size": 1200, "big": false, "ratio": 0.5, "n": int64(3)}
	first := r.Assign(t.Context(), "run-1", attrs)
	require.NoError(t, first.Err)
	assert.Equal(t, rollout.Control, first.Cohort)
	for range 3 {
		assert.Equal(t, first, r.Assign(t.Context(), "run-1", map[string]any{"model": "gpt-4o-mini", "codebase_size": 1200, "big": false, "ratio": 0.5, "n": int64(3)}))
	}
	assert.Equal(t, int64(1), p.n.Load(), "evaluated once")
	r.Assign(t.Context(), "run-1", map[string]any{"model": "gpt-4o"})
	r.Assign(t.Context(), "run-2", attrs)
	assert.Equal(t, int64(3), p.n.Load(), "other attributes, another run: evaluated")

	// The provider changes and says so: the next call is evaluated again.
	p.on.Store(true)
	assert.Equal(t, rollout.Control, r.Assign(t.Context(), "run-1", attrs).Cohort, "no event yet: kept")
	p.events <- openfeature.Event{ProviderName: "counting", EventType: openfeature.ProviderConfigChange}
	require.Eventually(t, func() bool { return r.Assign(t.Context(), "run-1", attrs).Cohort == rollout.Treatment },
		5*time.Second, 5*time.Millisecond, "the event forgets the assignments kept")
}

// A value that == cannot compare is evaluated every time.
func TestAssignUncomparableAttributes(t *testing.T) {
	p := eventing{counting: new(counting), events: make(chan openfeature.Event, 1)}
	r := newRollout(t, p, unset)
	attrs := map[string]any{"files": []string{"a.go"}}
	r.Assign(t.Context(), "run-1", attrs)
	r.Assign(t.Context(), "run-1", attrs)
	assert.Equal(t, int64(2), p.n.Load())
}

// A provider that emits no events is evaluated at every call: nothing
// would tell that its answers changed.
func TestAssignWithoutEvents(t *testing.T) {
	p := new(counting)
	r := newRollout(t, p, unset)
	r.Assign(t.Context(), "run-1", nil)
	p.on.Store(true)
	assert.Equal(t, rollout.Treatment, r.Assign(t.Context(), "run-1", nil).Cohort)
	assert.Equal(t, int64(2), p.n.Load())
}

// PercentProvider.Set and EnvVar apply to the next call without an event.
func TestStickyFollowsSetAndEnv(t *testing.T) {
	p := rollout.NewPercentProvider(true, 0)
	var env atomic.Value
	env.Store("")
	r := newRollout(t, p, func(string) string { return env.Load().(string) })
	assert.Equal(t, rollout.Control, r.Assign(t.Context(), "run-1", nil).Cohort)
	p.Set(true, 100)
	assert.Equal(t, rollout.Treatment, r.Assign(t.Context(), "run-1", nil).Cohort, "Set applies at once")
	env.Store("false")
	a := r.Assign(t.Context(), "run-1", nil)
	assert.Equal(t, rollout.Control, a.Cohort, "the switch applies at once")
	assert.Equal(t, rollout.EnvProviderName, a.Provider)
	env.Store("")
	assert.Equal(t, rollout.Treatment, r.Assign(t.Context(), "run-1", nil).Cohort, "and when it is unset again")
	env.Store("maybe")
	a = r.Assign(t.Context(), "run-1", nil)
	require.Error(t, a.Err, "an invalid value is an error at once")
	assert.Equal(t, rollout.Control, a.Cohort)
	env.Store("")
	assert.Equal(t, rollout.Treatment, r.Assign(t.Context(), "run-1", nil).Cohort)
}

// Failed evaluations are not kept: the next call tries again.
func TestStickyKeepsNoError(t *testing.T) {
	p := rollout.NewPercentProvider(true, 100)
	r := newRollout(t, p, unset)
	require.Error(t, r.Assign(t.Context(), "", nil).Err, "no run id")
	require.NoError(t, r.Shutdown(context.Background()))
	assert.ErrorIs(t, r.Assign(t.Context(), "run-1", nil).Err, rollout.ErrShutdown, "after Shutdown, whatever was kept")
}
