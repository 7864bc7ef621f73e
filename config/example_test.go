package config_test

import (
	"fmt"
	"path/filepath"

	"github.com/autopack/dynretry/config"
	"github.com/autopack/dynretry/retry"
)

func ExampleLoad() {
	// In production: config.Load("", os.Environ()), with the file named by
	// DYNRETRY_CONFIG.
	s, err := config.Load(filepath.Join("testdata", "partial_policy.yaml"), []string{
		"DYNRETRY_TELEMETRY__PROMETHEUS_LISTEN=127.0.0.1:9464",
		"DYNRETRY_ROLLOUT_PERCENT=50",
		"DYNRETRY_POLICIES__RATE_LIMITED__BASE=2s",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("enabled:", s.Enabled, "rollout:", s.RolloutPercent, "metrics:", s.Telemetry.PrometheusListen)
	fmt.Printf("rate_limited: %+v\n", s.Engine.Policies[retry.RateLimited])
	fmt.Println("budget ratio:", s.Engine.Budget.Ratio)

	_, err = config.Load("", []string{"DYNRETRY_MAX_HINT=2 minutes"})
	fmt.Println(err)
	// Output:
	// enabled: true rollout: 50 metrics: 127.0.0.1:9464
	// rate_limited: {MaxAttempts:5 Base:2s Max:30s Multiplier:2 Jitter:equal}
	// budget ratio: 0.2
	// config: environment DYNRETRY_MAX_HINT: lovable_patterns.p1_dynamic_retry_delays.max_hint = "2 minutes": want a Go duration such as "500ms", "2s" or "1m30s"
}
