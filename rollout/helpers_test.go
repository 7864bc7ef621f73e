package rollout_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	oftelemetry "github.com/open-feature/go-sdk/openfeature/telemetry"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/rollout"
)

// runIDs returns n distinct run ids shaped like autopack's.
func runIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("fileorg-phase%d-20251203-%06d", i%7, i)
	}
	return ids
}

// newRollout starts a Rollout over provider and shuts it down when the test ends.
func newRollout(t *testing.T, provider openfeature.FeatureProvider, getenv func(string) string) *rollout.Rollout {
	t.Helper()
	r, err := rollout.New(t.Context(), provider, getenv)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r
}

// assignAll assigns every id, requires that no evaluation failed, and returns which ids are in Treatment.
func assignAll(t *testing.T, r *rollout.Rollout, ids []string) map[string]bool {
	t.Helper()
	on := make(map[string]bool, len(ids))
	for _, id := range ids {
		a := r.Assign(t.Context(), id, nil)
		require.NoError(t, a.Err, "run %s", id)
		on[id] = a.Cohort == rollout.Treatment
	}
	return on
}

// count returns how many ids are on.
func count(on map[string]bool) int {
	n := 0
	for _, v := range on {
		if v {
			n++
		}
	}
	return n
}

// requireSubset requires that every id on in small is on in big.
func requireSubset(t *testing.T, small, big map[string]bool, msg string) {
	t.Helper()
	for id, v := range small {
		if v && !big[id] {
			t.Fatalf("%s: run %s was on and is now off", msg, id)
		}
	}
}

// fakeEnv is an environment holding only EnvVar, safe for concurrent use.
type fakeEnv struct {
	mu    sync.Mutex
	value string
}

func (e *fakeEnv) set(v string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.value = v
}

func (e *fakeEnv) getenv(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if name != rollout.EnvVar {
		return ""
	}
	return e.value
}

// unset is a getenv for an environment without EnvVar.
func unset(string) string { return "" }

// withoutEvent returns a without its Event, for comparing the rest.
func withoutEvent(a rollout.Assignment) rollout.Assignment {
	a.Event = oftelemetry.EvaluationEvent{}
	return a
}
