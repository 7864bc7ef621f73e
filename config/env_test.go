package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/config"
	"github.com/autopack/dynretry/retry"
)

// TestLovableNotRead: LOVABLE_DYNAMIC_RETRY_DELAYS belongs to the rollout,
// which reads it at every evaluation; Load neither folds it into Enabled
// nor checks it.
func TestLovableNotRead(t *testing.T) {
	t.Parallel()
	for _, value := range []string{"true", "false", "maybe", ""} {
		for _, file := range []string{"", fixture("disabled.yaml")} {
			s, err := config.Load(file, []string{"LOVABLE_DYNAMIC_RETRY_DELAYS=" + value})
			require.NoError(t, err, value)
			want, _ := config.Load(file, nil)
			assert.Equal(t, want, s, "%s=%q, file %q", "LOVABLE_DYNAMIC_RETRY_DELAYS", value, file)
			assert.Equal(t, file == "", s.Enabled, "the file's enabled stands")
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	policy := func(s *config.Settings, c retry.Class, edit func(p *retry.Policy)) {
		p := s.Engine.Policies[c]
		edit(&p)
		s.Engine.Policies[c] = p
	}
	tests := map[string]struct {
		path    string
		environ []string
		want    func(s *config.Settings) // edits the defaults
	}{
		"max_hint": {
			environ: []string{"DYNRETRY_MAX_HINT=90s"},
			want:    func(s *config.Settings) { s.Engine.MaxHint = 90 * time.Second },
		},
		"rollout_percent": {
			environ: []string{"DYNRETRY_ROLLOUT_PERCENT=50"},
			want:    func(s *config.Settings) { s.RolloutPercent = 50 },
		},
		"rollout_percent 0": {
			environ: []string{"DYNRETRY_ROLLOUT_PERCENT=0"},
			want:    func(s *config.Settings) { s.RolloutPercent = 0 },
		},
		"spread keys": {
			environ: []string{"DYNRETRY_SPREAD=0.5", "DYNRETRY_SPREAD_MIN=1ms", "DYNRETRY_SPREAD_MAX=1m"},
			want: func(s *config.Settings) {
				s.Engine.Spread, s.Engine.SpreadMin, s.Engine.SpreadMax = 0.5, time.Millisecond, time.Minute
			},
		},
		"budget nested": {
			environ: []string{"DYNRETRY_BUDGET__MAX_TOKENS=50", "DYNRETRY_BUDGET__RATIO=0.3"},
			want:    func(s *config.Settings) { s.Engine.Budget = retry.BudgetConfig{MaxTokens: 50, Ratio: 0.3} },
		},
		"budget disabled": {
			environ: []string{"DYNRETRY_BUDGET__MAX_TOKENS=-1"},
			want:    func(s *config.Settings) { s.Engine.Budget.MaxTokens = -1 },
		},
		"overload nested": {
			environ: []string{"DYNRETRY_OVERLOAD__BASE=1s", "DYNRETRY_OVERLOAD__MAX=1m", "DYNRETRY_OVERLOAD__PROBE_TIMEOUT=10s"},
			want: func(s *config.Settings) {
				s.Engine.Overload = retry.OverloadConfig{Base: time.Second, Max: time.Minute, ProbeTimeout: 10 * time.Second}
			},
		},
		"probe and min_attempt_time": {
			environ: []string{"DYNRETRY_PROBE__SOON=3s", "DYNRETRY_PROBE__INTERVAL=2m", "DYNRETRY_MIN_ATTEMPT_TIME=200ms"},
			want: func(s *config.Settings) {
				s.Engine.Probe = retry.ProbeConfig{Soon: 3 * time.Second, Interval: 2 * time.Minute}
				s.Engine.MinAttemptTime = 200 * time.Millisecond
			},
		},
		"policy field keeps the others": {
			environ: []string{"DYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS=5"},
			want: func(s *config.Settings) {
				policy(s, retry.RateLimited, func(p *retry.Policy) { p.MaxAttempts = 5 })
			},
		},
		"every policy field": {
			environ: []string{
				"DYNRETRY_POLICIES__TIMEOUT__MAX_ATTEMPTS=2",
				"DYNRETRY_POLICIES__TIMEOUT__BASE=2s",
				"DYNRETRY_POLICIES__TIMEOUT__MAX=20s",
				"DYNRETRY_POLICIES__TIMEOUT__MULTIPLIER=1.5",
				"DYNRETRY_POLICIES__TIMEOUT__JITTER=none",
			},
			want: func(s *config.Settings) {
				s.Engine.Policies[retry.Timeout] = retry.Policy{MaxAttempts: 2, Base: 2 * time.Second, Max: 20 * time.Second, Multiplier: 1.5, Jitter: retry.JitterNone}
			},
		},
		"non-retryable class": {
			environ: []string{"DYNRETRY_POLICIES__AUTH__MAX_ATTEMPTS=2"},
			want: func(s *config.Settings) {
				p := retry.DefaultPolicies[retry.ServerError]
				p.MaxAttempts, p.Jitter = 2, retry.JitterEqual
				s.Engine.Policies[retry.Auth] = p
			},
		},
		"name after the prefix in any case, value trimmed": {
			environ: []string{"DYNRETRY_Max_Hint=  90s  "},
			want:    func(s *config.Settings) { s.Engine.MaxHint = 90 * time.Second },
		},
		"empty value is unset": {
			environ: []string{"DYNRETRY_MAX_HINT=", "DYNRETRY_SPREAD=  "},
			want:    func(s *config.Settings) {},
		},
		"last duplicate wins": {
			environ: []string{"DYNRETRY_MAX_HINT=bad", "DYNRETRY_MAX_HINT=1m"},
			want:    func(s *config.Settings) { s.Engine.MaxHint = time.Minute },
		},
		"other prefixes and non-key variables are ignored": {
			environ: []string{"PATH=/bin", "dynretry_max_hint=junk", "DYNRETRYMAX_HINT=junk", "DYNRETRY_DEMO_API_KEY=sk-test", "NOEQUALS"},
			want:    func(s *config.Settings) {},
		},
		"environment over file, file's other fields kept": {
			path:    fixture("partial_policy.yaml"),
			environ: []string{"DYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS=7", "DYNRETRY_BUDGET__RATIO=0.4"},
			want: func(s *config.Settings) {
				s.Source = fixture("partial_policy.yaml")
				s.Engine.Budget.Ratio = 0.4
				policy(s, retry.RateLimited, func(p *retry.Policy) { p.MaxAttempts = 7 })
				policy(s, retry.ServerError, func(p *retry.Policy) { p.Base, p.Jitter = time.Second, retry.JitterFull })
			},
		},
		"DYNRETRY_CONFIG names the file": {
			environ: []string{"DYNRETRY_CONFIG=" + fixture("disabled.yaml")},
			want: func(s *config.Settings) {
				s.Enabled, s.RolloutPercent, s.Source = false, 0, fixture("disabled.yaml")
			},
		},
		"DYNRETRY_CONFIG ignored when a path is given": {
			path:    fixture("empty_section.yaml"),
			environ: []string{"DYNRETRY_CONFIG=" + fixture("does-not-exist.yaml")},
			want:    func(s *config.Settings) { s.Source = fixture("empty_section.yaml") },
		},
		"empty DYNRETRY_CONFIG means no file": {
			environ: []string{"DYNRETRY_CONFIG= "},
			want:    func(s *config.Settings) {},
		},
		"DYNRETRY_CONFIG's file, LOVABLE not folded in": {
			environ: []string{"DYNRETRY_CONFIG=" + fixture("disabled.yaml"), "LOVABLE_DYNAMIC_RETRY_DELAYS=on"},
			want: func(s *config.Settings) {
				s.Enabled, s.RolloutPercent, s.Source = false, 0, fixture("disabled.yaml")
			},
		},
		"telemetry.prometheus_listen": {
			environ: []string{"DYNRETRY_TELEMETRY__PROMETHEUS_LISTEN= 127.0.0.1:9464 "},
			want:    func(s *config.Settings) { s.Telemetry.PrometheusListen = "127.0.0.1:9464" },
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load(tt.path, tt.environ)
			require.NoError(t, err)
			want := defaults()
			tt.want(&want)
			assert.Equal(t, want, got)
		})
	}
}
