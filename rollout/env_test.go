package rollout_test

import (
	"context"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/rollout"
)

var (
	envOnSpellings  = []string{"true", "TRUE", "True", "1", "yes", "YES", "Yes", "on", "ON", "On", " true ", "\tyes\n"}
	envOffSpellings = []string{"false", "FALSE", "False", "0", "no", "NO", "No", "off", "OFF", "Off", " false ", "\toff\n"}
)

// TestEnvOverrideWins: every accepted spelling decides every run, both ways, over a PercentProvider at 0%
// and at 100%, and even without a run id.
func TestEnvOverrideWins(t *testing.T) {
	ids := append(runIDs(200), "")
	for _, percent := range []float64{0, 100} {
		for _, tc := range []struct {
			spellings []string
			cohort    rollout.Cohort
			variant   string
		}{
			{envOnSpellings, rollout.Treatment, "env-on"},
			{envOffSpellings, rollout.Control, "env-off"},
		} {
			for _, value := range tc.spellings {
				env := &fakeEnv{}
				env.set(value)
				r := newRollout(t, rollout.NewPercentProvider(true, percent), env.getenv)
				want := rollout.Assignment{
					Cohort: tc.cohort, FlagKey: rollout.FlagKey, Variant: tc.variant, Reason: "STATIC", Provider: "dynretry-env",
				}
				for _, id := range ids {
					require.Equal(t, want, withoutEvent(r.Assign(t.Context(), id, nil)), "%s=%q at %v%%, run %q", rollout.EnvVar, value, percent, id)
				}
			}
		}
	}
}

func TestEnvInvalidValue(t *testing.T) {
	for _, value := range []string{"maybe", "2", "enabled", "t", "y", "tru e", "-1"} {
		env := &fakeEnv{}
		env.set(value)
		r := newRollout(t, rollout.NewPercentProvider(true, 100), env.getenv)
		a := r.Assign(t.Context(), "lovable-p5-core", nil)
		assert.Equal(t, rollout.Control, a.Cohort, value)
		assert.Empty(t, a.Variant, value)
		assert.Equal(t, "ERROR", a.Reason, value)
		assert.Equal(t, "dynretry-env", a.Provider, value)
		require.Error(t, a.Err, value)
		assert.Contains(t, a.Err.Error(), rollout.EnvVar)
		assert.Contains(t, a.Err.Error(), `"`+value+`"`)
		assert.Contains(t, a.Err.Error(), string(openfeature.ParseErrorCode))
		assert.Contains(t, a.Err.Error(), "lovable-p5-core")
	}
}

// TestEnvUnsetPercentageDecides: unset, empty and blank leave the decision to the percentage.
func TestEnvUnsetPercentageDecides(t *testing.T) {
	ids := runIDs(1000)
	for _, value := range []string{"", " ", "\t\n"} {
		env := &fakeEnv{}
		env.set(value)
		r := newRollout(t, rollout.NewPercentProvider(true, 50), env.getenv)
		for _, id := range ids {
			a := r.Assign(t.Context(), id, nil)
			require.NoError(t, a.Err)
			require.Equal(t, "dynretry-percent", a.Provider)
			require.Equal(t, rollout.Bucket(id) < 50, a.Cohort == rollout.Treatment, "%q: %s", value, id)
		}
	}
}

// TestEnvFlipAppliesToNextEvaluation changes the variable between calls on one Rollout.
func TestEnvFlipAppliesToNextEvaluation(t *testing.T) {
	const on, off = "lovable-p5-core", "lovable-p6-core" // buckets 12.7 and 60.4
	env := &fakeEnv{}
	r := newRollout(t, rollout.NewPercentProvider(true, 50), env.getenv)
	for _, step := range []struct {
		value          string
		wantOn, wantOf rollout.Cohort
		provider       string
	}{
		{"", rollout.Treatment, rollout.Control, "dynretry-percent"},
		{"false", rollout.Control, rollout.Control, "dynretry-env"}, // kill switch
		{"", rollout.Treatment, rollout.Control, "dynretry-percent"},
		{"on", rollout.Treatment, rollout.Treatment, "dynretry-env"}, // force-on
		{"nope", rollout.Control, rollout.Control, "dynretry-env"},   // invalid: Control, with an error
		{"0", rollout.Control, rollout.Control, "dynretry-env"},
		{"", rollout.Treatment, rollout.Control, "dynretry-percent"},
	} {
		env.set(step.value)
		a, b := r.Assign(t.Context(), on, nil), r.Assign(t.Context(), off, nil)
		assert.Equal(t, step.wantOn, a.Cohort, "%q: %s", step.value, on)
		assert.Equal(t, step.wantOf, b.Cohort, "%q: %s", step.value, off)
		assert.Equal(t, step.provider, a.Provider, "%q", step.value)
		assert.Equal(t, step.value == "nope", a.Err != nil, "%q: %v", step.value, a.Err)
	}
}

// TestEnvNilGetenvReadsProcessEnvironment: a nil getenv reads the real environment at every evaluation.
func TestEnvNilGetenvReadsProcessEnvironment(t *testing.T) {
	t.Setenv(rollout.EnvVar, "")
	r := newRollout(t, rollout.NewPercentProvider(true, 0), nil)
	assert.Equal(t, rollout.Control, r.Assign(t.Context(), "run-1", nil).Cohort)
	t.Setenv(rollout.EnvVar, "yes")
	a := r.Assign(t.Context(), "run-1", nil)
	assert.Equal(t, rollout.Treatment, a.Cohort)
	assert.Equal(t, "env-on", a.Variant)
}

func TestEnvProviderOtherFlagsAndTypes(t *testing.T) {
	p := rollout.NewEnvProvider(func(string) string { return "true" })
	ctx := context.Background()
	assert.Equal(t, "dynretry-env", p.Metadata().Name)
	d := p.BooleanEvaluation(ctx, "some-other-flag", false, nil)
	assert.Equal(t, openfeature.FlagNotFoundCode, d.ResolutionDetail().ErrorCode)
	s := p.StringEvaluation(ctx, rollout.FlagKey, "x", nil)
	assert.Equal(t, openfeature.TypeMismatchCode, s.ResolutionDetail().ErrorCode)
	o := p.ObjectEvaluation(ctx, "some-other-flag", nil, nil)
	assert.Equal(t, openfeature.FlagNotFoundCode, o.ResolutionDetail().ErrorCode)
	d = p.BooleanEvaluation(ctx, rollout.FlagKey, false, nil)
	assert.True(t, d.Value)
	assert.NoError(t, d.Error())
}
