package retry

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// A Jitter says how a backoff delay d is spread.
type Jitter string

const (
	// JitterEqual draws uniformly from [d/2, d]: spread, but never much
	// shorter than the schedule. The default.
	JitterEqual Jitter = "equal"
	// JitterFull draws uniformly from [0, d].
	JitterFull Jitter = "full"
	// JitterNone uses d as is.
	JitterNone Jitter = "none"
)

// A Policy says how failures of one class are retried when the provider gave
// no usable hint.
type Policy struct {
	// MaxAttempts is the most attempts a call makes when its latest failure
	// is of this class, the first attempt included: 3 means up to 2 retries.
	// 0 and 1 mean the class is never retried.
	MaxAttempts int
	// Base is the backoff before the first retry.
	Base time.Duration
	// Max caps the backoff before jitter.
	Max time.Duration
	// Multiplier grows the backoff per consecutive failure without a hint:
	// retry k (1-based) waits Base·Multiplier^(k−1), capped at Max. It is
	// at least 1.
	Multiplier float64
	// Jitter spreads each backoff; the zero value means JitterEqual.
	Jitter Jitter
}

// Config holds every setting of the engine. The zero value of a field means
// its default, given in its comment; DefaultConfig returns them all.
type Config struct {
	// Policies maps a class to its policy. A class without an entry uses
	// its entry in DefaultPolicies. A non-retryable class has none there
	// and is not retried unless it is given one here with MaxAttempts above
	// 1, or x-should-retry: true says so (then it uses the server_error
	// policy). Canceled is never retried.
	Policies map[Class]Policy
	// MaxHint is the longest server-stated wait the engine will honour
	// (default 2m: per-minute limits reset within 60 s, so a longer wait
	// signals a daily or billing limit). A hint above it, or above any
	// window the limit is known to have, is first checked by one probe (see
	// Probe); confirmed and above MaxHint, it ends the held calls at once.
	MaxHint time.Duration
	// Spread is the fraction of a server hint that may be added above it, so
	// that callers told the same wait do not return in lockstep (default
	// 0.1). The added spread is kept within [SpreadMin, SpreadMax].
	Spread float64
	// SpreadMin is the least spread range above a hint, even a zero one
	// (default 50ms).
	SpreadMin time.Duration
	// SpreadMax is the most spread range above a hint (default 2s).
	SpreadMax time.Duration
	// Budget limits retries of server_error and overloaded failures.
	Budget BudgetConfig
	// Overload is how calls to a limit are held back while its provider is
	// overloaded.
	Overload OverloadConfig
	// Probe is how a limit is checked when it says "no more" for long: a
	// suspiciously long hint, an exhausted quota.
	Probe ProbeConfig
	// MinAttemptTime is the least time an attempt is given: an attempt is
	// sent only when at least this much, or the limit's observed latency if
	// longer, is left before the caller's deadline (default 50ms). Sending
	// with less would only lose the last response to the deadline.
	MinAttemptTime time.Duration
}

// ProbeConfig configures the probes of a limit that refuses calls for long.
type ProbeConfig struct {
	// Soon is how long after a suspiciously long hint the limit is probed
	// by one call, every other call to it held meanwhile (default 1s: a
	// per-minute window refills one request's worth within seconds).
	Soon time.Duration
	// Interval is how often a blocked limit (quota exhausted, or a long
	// hint a probe confirmed) is probed by one call; the others give up
	// unsent (default 1m).
	Interval time.Duration
}

// BudgetConfig configures the retry budget, a token bucket in the spirit of
// gRPC retry throttling, kept per limit key: each budgeted failure (class
// server_error or overloaded) takes one token, each success returns Ratio
// tokens, and such failures are retried only while more than half of
// MaxTokens remain.
type BudgetConfig struct {
	// MaxTokens is the bucket size (default 100: enough to absorb a burst
	// of in-flight calls failing at once, few enough to stop a storm after
	// about 50 net failures). A negative value disables the budget.
	MaxTokens float64
	// Ratio is the tokens a success returns (default 0.1: a failure rate
	// above about 9% drains the budget).
	Ratio float64
}

// OverloadConfig configures how a limit key is held while its provider is
// overloaded: after the first overloaded failure every call to the key waits
// Base, then one call at a time probes; after each failed probe the key is
// held Max, and probed again. Holds are drawn from [d, 1.1·d]. A probe that
// succeeds releases every held call at once, so recovery lags the provider
// by at most about Max.
type OverloadConfig struct {
	// Base is the first hold (default 1s).
	Base time.Duration
	// Max is the hold after a failed probe, the longest: at most one probe
	// per Max during an outage (default 5s).
	Max time.Duration
	// ProbeTimeout is how long a probe may take before another call may
	// probe in its place (default 30s).
	ProbeTimeout time.Duration
}

// DefaultPolicies are the policies of the retryable classes. The reasons:
//
//   - rate_limited: 8 attempts, 1s doubling to 30s. Used only without a hint;
//     per-minute windows refill within 60 s, which the schedule covers.
//   - overloaded: 8 attempts. Its delays are not a backoff but the limit's
//     overload hold (OverloadConfig: 1s, then 5s after a failed probe), so a
//     call comes back when the probe may have released the limit; Base and
//     Max here (1s, 5s) only mirror those defaults and are not used.
//   - server_error: 4 attempts, 500ms doubling to 8s, the SDKs' own
//     schedule; a 5xx is usually transient and a 4th failure is not.
//   - timeout: 3 attempts, 1s doubling to 10s; a timed-out attempt was
//     expensive, so fewer of them.
//   - connection: 4 attempts, 250ms doubling to 4s; a reset or refused
//     connection usually heals quickly.
//   - conflict: 3 attempts, 500ms doubling to 4s.
var DefaultPolicies = map[Class]Policy{
	RateLimited: {MaxAttempts: 8, Base: time.Second, Max: 30 * time.Second, Multiplier: 2},
	Overloaded:  {MaxAttempts: 8, Base: time.Second, Max: 5 * time.Second, Multiplier: 2},
	ServerError: {MaxAttempts: 4, Base: 500 * time.Millisecond, Max: 8 * time.Second, Multiplier: 2},
	Timeout:     {MaxAttempts: 3, Base: time.Second, Max: 10 * time.Second, Multiplier: 2},
	Connection:  {MaxAttempts: 4, Base: 250 * time.Millisecond, Max: 4 * time.Second, Multiplier: 2},
	Conflict:    {MaxAttempts: 3, Base: 500 * time.Millisecond, Max: 4 * time.Second, Multiplier: 2},
}

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	var c Config
	c.fill()
	return c
}

// fill replaces zero values with defaults.
func (c *Config) fill() {
	ps := make(map[Class]Policy, len(DefaultPolicies))
	for k, p := range DefaultPolicies {
		ps[k] = p
	}
	for k, p := range c.Policies {
		ps[k] = p
	}
	for k, p := range ps {
		if p.Jitter == "" {
			p.Jitter = JitterEqual
		}
		if p.Multiplier == 0 {
			p.Multiplier = 2
		}
		ps[k] = p
	}
	c.Policies = ps
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.MaxHint, 2*time.Minute)
	def(&c.SpreadMin, 50*time.Millisecond)
	def(&c.SpreadMax, 2*time.Second)
	def(&c.Overload.Base, time.Second)
	def(&c.Overload.Max, 5*time.Second)
	def(&c.Overload.ProbeTimeout, 30*time.Second)
	def(&c.Probe.Soon, time.Second)
	def(&c.Probe.Interval, time.Minute)
	def(&c.MinAttemptTime, 50*time.Millisecond)
	if c.Spread == 0 {
		c.Spread = 0.1
	}
	if c.Budget.MaxTokens == 0 {
		c.Budget.MaxTokens = 100
	}
	if c.Budget.Ratio == 0 {
		c.Budget.Ratio = 0.1
	}
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("retry: invalid config")

// Validate fills in defaults and reports the first invalid setting, naming
// it. A Config that passes can be used as is.
func (c *Config) Validate() error {
	c.fill()
	bad := func(name string, v any, why string) error {
		return fmt.Errorf("%w: %s = %v: %s", ErrConfig, name, v, why)
	}
	for _, k := range Classes {
		p, ok := c.Policies[k]
		if !ok {
			continue
		}
		name := "policies." + string(k)
		switch {
		case p.MaxAttempts < 0:
			return bad(name+".max_attempts", p.MaxAttempts, "must be at least 0")
		case p.Base < 0:
			return bad(name+".base", p.Base, "must not be negative")
		case p.Max < p.Base:
			return bad(name+".max", p.Max, "must be at least base ("+p.Base.String()+")")
		case p.Multiplier < 1 || math.IsNaN(p.Multiplier) || math.IsInf(p.Multiplier, 0):
			return bad(name+".multiplier", p.Multiplier, "must be a finite number of at least 1")
		case p.Jitter != JitterEqual && p.Jitter != JitterFull && p.Jitter != JitterNone:
			return bad(name+".jitter", p.Jitter, `must be "equal", "full" or "none"`)
		}
	}
	for k := range c.Policies {
		if !k.Valid() {
			return bad("policies."+string(k), "", "unknown class")
		}
	}
	switch {
	case c.MaxHint < 0:
		return bad("max_hint", c.MaxHint, "must not be negative")
	case c.Spread < 0 || c.Spread > 1 || math.IsNaN(c.Spread):
		return bad("spread", c.Spread, "must be within [0, 1]")
	case c.SpreadMin < 0:
		return bad("spread_min", c.SpreadMin, "must not be negative")
	case c.SpreadMax < c.SpreadMin:
		return bad("spread_max", c.SpreadMax, "must be at least spread_min ("+c.SpreadMin.String()+")")
	case c.Budget.Ratio < 0 || math.IsNaN(c.Budget.Ratio) || math.IsInf(c.Budget.Ratio, 0):
		return bad("budget.ratio", c.Budget.Ratio, "must be a finite number of at least 0")
	case math.IsNaN(c.Budget.MaxTokens) || math.IsInf(c.Budget.MaxTokens, 0):
		return bad("budget.max_tokens", c.Budget.MaxTokens, "must be finite")
	case c.Overload.Base < 0:
		return bad("overload.base", c.Overload.Base, "must not be negative")
	case c.Overload.Max < c.Overload.Base:
		return bad("overload.max", c.Overload.Max, "must be at least overload.base ("+c.Overload.Base.String()+")")
	case c.Overload.ProbeTimeout < 0:
		return bad("overload.probe_timeout", c.Overload.ProbeTimeout, "must not be negative")
	case c.Probe.Soon < 0:
		return bad("probe.soon", c.Probe.Soon, "must not be negative")
	case c.Probe.Interval < 0:
		return bad("probe.interval", c.Probe.Interval, "must not be negative")
	case c.MinAttemptTime < 0:
		return bad("min_attempt_time", c.MinAttemptTime, "must not be negative")
	}
	return nil
}

// backoff is the policy's delay range for retry k (1-based) of a streak of
// failures without a hint: [lo, hi] from which the delay is drawn.
func (p Policy) backoff(k int) (lo, hi time.Duration) {
	d := float64(p.Base) * math.Pow(p.Multiplier, float64(max(k-1, 0)))
	// Not time.Duration(float64(p.Max)): that overflows for a Max near the
	// int64 limit. The comparison is false for NaN and +Inf too.
	hi = p.Max
	if d < float64(p.Max) {
		hi = min(time.Duration(d), p.Max)
	}
	switch p.Jitter {
	case JitterFull:
		return 0, hi
	case JitterNone:
		return hi, hi
	}
	return hi / 2, hi
}
