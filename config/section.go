package config

import (
	"maps"
	"time"

	"github.com/autopack/dynretry/retry"
)

// values is the typed form of lovable_patterns.p1_dynamic_retry_delays:
// koanf unmarshals every layer into it. Each field's type carries the rule
// its values must follow (see decode.go); the koanf tags are the keys.
type values struct {
	Enabled        bool                   `koanf:"enabled"`
	RolloutPercent percent                `koanf:"rollout_percent"`
	MaxHint        setting                `koanf:"max_hint"`
	Spread         number                 `koanf:"spread"`
	SpreadMin      setting                `koanf:"spread_min"`
	SpreadMax      setting                `koanf:"spread_max"`
	Budget         budget                 `koanf:"budget"`
	Overload       overload               `koanf:"overload"`
	Probe          probe                  `koanf:"probe"`
	MinAttemptTime setting                `koanf:"min_attempt_time"`
	Policies       map[retry.Class]policy `koanf:"policies"`
	Coordination   coordination           `koanf:"coordination"`
	Proxy          proxyValues            `koanf:"proxy"`
	Telemetry      telemetry              `koanf:"telemetry"`
}

type telemetry struct {
	PrometheusListen optionalAddress `koanf:"prometheus_listen"`
}

type budget struct {
	MaxTokens tokens `koanf:"max_tokens"`
	Ratio     number `koanf:"ratio"`
}

type overload struct {
	Base         setting `koanf:"base"`
	Max          setting `koanf:"max"`
	ProbeTimeout setting `koanf:"probe_timeout"`
}

type probe struct {
	Soon     setting `koanf:"soon"`
	Interval setting `koanf:"interval"`
}

type policy struct {
	MaxAttempts attempts     `koanf:"max_attempts"`
	Base        backoff      `koanf:"base"`
	Max         backoff      `koanf:"max"`
	Multiplier  multiplier   `koanf:"multiplier"`
	Jitter      retry.Jitter `koanf:"jitter"`
}

// The value types of the section, one per rule; decode.go enforces them.
type (
	// percent is a finite number within [0, 100].
	percent float64
	// setting is an engine duration for which 0 would mean "the default":
	// within [minDuration, maxDuration].
	setting time.Duration
	// backoff is a policy's duration: within [0, maxDuration].
	backoff time.Duration
	// number is a finite engine number for which 0 would mean "the
	// default", within [-maxNumber, maxNumber].
	number float64
	// tokens is budget.max_tokens: a number; a negative one disables the
	// budget.
	tokens float64
	// attempts is a whole number of at most maxAttempts.
	attempts int
	// multiplier is a policy's growth factor: not 0, at most maxMultiplier.
	multiplier float64
)

// The ranges of the values, also documented in models.yaml.
const (
	minDuration   = time.Millisecond
	maxDuration   = 24 * time.Hour
	maxNumber     = 1e6
	maxAttempts   = 100
	maxMultiplier = 10
)

// The defaults of the keys that are not engine settings.
const (
	defaultEnabled = true
	defaultRollout = 10
)

// defaults returns the section with every default: the engine's from
// retry.DefaultConfig.
func defaults() values {
	c := retry.DefaultConfig()
	s := values{
		Enabled:        defaultEnabled,
		RolloutPercent: defaultRollout,
		MaxHint:        setting(c.MaxHint),
		Spread:         number(c.Spread),
		SpreadMin:      setting(c.SpreadMin),
		SpreadMax:      setting(c.SpreadMax),
		Budget:         budget{MaxTokens: tokens(c.Budget.MaxTokens), Ratio: number(c.Budget.Ratio)},
		Overload: overload{
			Base: setting(c.Overload.Base), Max: setting(c.Overload.Max), ProbeTimeout: setting(c.Overload.ProbeTimeout),
		},
		Probe:          probe{Soon: setting(c.Probe.Soon), Interval: setting(c.Probe.Interval)},
		MinAttemptTime: setting(c.MinAttemptTime),
		Policies:       make(map[retry.Class]policy, len(c.Policies)),
		Proxy:          defaultProxy(),
		Coordination:   defaultCoordination(),
	}
	for class, p := range c.Policies {
		s.Policies[class] = fromPolicy(p)
	}
	return s
}

// defaultPolicy is the policy a class starts from: its default, or the
// server_error default for a class without one.
func defaultPolicy(c retry.Class) policy {
	p, ok := retry.DefaultPolicies[c]
	if !ok {
		p = retry.DefaultPolicies[retry.ServerError]
	}
	if p.Jitter == "" {
		p.Jitter = retry.JitterEqual
	}
	return fromPolicy(p)
}

func fromPolicy(p retry.Policy) policy {
	return policy{
		MaxAttempts: attempts(p.MaxAttempts), Base: backoff(p.Base), Max: backoff(p.Max),
		Multiplier: multiplier(p.Multiplier), Jitter: p.Jitter,
	}
}

// engine returns the engine's configuration the section describes.
func (s values) engine() retry.Config {
	c := retry.Config{
		MaxHint:   time.Duration(s.MaxHint),
		Spread:    float64(s.Spread),
		SpreadMin: time.Duration(s.SpreadMin),
		SpreadMax: time.Duration(s.SpreadMax),
		Budget:    retry.BudgetConfig{MaxTokens: float64(s.Budget.MaxTokens), Ratio: float64(s.Budget.Ratio)},
		Overload: retry.OverloadConfig{
			Base: time.Duration(s.Overload.Base), Max: time.Duration(s.Overload.Max), ProbeTimeout: time.Duration(s.Overload.ProbeTimeout),
		},
		Probe:          retry.ProbeConfig{Soon: time.Duration(s.Probe.Soon), Interval: time.Duration(s.Probe.Interval)},
		MinAttemptTime: time.Duration(s.MinAttemptTime),
		Policies:       make(map[retry.Class]retry.Policy, len(s.Policies)),
	}
	for class, p := range maps.All(s.Policies) {
		c.Policies[class] = retry.Policy{
			MaxAttempts: int(p.MaxAttempts), Base: time.Duration(p.Base), Max: time.Duration(p.Max),
			Multiplier: float64(p.Multiplier), Jitter: p.Jitter,
		}
	}
	return c
}
