package rollout_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	flagd "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/rollout"
)

// The flag files in testdata define FlagKey with a "fractional" rule and no explicit bucketing value, so
// flagd buckets by murmur3(flag key + targeting key). "on" is listed first, so raising its weight only
// moves runs from off to on.

// newFlagd returns a flagd provider resolving in process from the flag file at path, which it watches.
func newFlagd(t *testing.T, path string) *flagd.Provider {
	t.Helper()
	p, err := flagd.NewProvider(flagd.WithInProcessResolver(), flagd.WithOfflineFilePath(path))
	require.NoError(t, err)
	return p
}

// replaceFile replaces dst with the contents of src the way a deployment should: write a temporary file
// in the same directory, then rename it over dst, so flagd never reads a half-written file.
func replaceFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	tmp := dst + ".tmp"
	require.NoError(t, os.WriteFile(tmp, data, 0o644))
	require.NoError(t, os.Rename(tmp, dst))
}

// assignFlagd is assignAll, also requiring that flagd decided each run.
func assignFlagd(t *testing.T, r *rollout.Rollout, ids []string) map[string]bool {
	t.Helper()
	on := make(map[string]bool, len(ids))
	for _, id := range ids {
		a := r.Assign(t.Context(), id, nil)
		require.NoError(t, a.Err, "run %s", id)
		require.Equal(t, "flagd", a.Provider, "run %s", id)
		require.Equal(t, "TARGETING_MATCH", a.Reason, "run %s", id)
		on[id] = a.Cohort == rollout.Treatment
		want := "off"
		if on[id] {
			want = "on"
		}
		require.Equal(t, want, a.Variant, "run %s", id)
	}
	return on
}

// pick returns the part of on about ids.
func pick(on map[string]bool, ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = on[id]
	}
	return m
}

// waitForReload polls ids until their assignment differs from before, that is until flagd has loaded the
// rewritten file. The store swaps all flags at once, so every evaluation after that sees the new file.
func waitForReload(t *testing.T, r *rollout.Rollout, ids []string, before map[string]bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 10*time.Second {
		for _, id := range ids {
			if a := r.Assign(t.Context(), id, nil); a.Err == nil && (a.Cohort == rollout.Treatment) != before[id] {
				return time.Since(start)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("flagd did not reload the flag file within 10s")
	return 0
}

func TestFlagdFractionalRollout(t *testing.T) {
	ids := runIDs(10000)
	path := filepath.Join(t.TempDir(), "flags.json")
	replaceFile(t, "testdata/flags-10.json", path)
	env := &fakeEnv{}
	r := newRollout(t, newFlagd(t, path), env.getenv)

	on10 := assignFlagd(t, r, ids)
	n10 := count(on10)
	t.Logf("flagd 10%%: %d of %d runs on", n10, len(ids))
	assert.True(t, n10 >= 900 && n10 <= 1100, "10%%: got %d runs on, want 900..1100", n10)

	// Sticky: the same answers again, and from a second flagd provider on the same definition.
	assert.Equal(t, on10, assignFlagd(t, r, ids), "the same Rollout, again")
	other := newRollout(t, newFlagd(t, filepath.Join("testdata", "flags-10.json")), unset)
	assert.Equal(t, pick(on10, ids[:2000]), assignFlagd(t, other, ids[:2000]), "a second flagd provider")

	// The environment variable wins over flagd both ways.
	sample := ids[:500]
	for value, want := range map[string]rollout.Cohort{"false": rollout.Control, "on": rollout.Treatment} {
		env.set(value)
		for _, id := range sample {
			a := r.Assign(t.Context(), id, nil)
			require.Equal(t, want, a.Cohort, "%s=%s, run %s", rollout.EnvVar, value, id)
			require.Equal(t, "dynretry-env", a.Provider)
		}
	}
	env.set("")

	// 10% → 50% by rewriting the watched file: no restart.
	replaceFile(t, "testdata/flags-50.json", path)
	t.Logf("flagd reloaded the 50%% file after %v", waitForReload(t, r, ids[:1000], on10))
	on50 := assignFlagd(t, r, ids)
	n50 := count(on50)
	t.Logf("flagd 50%%: %d of %d runs on", n50, len(ids))
	assert.True(t, n50 >= 4800 && n50 <= 5200, "50%%: got %d runs on, want 4800..5200", n50)
	requireSubset(t, on10, on50, "flagd 10% → 50%")
	fresh := newRollout(t, newFlagd(t, filepath.Join("testdata", "flags-50.json")), unset)
	assert.Equal(t, pick(on50, ids[:2000]), assignFlagd(t, fresh, ids[:2000]), "a new provider on the 50% file agrees")

	// The way back: 50% → 0%.
	replaceFile(t, "testdata/flags-0.json", path)
	t.Logf("flagd reloaded the 0%% file after %v", waitForReload(t, r, ids[:1000], on50))
	assert.Zero(t, count(assignFlagd(t, r, ids)), "0%")
}

// TestFlagdTargetsCallAttributes: a flagd rule on a numeric attribute of
// the call (the plan's fallback, "disable for large codebases"): off above
// 100,000, a 50% rollout below.
func TestFlagdTargetsCallAttributes(t *testing.T) {
	ids := runIDs(2000)
	path := filepath.Join(t.TempDir(), "flags.json")
	replaceFile(t, "testdata/flags-large-off.json", path)
	r := newRollout(t, newFlagd(t, path), unset)
	call := func(id string, size any) hooks.Call {
		return hooks.Call{RunID: id, PhaseID: "phase-1", Role: "builder", Provider: "openai", Model: "gpt-4o",
			Attributes: map[string]any{"codebase_size": size}}
	}
	small, large := 0, 0
	for _, id := range ids {
		c := call(id, 20_000)
		a := r.Assign(t.Context(), c.RunID, c.EvaluationContext())
		require.NoError(t, a.Err)
		require.Equal(t, "flagd", a.Provider)
		if a.Cohort == rollout.Treatment {
			small++
		}
		c = call(id, 250_000)
		a = r.Assign(t.Context(), c.RunID, c.EvaluationContext())
		require.NoError(t, a.Err)
		require.Equal(t, "TARGETING_MATCH", a.Reason)
		require.Equal(t, "off", a.Variant, "run %s, a large codebase", id)
		if a.Cohort == rollout.Treatment {
			large++
		}
	}
	t.Logf("small codebases: %d of %d runs on; large: %d", small, len(ids), large)
	assert.Zero(t, large, "disabled for large codebases")
	assert.True(t, small >= 900 && small <= 1100, "small codebases: %d of %d on, want about half", small, len(ids))
	// Just above the bound, as a float (as JSON decodes it): the rule compares numbers.
	assert.Equal(t, rollout.Control, r.Assign(t.Context(), ids[0], call(ids[0], 100_001.0).EvaluationContext()).Cohort)
}
