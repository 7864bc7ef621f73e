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
		"LOVABLE_DYNAMIC_RETRY_DELAYS=yes",
		"DYNRETRY_ROLLOUT_PERCENT=50",
		"DYNRETRY_POLICIES__RATE_LIMITED__BASE=2s",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("enabled:", s.Enabled, "from env:", s.EnabledFromEnv, "rollout:", s.RolloutPercent)
	fmt.Printf("rate_limited: %+v\n", s.Engine.Policies[retry.RateLimited])
	fmt.Println("budget ratio:", s.Engine.Budget.Ratio)

	_, err = config.Load("", []string{"DYNRETRY_MAX_HINT=2 minutes"})
	fmt.Println(err)
	// Output:
	// enabled: true from env: true rollout: 50
	// rate_limited: {MaxAttempts:5 Base:2s Max:30s Multiplier:2 Jitter:equal}
	// budget ratio: 0.2
	// config: environment DYNRETRY_MAX_HINT: lovable_patterns.p1_dynamic_retry_delays.max_hint = "2 minutes": want a Go duration such as "500ms", "2s" or "1m30s"
}
