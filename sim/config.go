package sim

import (
	"errors"
	"fmt"
	"time"
)

// DefaultLatency is the time to answer an admitted request when
// Config.Latency is zero.
const DefaultLatency = 200 * time.Millisecond

// Config configures a Provider. The zero value is a valid configuration: no
// rate limits, no faults, truthful hints and DefaultLatency.
//
// Limits are per minute and apply per (credential, model) pair; each is a
// token bucket that refills continuously at limit/60 units per second, holds
// at most limit × Burst units and starts full. A limit of zero means that
// dimension is unlimited (and its rate-limit headers are omitted).
//
// Rates (ErrorRate, SlowRate, ResetRate, StreamErrorRate) are probabilities in
// [0, 1] drawn per request from a generator seeded with Seed.
type Config struct {
	// Seed seeds the fault schedule. Each request draws four numbers on
	// arrival, whatever its fate. A request that names its call
	// (CallHeader) draws them from the seed, the call and its attempt
	// number, so the same seed gives every call the same faults whatever
	// the order of arrivals. Other requests draw from one stream seeded with
	// Seed, in the order they take the provider's lock: the same seed and
	// the same sequence of requests give the same faults.
	Seed uint64

	// RPM is the requests-per-minute limit, used by every dialect. A request
	// costs 1.
	RPM int
	// TPM is the tokens-per-minute limit of the OpenAI and Gemini dialects.
	// A request costs its input tokens plus its output tokens, charged at
	// admission (as OpenAI does).
	TPM int
	// ITPM is the input-tokens-per-minute limit of the Anthropic dialect.
	// A request costs its input tokens, charged at admission.
	ITPM int
	// OTPM is the output-tokens-per-minute limit of the Anthropic dialect.
	// A request costs its output tokens (max_tokens, or DefaultOutputTokens),
	// charged at admission; nothing is refunded when the reply is shorter.
	OTPM int
	// Burst is the bucket capacity as a fraction of a minute's limit: the
	// capacity of each bucket is limit × Burst. Zero means 1.0 (one minute's
	// worth). A request whose cost exceeds the capacity can never be admitted
	// and is rejected as too large. The limit headers report the per-minute
	// limit; remaining counts what the bucket holds.
	Burst float64

	// HintMode selects what a 429 says about when to retry. The zero value
	// is HintTruthful.
	HintMode HintMode
	// NoRateHeaders omits the rate-limit headers (x-ratelimit-*,
	// anthropic-ratelimit-*) from every response, as a gateway that strips
	// them does. With HintOmit, a client learns nothing but the refusal.
	NoRateHeaders bool

	// Latency is the time an admitted request takes before its response (or,
	// when streaming, its first byte) is written. Zero means DefaultLatency;
	// a negative value means no delay. Rejections (429, 413, overload,
	// quota) are answered immediately.
	Latency time.Duration
	// Transit is the network's one-way delay: a request reaches the
	// provider Transit after the client sent it, and every answer, a
	// rejection's included, reaches the client Transit after the provider
	// gave it. Requests arriving at one instant are admitted in the order
	// they were sent. Zero (or negative) means none: rejections are then
	// answered the instant the request is sent, and no two calls sent at
	// once are ever both in flight before one of them is answered.
	Transit time.Duration
	// SlowRate is the fraction of admitted requests that take SlowLatency
	// instead of Latency.
	SlowRate float64
	// SlowLatency replaces Latency for slow requests. Zero means ten times
	// the effective Latency.
	SlowLatency time.Duration

	// ErrorRate is the fraction of admitted requests answered with a 500
	// server error after Latency. These requests were charged to the rate
	// limits and count toward QuotaAfter, like a provider that counted the
	// request before failing.
	ErrorRate float64
	// ResetRate is the fraction of requests whose connection is reset before
	// any response: the handler panics with http.ErrAbortHandler. Decided on
	// arrival; such requests are not charged.
	ResetRate float64
	// StreamErrorRate is the fraction of successful streaming responses that
	// are cut after about half of their events: the handler panics with
	// http.ErrAbortHandler after flushing them. Such requests were charged.
	StreamErrorRate float64

	// Overloads are windows, relative to the provider's start, during which
	// every request is answered with an overload error and not charged.
	Overloads []Window
	// QuotaAfter, when positive, makes every request of a credential fail
	// with the dialect's billing/quota error once QuotaAfter requests of
	// that credential have been admitted. Zero means no quota.
	QuotaAfter int
	// BlockAfter, when positive, blocks a credential for BlockFor once
	// BlockAfter of its requests have been admitted: every request of it is
	// then refused with the dialect's rate-limit 429 (not charged), whose
	// hints state the block's time left truthfully, whatever HintMode says
	// — a limit that really is exhausted for long.
	BlockAfter int
	BlockFor   time.Duration
	// Capacity scales all limits over time: from each step's At onward the
	// limits are multiplied by its Factor. Before the first step the factor
	// is 1. Steps must be in increasing order of At. Buckets refill at the
	// rate in effect at each instant; a step down shrinks a fuller bucket to
	// the new capacity. Headers and hints use the limits in effect when the
	// request arrives, and a hint does not anticipate a later step.
	Capacity []Step
}

// Window is an interval [Start, End) measured from the provider's start.
type Window struct {
	Start, End time.Duration
	// Status is the HTTP status of the overload response. Zero means the
	// dialect's usual one: 529 for Anthropic, 503 for OpenAI and Gemini.
	Status int
}

// Step multiplies every limit by Factor from At (measured from the provider's
// start) until the next step. Factor must be positive.
type Step struct {
	At     time.Duration
	Factor float64
}

// HintMode selects how a rate-limited (429) response says when to retry. In
// every mode the rate-limit state headers (x-ratelimit-*,
// anthropic-ratelimit-*) stay truthful.
type HintMode string

const (
	// HintTruthful states the exact wait until the request would fit:
	// retry-after-ms in milliseconds (OpenAI dialect), retry-after in whole
	// seconds rounded up (all dialects), the wait in the OpenAI error message
	// and a google.rpc.RetryInfo retryDelay (Gemini).
	HintTruthful HintMode = "truthful"
	// HintOmit states no wait: no retry-after headers, no RetryInfo and no
	// wait in the message.
	HintOmit HintMode = "omit"
	// HintLieLong states a wait of one hour: retry-after: 3600 (and
	// retry-after-ms: 3600000, RetryInfo "3600s", "Please try again in
	// 1h0m0s." where the dialect has them).
	HintLieLong HintMode = "lie-long"
	// HintLiePast sends retry-after as an HTTP-date one hour in the past and
	// no other hint.
	HintLiePast HintMode = "lie-past"
	// HintLieZero states a wait of zero: retry-after: 0 (and
	// retry-after-ms: 0, RetryInfo "0s", "Please try again in 0s.").
	HintLieZero HintMode = "lie-zero"
)

// ErrInvalidConfig is wrapped by every error New returns for a Config it
// rejects.
var ErrInvalidConfig = errors.New("sim: invalid config")

func (c Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.RPM < 0 || c.TPM < 0 || c.ITPM < 0 || c.OTPM < 0 {
		return bad("negative limit")
	}
	if c.Burst < 0 {
		return bad("negative Burst %v", c.Burst)
	}
	switch c.HintMode {
	case "", HintTruthful, HintOmit, HintLieLong, HintLiePast, HintLieZero:
	default:
		return bad("unknown HintMode %q", c.HintMode)
	}
	for name, r := range map[string]float64{
		"ErrorRate": c.ErrorRate, "SlowRate": c.SlowRate,
		"ResetRate": c.ResetRate, "StreamErrorRate": c.StreamErrorRate,
	} {
		if r < 0 || r > 1 {
			return bad("%s %v not in [0, 1]", name, r)
		}
	}
	if c.SlowLatency < 0 {
		return bad("negative SlowLatency")
	}
	for i, w := range c.Overloads {
		if w.End <= w.Start {
			return bad("Overloads[%d]: End %v not after Start %v", i, w.End, w.Start)
		}
		if w.Status != 0 && (w.Status < 400 || w.Status > 599) {
			return bad("Overloads[%d]: Status %d is not an error status", i, w.Status)
		}
	}
	if c.QuotaAfter < 0 {
		return bad("negative QuotaAfter")
	}
	if c.BlockAfter < 0 || c.BlockFor < 0 || c.BlockAfter > 0 && c.BlockFor == 0 {
		return bad("BlockAfter %d, BlockFor %v: want both positive, or BlockAfter 0", c.BlockAfter, c.BlockFor)
	}
	for i, s := range c.Capacity {
		if s.Factor <= 0 {
			return bad("Capacity[%d]: Factor %v is not positive", i, s.Factor)
		}
		if i > 0 && s.At <= c.Capacity[i-1].At {
			return bad("Capacity[%d]: At %v not after the previous step", i, s.At)
		}
	}
	return nil
}

// latency returns the effective base latency.
func (c Config) latency() time.Duration {
	switch {
	case c.Latency == 0:
		return DefaultLatency
	case c.Latency < 0:
		return 0
	}
	return c.Latency
}

// slowLatency returns the effective latency of slow requests.
func (c Config) slowLatency() time.Duration {
	if c.SlowLatency == 0 {
		return 10 * c.latency()
	}
	return c.SlowLatency
}

// burst returns the effective Burst.
func (c Config) burst() float64 {
	if c.Burst == 0 {
		return 1
	}
	return c.Burst
}

// overload returns the overload window containing elapsed, if any.
func (c Config) overload(elapsed time.Duration) (Window, bool) {
	for _, w := range c.Overloads {
		if elapsed >= w.Start && elapsed < w.End {
			return w, true
		}
	}
	return Window{}, false
}
