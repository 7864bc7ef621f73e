package config_test

import (
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/config"
	"github.com/autopack/dynretry/retry"
)

// defaults is what Load returns without a file or variables.
func defaults() config.Settings {
	return config.Settings{Enabled: true, RolloutPercent: 10, Engine: retry.DefaultConfig(), Proxy: config.DefaultProxy(),
		Coordination: config.Coordination{Backend: config.BackendMemory, KeyPrefix: "dynretry:", Timeout: 50 * time.Millisecond}}
}

func fixture(name string) string { return filepath.Join("testdata", name) }

// The project's models.yaml documents the real defaults: loading it gives
// exactly what no file gives.
func TestLoadModelsYAMLIsTheDefaults(t *testing.T) {
	t.Parallel()
	s, err := config.Load(filepath.Join("..", "models.yaml"), nil)
	require.NoError(t, err)
	assert.Equal(t, retry.DefaultConfig(), s.Engine)
	assert.True(t, s.Enabled)
	assert.Equal(t, 10.0, s.RolloutPercent)
	assert.Equal(t, filepath.Join("..", "models.yaml"), s.Source)

	s.Source = ""
	assert.Equal(t, defaults(), s)
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	noSection := func(name string) string {
		return fixture(name) + " (no lovable_patterns.p1_dynamic_retry_delays section: defaults)"
	}
	tests := map[string]struct {
		path string
		want func(s *config.Settings) // edits the defaults
	}{
		"no file": {
			path: "",
			want: func(s *config.Settings) {},
		},
		"other sections only": {
			path: fixture("other_sections.yaml"),
			want: func(s *config.Settings) { s.Source = noSection("other_sections.yaml") },
		},
		"empty file": {
			path: fixture("empty.yaml"),
			want: func(s *config.Settings) { s.Source = noSection("empty.yaml") },
		},
		"empty section": {
			path: fixture("empty_section.yaml"),
			want: func(s *config.Settings) { s.Source = fixture("empty_section.yaml") },
		},
		"disabled": {
			path: fixture("disabled.yaml"),
			want: func(s *config.Settings) {
				s.Enabled, s.RolloutPercent, s.Source = false, 0, fixture("disabled.yaml")
			},
		},
		"partial policy keeps the other fields": {
			path: fixture("partial_policy.yaml"),
			want: func(s *config.Settings) {
				s.Source = fixture("partial_policy.yaml")
				s.Engine.Budget.Ratio = 0.2
				rl := s.Engine.Policies[retry.RateLimited]
				rl.MaxAttempts = 5
				s.Engine.Policies[retry.RateLimited] = rl
				se := s.Engine.Policies[retry.ServerError]
				se.Base, se.Jitter = time.Second, retry.JitterFull
				s.Engine.Policies[retry.ServerError] = se
			},
		},
		"non-retryable class starts from the server_error policy": {
			path: fixture("non_retryable.yaml"),
			want: func(s *config.Settings) {
				s.Source = fixture("non_retryable.yaml")
				p := retry.DefaultPolicies[retry.ServerError]
				p.MaxAttempts, p.Max, p.Jitter = 2, time.Minute, retry.JitterEqual
				s.Engine.Policies[retry.QuotaExhausted] = p
			},
		},
		"every key": {
			path: fixture("full.yaml"),
			want: func(s *config.Settings) {
				*s = config.Settings{
					Enabled:        false,
					RolloutPercent: 50.5,
					Telemetry:      config.Telemetry{PrometheusListen: "[::1]:9464"},
					Source:         fixture("full.yaml"),
					Coordination: config.Coordination{Backend: config.BackendRedis, RedisURL: "rediss://user:pw@redis.internal:6380/2",
						KeyPrefix: "autopack:retry:", Timeout: 20 * time.Millisecond, CredentialSecret: "a fleet secret of 32 characters!"},
					Engine: retry.Config{
						MaxHint:        90 * time.Second,
						Spread:         0.25,
						SpreadMin:      10 * time.Millisecond,
						SpreadMax:      5 * time.Second,
						Budget:         retry.BudgetConfig{MaxTokens: -1, Ratio: 0.5},
						Overload:       retry.OverloadConfig{Base: time.Second, Max: time.Minute, ProbeTimeout: 45 * time.Second},
						Probe:          retry.ProbeConfig{Soon: 2 * time.Second, Interval: 5 * time.Minute},
						MinAttemptTime: 100 * time.Millisecond,
						Policies: map[retry.Class]retry.Policy{
							retry.RateLimited: {MaxAttempts: 10, Base: 2 * time.Second, Max: time.Minute, Multiplier: 1.5, Jitter: retry.JitterNone},
							retry.Overloaded:  {MaxAttempts: 0, Base: 0, Max: 0, Multiplier: 1, Jitter: retry.JitterFull},
							retry.ServerError: {MaxAttempts: 6, Base: 250 * time.Millisecond, Max: 4 * time.Second, Multiplier: 3, Jitter: retry.JitterEqual},
							retry.Timeout:     {MaxAttempts: 1, Base: time.Second, Max: 10 * time.Second, Multiplier: 2, Jitter: retry.JitterEqual},
							retry.Connection:  {MaxAttempts: 4, Base: 100 * time.Millisecond, Max: 4 * time.Second, Multiplier: 2, Jitter: retry.JitterEqual},
							retry.Conflict:    {MaxAttempts: 3, Base: 500 * time.Millisecond, Max: 8 * time.Second, Multiplier: 2, Jitter: retry.JitterEqual},
						},
					},
					Proxy: config.Proxy{
						Listen: ":9000", AdminListen: "127.0.0.1:0",
						Upstreams: config.Upstreams{
							OpenAI:    &url.URL{Scheme: "http", Host: "127.0.0.1:8080", Path: "/v1"},
							Anthropic: &url.URL{Scheme: "https", Host: "gateway.example.com", Path: "/anthropic"},
						},
						MaxReplayBody: 512 << 10,
					},
				}
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := config.Load(tt.path, nil)
			require.NoError(t, err)
			want := defaults()
			tt.want(&want)
			assert.Equal(t, want, got)
			assert.NoError(t, got.Engine.Validate(), "Engine must pass retry's Validate")
		})
	}
}

// Each Load returns its own Policies map: changing one Settings does not
// change another, nor retry.DefaultPolicies.
func TestLoadReturnsIndependentPolicies(t *testing.T) {
	t.Parallel()
	a, err := config.Load("", nil)
	require.NoError(t, err)
	a.Engine.Policies[retry.RateLimited] = retry.Policy{}
	b, err := config.Load("", nil)
	require.NoError(t, err)
	assert.Equal(t, retry.DefaultConfig().Policies, b.Engine.Policies)
	assert.Equal(t, 8, retry.DefaultPolicies[retry.RateLimited].MaxAttempts)
}
