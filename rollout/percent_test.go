package rollout_test

import (
	"context"
	"math"
	"sync"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/rollout"
)

// The bucket of a run id is a contract: these values must never change, or runs change cohort when the
// code is upgraded mid-rollout.
func TestBucketGolden(t *testing.T) {
	for id, want := range map[string]float64{
		"lovable-p33-core":          1.5215294988816908,
		"lovable-p5-core":           12.676236498072601,
		"run-1":                     31.55577362810541,
		"lovable-p6-core":           60.37201832199091,
		"lovable-p1-core-precision": 98.78611913702125,
		"":                          74.6148029198642,
	} {
		assert.Equal(t, want, rollout.Bucket(id), "Bucket(%q)", id)
	}
}

func TestBucketRange(t *testing.T) {
	for _, id := range runIDs(10000) {
		b := rollout.Bucket(id)
		require.True(t, b >= 0 && b < 100, "Bucket(%q) = %v, want [0, 100)", id, b)
	}
}

// TestPercentProviderThroughClient registers a PercentProvider alone under a domain and checks each
// documented result through a real OpenFeature client.
func TestPercentProviderThroughClient(t *testing.T) {
	domain := "rollout-test/" + t.Name()
	p := rollout.NewPercentProvider(true, 100)
	require.NoError(t, openfeature.SetNamedProviderAndWait(domain, p))
	t.Cleanup(func() { require.NoError(t, openfeature.SetNamedProvider(domain, openfeature.NoopProvider{})) })
	c := openfeature.NewClient(domain)
	ctx := t.Context()
	run := openfeature.NewEvaluationContext("lovable-p5-core", nil)

	d, err := c.BooleanValueDetails(ctx, rollout.FlagKey, false, run)
	require.NoError(t, err)
	assert.True(t, d.Value)
	assert.Equal(t, "on", d.Variant)
	assert.Equal(t, openfeature.TargetingMatchReason, d.Reason)
	assert.Equal(t, "dynretry-percent", openfeature.NamedProviderMetadata(domain).Name)
	pct, err := d.FlagMetadata.GetFloat("dynretry.rollout.percent")
	require.NoError(t, err)
	assert.Equal(t, 100.0, pct)
	bucket, err := d.FlagMetadata.GetFloat("dynretry.rollout.bucket")
	require.NoError(t, err)
	assert.Equal(t, rollout.Bucket("lovable-p5-core"), bucket)

	p.Set(true, 10) // lovable-p5-core is at 12.68
	d, err = c.BooleanValueDetails(ctx, rollout.FlagKey, true, run)
	require.NoError(t, err)
	assert.False(t, d.Value)
	assert.Equal(t, "off", d.Variant)
	assert.Equal(t, openfeature.TargetingMatchReason, d.Reason)

	t.Run("missing targeting key", func(t *testing.T) {
		d, err := c.BooleanValueDetails(ctx, rollout.FlagKey, true, openfeature.NewTargetlessEvaluationContext(nil))
		require.Error(t, err)
		assert.True(t, d.Value, "the default value")
		assert.Equal(t, openfeature.TargetingKeyMissingCode, d.ErrorCode)
		assert.Equal(t, openfeature.ErrorReason, d.Reason)
	})
	t.Run("other flag", func(t *testing.T) {
		d, err := c.BooleanValueDetails(ctx, "some-other-flag", false, run)
		require.Error(t, err)
		assert.Equal(t, openfeature.FlagNotFoundCode, d.ErrorCode)
	})
	t.Run("not a boolean", func(t *testing.T) {
		d, err := c.StringValueDetails(ctx, rollout.FlagKey, "x", run)
		require.Error(t, err)
		assert.Equal(t, openfeature.TypeMismatchCode, d.ErrorCode)
		_, err = c.IntValueDetails(ctx, "some-other-flag", 1, run)
		require.Error(t, err)
	})
	t.Run("disabled", func(t *testing.T) {
		p.Set(false, 100)
		t.Cleanup(func() { p.Set(true, 10) })
		for _, ec := range []openfeature.EvaluationContext{run, openfeature.NewTargetlessEvaluationContext(nil)} {
			d, err := c.BooleanValueDetails(ctx, rollout.FlagKey, true, ec)
			require.NoError(t, err)
			assert.False(t, d.Value)
			assert.Equal(t, "off", d.Variant)
			assert.Equal(t, openfeature.DisabledReason, d.Reason)
		}
	})
}

func TestPercentProviderShares(t *testing.T) {
	ids := runIDs(10000)
	for _, tc := range []struct {
		percent  float64
		min, max int
	}{
		{0, 0, 0},
		{10, 900, 1100},
		{50, 4800, 5200},
		{100, 10000, 10000},
	} {
		r := newRollout(t, rollout.NewPercentProvider(true, tc.percent), unset)
		n := count(assignAll(t, r, ids))
		t.Logf("%v%%: %d of %d runs on", tc.percent, n, len(ids))
		assert.True(t, n >= tc.min && n <= tc.max, "%v%%: got %d runs on, want %d..%d", tc.percent, n, tc.min, tc.max)
	}
}

func TestPercentProviderAssignment(t *testing.T) {
	r := newRollout(t, rollout.NewPercentProvider(true, 50), unset)
	for id, want := range map[string]rollout.Assignment{
		"lovable-p5-core": {Cohort: rollout.Treatment, FlagKey: rollout.FlagKey, Variant: "on", Reason: "TARGETING_MATCH", Provider: "dynretry-percent"},
		"lovable-p6-core": {Cohort: rollout.Control, FlagKey: rollout.FlagKey, Variant: "off", Reason: "TARGETING_MATCH", Provider: "dynretry-percent"},
	} {
		assert.Equal(t, want, withoutEvent(r.Assign(t.Context(), id, nil)), id)
	}
}

func TestPercentProviderSticky(t *testing.T) {
	ids := runIDs(10000)
	r := newRollout(t, rollout.NewPercentProvider(true, 10), unset)
	first := assignAll(t, r, ids)
	for range 2 {
		assert.Equal(t, first, assignAll(t, r, ids), "same Rollout, again")
	}
	other := newRollout(t, rollout.NewPercentProvider(true, 10), unset)
	assert.Equal(t, first, assignAll(t, other, ids), "a new provider and Rollout")
	for id, on := range first {
		assert.Equal(t, rollout.Bucket(id) < 10, on, id)
	}
}

func TestPercentProviderMonotone(t *testing.T) {
	ids := runIDs(10000)
	at := func(enabled bool, percent float64) map[string]bool {
		return assignAll(t, newRollout(t, rollout.NewPercentProvider(enabled, percent), unset), ids)
	}
	on10, on50, on100 := at(true, 10), at(true, 50), at(true, 100)
	requireSubset(t, on10, on50, "10% → 50%")
	requireSubset(t, on50, on100, "50% → 100%")
	assert.Equal(t, len(ids), count(on100), "100%")
	assert.Zero(t, count(at(true, 0)), "0%")
	assert.Zero(t, count(at(false, 100)), "disabled at 100%")
	assert.Zero(t, count(at(false, 10)), "disabled at 10%")
}

// TestPercentProviderSetAppliesToNextEvaluation walks the rollout plan on one Rollout: every Set shows in
// the very next evaluations.
func TestPercentProviderSetAppliesToNextEvaluation(t *testing.T) {
	ids := runIDs(10000)
	p := rollout.NewPercentProvider(true, 0)
	r := newRollout(t, p, unset)
	var prev map[string]bool
	for _, stage := range []struct {
		enabled bool
		percent float64
	}{{true, 0}, {true, 10}, {true, 50}, {true, 100}, {false, 100}, {true, 10}, {true, 0}} {
		p.Set(stage.enabled, stage.percent)
		got := assignAll(t, r, ids)
		for id, on := range got {
			require.Equal(t, stage.enabled && rollout.Bucket(id) < stage.percent, on, "%+v: %s", stage, id)
		}
		if prev != nil && stage.percent >= 10 && stage.enabled {
			t.Logf("%+v: %d on", stage, count(got))
		}
		prev = got
	}
}

func TestPercentProviderClamps(t *testing.T) {
	ids := runIDs(1000)
	for _, tc := range []struct {
		percent float64
		want    int
	}{{150, 1000}, {math.Inf(1), 1000}, {-5, 0}, {math.Inf(-1), 0}, {math.NaN(), 0}} {
		r := newRollout(t, rollout.NewPercentProvider(true, tc.percent), unset)
		assert.Equal(t, tc.want, count(assignAll(t, r, ids)), "percent %v", tc.percent)
	}
}

// TestAssignConcurrent runs Assign on many goroutines while Set moves the percentage (for -race).
func TestAssignConcurrent(t *testing.T) {
	ids := runIDs(2000)
	p := rollout.NewPercentProvider(true, 10)
	r := newRollout(t, p, unset)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i, id := range ids {
				if i%4 != g {
					continue
				}
				a := r.Assign(context.Background(), id, nil)
				if a.Err != nil || (a.Cohort == rollout.Treatment) != (a.Variant == "on") {
					t.Errorf("run %s: %+v", id, a)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			p.Set(i%3 != 0, float64(i%101))
		}
	})
	wg.Wait()
}
