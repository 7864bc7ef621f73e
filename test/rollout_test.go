package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/examples/runner"
	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/sim"
	"github.com/autopack/dynretry/telemetry"
)

// rateLimited is a provider that admits one request a second per model
// after a burst of 3, with truthful hints.
func rateLimited(seed uint64) sim.Config {
	return sim.Config{Seed: seed, RPM: 60, TPM: 100_000, Burst: 0.05}
}

// TestTreatmentUnderRateLimit: many runs at once against a rate-limited
// provider, every run in the treatment cohort (rollout_percent from the
// environment over models.yaml's 10). Every decision is a span with the
// contract's attributes, and the metrics carry the cohort.
func TestTreatmentUnderRateLimit(t *testing.T) {
	e := setup(t, plugin.Options{ConfigPath: modelsYAML, Environ: []string{"DYNRETRY_ROLLOUT_PERCENT=100"}})
	require.Equal(t, 100.0, e.plugin.Settings().RolloutPercent)
	const runs = 16
	var st sim.Stats
	var results map[string]runner.Result
	synctest.Test(t, func(t *testing.T) {
		p := newSim(t, rateLimited(1))
		r := e.runner(p, testKey)
		work := map[string][]runner.Phase{"rl-huge": {{ID: "phase-1", Steps: []runner.Step{hugeDoctor}}}}
		for i := range runs {
			work[fmt.Sprintf("rl-run-%02d", i)] = phases(2)
		}
		results = runAll(context.Background(), r, work)
		st = p.Stats()
	})

	// Every call but the huge one succeeds: the engine waits for the
	// provider's hints instead of giving up.
	for id, res := range results {
		if id == "rl-huge" {
			assert.Equal(t, runner.Result{RunID: id, Calls: 1, Failed: 1, Reports: res.Reports}, res)
			continue
		}
		assert.Equal(t, runner.Result{RunID: id, Calls: 4}, res, "run %s", id)
	}
	assert.Positive(t, st.Rejected[sim.ReasonRateLimited], "the provider did rate limit")

	n := checkSpans(t, e, "treatment", "on", rollout.PercentProviderName)
	calls, attempts := e.calls(), e.attempts()
	assert.Len(t, calls, runs*4+1)
	assert.Equal(t, st.Received, e.sentAttempts(), "one attempt span per request the provider received")
	assert.Equal(t, st.Received, n, "no attempt ended before being sent")

	var retries, hinted int
	for id, as := range attempts {
		for _, a := range as {
			if a.str(telemetry.AttrDecision) == "retry" {
				retries++
			}
			if _, ok := a.int(telemetry.AttrHintMS); ok {
				hinted++
			}
		}
		if calls[id].str(telemetry.AttrRunID) == "rl-huge" {
			require.Len(t, as, 1, "request_too_large is not retried")
			assert.Equal(t, "give_up", as[0].str(telemetry.AttrDecision))
			assert.Equal(t, "request_too_large", as[0].str(telemetry.AttrClass))
			assert.Equal(t, "Error", calls[id].Status.Code.String())
			assert.Equal(t, "request_too_large", calls[id].str(string(telemetry.KeyErrorType)))
		}
	}
	t.Logf("treatment: %d requests, %d rate limited, %d retries, %d after a hint", st.Received, st.Rejected[sim.ReasonRateLimited], retries, hinted)
	assert.Positive(t, retries, "some attempts were retried")
	assert.Positive(t, hinted, "some retries followed a provider hint")
	checkMetrics(t, e, "treatment")

	// The huge call's error report carries the engine's summary.
	reports, err := filepath.Glob(filepath.Join(e.dir, ".autonomous_runs", "rl-huge", "errors", "*_llm_service_RequestTooLarge.json"))
	require.NoError(t, err)
	require.Len(t, reports, 1)
	b, err := os.ReadFile(reports[0])
	require.NoError(t, err)
	for _, s := range []string{`"dynretry.class": "request_too_large"`, `"dynretry.cohort": "treatment"`, `"dynretry.attempts": 1`, `"dynretry.decision": "give_up"`} {
		assert.Contains(t, string(b), s)
	}
}

// TestControlKeepsSDKRetries: at 0% every call keeps the SDK's own retries
// (at most 3 attempts a call), and each attempt the SDK makes is a span of
// the control cohort.
func TestControlKeepsSDKRetries(t *testing.T) {
	e := setup(t, plugin.Options{ConfigPath: modelsYAML, Environ: []string{"DYNRETRY_ROLLOUT_PERCENT=0"}})
	const runs = 12
	var st sim.Stats
	synctest.Test(t, func(t *testing.T) {
		p := newSim(t, rateLimited(2))
		r := e.runner(p, testKey)
		work := map[string][]runner.Phase{}
		for i := range runs {
			work[fmt.Sprintf("ctl-run-%02d", i)] = phases(2)
		}
		runAll(context.Background(), r, work)
		st = p.Stats()
	})
	n := checkSpans(t, e, "control", "off", rollout.PercentProviderName)
	assert.Equal(t, st.Received, n, "one attempt span per request the provider received")

	var most, retried, spent int
	for _, as := range e.attempts() {
		assert.LessOrEqual(t, len(as), 3, "the SDK makes at most 3 attempts")
		most = max(most, len(as))
		if len(as) > 1 {
			retried++
		}
		last := as[len(as)-1]
		if len(as) == 3 && last.str(telemetry.AttrDecision) == "give_up" {
			spent++
			assert.Contains(t, last.str(telemetry.AttrReason), "2 retries are spent")
		}
	}
	assert.Equal(t, 3, most, "some calls used all of the SDK's retries")
	assert.Positive(t, retried)
	assert.Positive(t, st.Rejected[sim.ReasonRateLimited])
	t.Logf("control: %d requests, %d rate limited, %d calls retried by the SDK, %d gave up after 3 attempts",
		st.Received, st.Rejected[sim.ReasonRateLimited], retried, spent)
	checkMetrics(t, e, "control")
}

// TestFlagFlipMidRun: Plugin.Percent.Set in the middle of a run changes the
// cohort of its next calls, and back again.
func TestFlagFlipMidRun(t *testing.T) {
	e := setup(t, plugin.Options{ConfigPath: modelsYAML})
	e.plugin.Percent.Set(true, 0)
	// A wrapper registered after dynretry is outside it: it flips the flag
	// just before the run's 3rd and 5th calls are evaluated.
	var n atomic.Int32
	e.host.WrapLLM(func(next hooks.LLMService) hooks.LLMService {
		return hooks.LLMFunc(func(ctx context.Context, c hooks.Call, r hooks.Request) (hooks.Response, error) {
			if c.RunID != "flip-run" {
				return next.Complete(ctx, c, r)
			}
			switch n.Add(1) {
			case 3:
				e.plugin.Percent.Set(true, 100)
			case 5:
				e.plugin.Percent.Set(true, 0)
			}
			return next.Complete(ctx, c, r)
		})
	})
	synctest.Test(t, func(t *testing.T) {
		p := newSim(t, rateLimited(3))
		r := e.runner(p, testKey)
		// A second run keeps the bucket busy, so the flipped run sees 429s.
		var wg sync.WaitGroup
		wg.Go(func() { r.Run(context.Background(), "flip-neighbour", phases(2)) })
		res := r.Run(context.Background(), "flip-run", phases(3))
		assert.Equal(t, runner.Result{RunID: "flip-run", Calls: 6}, res)
		wg.Wait()
	})
	checkSpans(t, e, "", "", rollout.PercentProviderName)

	var flipped []span
	for _, c := range e.calls() {
		if c.str(telemetry.AttrRunID) == "flip-run" {
			flipped = append(flipped, c)
		}
	}
	require.Len(t, flipped, 6)
	slices.SortFunc(flipped, func(a, b span) int { return a.StartTime.Compare(b.StartTime) })
	attempts := e.attempts()
	want := []string{"control", "control", "treatment", "treatment", "control", "control"}
	for i, c := range flipped {
		assert.Equal(t, want[i], c.str(telemetry.AttrCohort), "call %d", i+1)
		variant := map[string]string{"control": "off", "treatment": "on"}[want[i]]
		assert.Equal(t, variant, c.str(string(telemetry.KeyFlagVariant)), "call %d", i+1)
		for _, a := range attempts[c.SpanContext.SpanID()] {
			assert.Equal(t, want[i], a.str(telemetry.AttrCohort), "an attempt of call %d", i+1)
		}
	}
}

// TestEnvOverride: LOVABLE_DYNAMIC_RETRY_DELAYS decides over the rollout,
// both ways, in every accepted spelling; empty leaves the rollout to decide.
func TestEnvOverride(t *testing.T) {
	type tc struct {
		value, percent string
		provider       flagProvider
		wantCohort     string
		wantVariant    string
		wantProvider   string
	}
	var cases []tc
	for _, v := range []string{"true", "TRUE", "True", "1", "yes", "YES", "on", "On", " true "} {
		cases = append(cases, tc{value: v, percent: "0", wantCohort: "treatment", wantVariant: "env-on", wantProvider: rollout.EnvProviderName})
	}
	for _, v := range []string{"false", "FALSE", "False", "0", "no", "No", "off", "OFF"} {
		cases = append(cases, tc{value: v, percent: "100", wantCohort: "control", wantVariant: "env-off", wantProvider: rollout.EnvProviderName})
	}
	cases = append(cases,
		tc{value: "", percent: "100", wantCohort: "treatment", wantVariant: "on", wantProvider: rollout.PercentProviderName},
		tc{value: "  ", percent: "0", wantCohort: "control", wantVariant: "off", wantProvider: rollout.PercentProviderName},
		// With a flag provider of the runner's own, the variable still wins.
		tc{value: "false", provider: percentProvider(100), wantCohort: "control", wantVariant: "env-off", wantProvider: rollout.EnvProviderName},
		tc{value: "true", provider: percentProvider(0), wantCohort: "treatment", wantVariant: "env-on", wantProvider: rollout.EnvProviderName},
	)
	for _, c := range cases {
		name := fmt.Sprintf("%q with %s%%", c.value, c.percent)
		if c.provider != nil {
			name = fmt.Sprintf("%q with a flag provider", c.value)
		}
		t.Run(name, func(t *testing.T) {
			environ := []string{"LOVABLE_DYNAMIC_RETRY_DELAYS=" + c.value}
			if c.percent != "" {
				environ = append(environ, "DYNRETRY_ROLLOUT_PERCENT="+c.percent)
			}
			o := plugin.Options{Environ: environ}
			if c.provider != nil {
				o.FlagProvider = c.provider()
			}
			e := setup(t, o)
			synctest.Test(t, func(t *testing.T) {
				p := newSim(t, sim.Config{})
				res := e.runner(p, testKey).Run(context.Background(), "env-run", phases(1))
				assert.Equal(t, runner.Result{RunID: "env-run", Calls: 2}, res)
			})
			assert.Equal(t, 2, checkSpans(t, e, c.wantCohort, c.wantVariant, c.wantProvider))
			assert.Len(t, e.calls(), 2)
		})
	}
}

type flagProvider func() *rollout.PercentProvider

func percentProvider(p float64) flagProvider {
	return func() *rollout.PercentProvider { return rollout.NewPercentProvider(true, p) }
}

// TestConfigErrors: a malformed models.yaml or environment value stops
// Register with an error naming the file, key or variable, and the runner
// built from the host then runs without dynretry.
func TestConfigErrors(t *testing.T) {
	orig, err := os.ReadFile(modelsYAML)
	require.NoError(t, err)
	edit := func(old, new string) string {
		t.Helper()
		require.Contains(t, string(orig), old)
		path := filepath.Join(t.TempDir(), "models.yaml")
		require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(orig), old, new, 1)), 0o644))
		return path
	}
	for name, tc := range map[string]struct {
		path    string
		environ []string
		want    []string
	}{
		"rollout_percent out of range": {path: edit("rollout_percent: 10", "rollout_percent: 110"),
			want: []string{"models.yaml", "lovable_patterns.p1_dynamic_retry_delays.rollout_percent", "110", "[0, 100]"}},
		"unknown policy field": {path: edit("max_attempts: 8, base: 1s", "max_attempts: 8, bse: 1s"),
			want: []string{"models.yaml", "bse"}},
		"unknown class": {path: edit("rate_limited: {", "rate_limted: {"),
			want: []string{"models.yaml", "rate_limted"}},
		"not yaml": {path: edit("    enabled: true", "\tenabled: true"),
			want: []string{"models.yaml"}},
		"bad duration from the environment": {path: modelsYAML, environ: []string{"DYNRETRY_OVERLOAD__MAX=forever"},
			want: []string{"DYNRETRY_OVERLOAD__MAX", "forever", "overload.max"}},
		"bad flag value": {path: modelsYAML, environ: []string{"LOVABLE_DYNAMIC_RETRY_DELAYS=sometimes"},
			want: []string{"LOVABLE_DYNAMIC_RETRY_DELAYS", "sometimes"}},
		"bad attempts from the environment": {path: modelsYAML, environ: []string{"DYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS=many"},
			want: []string{"DYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS", "many"}},
	} {
		t.Run(name, func(t *testing.T) {
			host := new(runner.Host)
			environ := tc.environ
			if environ == nil {
				environ = []string{}
			}
			p, err := plugin.Register(context.Background(), host, plugin.Options{ConfigPath: tc.path, Environ: environ})
			require.Error(t, err)
			require.Nil(t, p)
			t.Logf("%v", err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			// Nothing was installed: the runner's calls are the SDKs' own.
			synctest.Test(t, func(t *testing.T) {
				sp := newSim(t, sim.Config{})
				r := runner.New(host, runner.Options{BaseURL: simURL, APIKey: testKey, Dir: t.TempDir(), Transport: sim.Transport{Handler: sp}})
				res := r.Run(context.Background(), "no-plugin", phases(1))
				assert.Equal(t, runner.Result{RunID: "no-plugin", Calls: 2}, res)
				assert.Equal(t, 2, sp.Stats().Received)
			})
		})
	}
}
