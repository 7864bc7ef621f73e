package retry

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failure is an Input for a failure of class c at t0, first attempt, no
// deadline, budget disabled.
func failure(c Class, status int) Input {
	return Input{Assessment: Assessment{Class: c, Status: status}, Attempt: 1, Now: t0, Budget: -1}
}

func (in Input) with(f func(*Input)) Input { f(&in); return in }

func hinted(c Class, wait time.Duration) Input {
	return failure(c, 429).with(func(in *Input) { in.Hint = Hint{wait, SourceRetryAfter} })
}

// before is an Input before attempt n+1, after n attempts, whose last
// failure (if any) was of class c; the pacer lets it go now.
func before(n int, c Class) Input {
	in := Input{Point: BeforeAttempt, Attempt: n, Now: t0, Budget: -1, Pace: Verdict{At: t0, Booked: true}}
	if n > 0 {
		in.Class, in.Status = c, 429
	}
	return in
}

// ended is an Input after a call that ended with n attempts observed.
func ended(n int, c Class) Input {
	return Input{Point: AfterCall, Assessment: Assessment{Class: c}, Attempt: n, Now: t0, Budget: -1}
}

// TestDecideGiveUps has a row for every path by which the engine gives up,
// at each point of a call: the class it gives up with, a part of the
// reason, and whether it is for the deadline.
func TestDecideGiveUps(t *testing.T) {
	cfg := DefaultConfig()
	probe := func(by HoldKind) func(*Input) {
		return func(in *Input) { in.Pace = Verdict{At: t0, Booked: true, Probe: true, By: by} }
	}
	held := func(by HoldKind, until time.Time) func(*Input) {
		return func(in *Input) { in.Pace = Verdict{At: until, Booked: true, By: by}; in.Deadline = ts(5) }
	}
	blocked := Verdict{At: ts(60), By: HeldBlock, Class: QuotaExhausted,
		Reason: "quota_exhausted (HTTP 429): the provider said the credential's quota is exhausted"}
	tests := map[string]struct {
		in       Input
		class    Class
		reason   string // a part of the reason
		deadline bool
	}{
		// After an attempt.
		"canceled":                                    {failure(Canceled, 0), Canceled, "context ended", false},
		"context ended during the attempt":            {failure(Connection, 0).with(func(in *Input) { in.Ended = context.Canceled }), Canceled, "context ended", false},
		"canceled despite x-should-retry true":        {failure(Canceled, 0).with(func(in *Input) { in.ShouldRetry = "true" }), Canceled, "context ended", false},
		"commit point":                                {failure(Connection, 0).with(func(in *Input) { in.Committed = true }), Connection, "commit point", false},
		"x-should-retry false on 503":                 {failure(Overloaded, 503).with(func(in *Input) { in.ShouldRetry = "false" }), Overloaded, "x-should-retry: false", false},
		"x-should-retry false with hint":              {hinted(RateLimited, time.Second).with(func(in *Input) { in.ShouldRetry = "false" }), RateLimited, "x-should-retry: false", false},
		"quota":                                       {failure(QuotaExhausted, 429), QuotaExhausted, "no wait within a run helps", false},
		"too large":                                   {failure(RequestTooLarge, 413), RequestTooLarge, "resending it cannot succeed", false},
		"context length":                              {failure(ContextLength, 400), ContextLength, "longer than the model's context", false},
		"auth":                                        {failure(Auth, 401), Auth, "credentials were refused", false},
		"invalid":                                     {failure(InvalidRequest, 404), InvalidRequest, "rejected the request as invalid", false},
		"body not replayable":                         {failure(ServerError, 500).with(func(in *Input) { in.Replay = ErrNotReplayable }), ServerError, "cannot be sent again", false},
		"long hint confirmed by the probe":            {hinted(RateLimited, time.Hour).with(probe(HeldCheck)), RateLimited, "again when probed, more than the 2m0s maximum", false},
		"long hint confirmed by a block probe":        {hinted(RateLimited, 24*time.Hour).with(probe(HeldBlock)), RateLimited, "24h or more", false},
		"rate limited at max attempts":                {failure(RateLimited, 429).with(func(in *Input) { in.Attempt = 8 }), RateLimited, "8 attempts made", false},
		"server error at max attempts":                {failure(ServerError, 500).with(func(in *Input) { in.Attempt = 4 }), ServerError, "4 attempts made", false},
		"beyond max attempts":                         {failure(Timeout, 0).with(func(in *Input) { in.Attempt = 9 }), Timeout, "9 attempts made", false},
		"x-should-retry true uses server_error limit": {failure(InvalidRequest, 400).with(func(in *Input) { in.ShouldRetry = "true"; in.Attempt = 4 }), InvalidRequest, "4 attempts made", false},
		"budget at half":                              {failure(Overloaded, 529).with(func(in *Input) { in.Budget = 50 }), Overloaded, "retry budget exhausted", false},
		"budget below half":                           {failure(ServerError, 500).with(func(in *Input) { in.Budget = 0 }), ServerError, "retry budget exhausted", false},
		"hint past deadline": {hinted(RateLimited, 10*time.Second).with(func(in *Input) { in.Deadline = ts(5) }), RateLimited,
			"do not fit in the 5s left before the deadline", true},
		"hint exactly at deadline": {hinted(RateLimited, 5*time.Second).with(func(in *Input) { in.Deadline = ts(5) }), RateLimited, "before the deadline", true},
		"hint leaves no time for the attempt": {hinted(RateLimited, 5*time.Second).with(func(in *Input) { in.Deadline = ts(5.04) }), RateLimited,
			"an attempt of at least 50ms", true},
		"hint leaves less than the observed latency": {hinted(RateLimited, 5*time.Second).with(func(in *Input) { in.Deadline = ts(6); in.Pace.Latency = 2 * time.Second }), RateLimited,
			"an attempt of at least 2s", true},
		"deadline already passed": {failure(ServerError, 500).with(func(in *Input) { in.Deadline = ts(-1) }), ServerError, "0s left", true},
		"backoff past deadline":   {failure(RateLimited, 429).with(func(in *Input) { in.Streak = 5; in.Deadline = ts(10) }), RateLimited, "at least 15s", true},

		// Before an attempt.
		"context ended before the first attempt": {before(0, "").with(func(in *Input) { in.Ended = context.Canceled }), Canceled, "before the first attempt", false},
		"context ended while waiting":            {before(2, RateLimited).with(func(in *Input) { in.Ended = context.DeadlineExceeded }), Canceled, "while waiting", false},
		"GetBody failed":                         {before(1, ServerError).with(func(in *Input) { in.Replay = errors.New("disk gone") }), ServerError, "could not be read again for attempt 2: disk gone", false},
		"blocked credential":                     {before(0, "").with(func(in *Input) { in.Pace = blocked }), QuotaExhausted, "the credential's quota is exhausted", false},
		"blocked after a failure of its own":     {before(1, RateLimited).with(func(in *Input) { in.Pace = blocked }), QuotaExhausted, "quota is exhausted", false},
		"held by a hint past the deadline":       {before(1, RateLimited).with(held(HeldHint, ts(30))), RateLimited, "held (hint) for 30s, past the deadline", true},
		"held by a check past the deadline":      {before(0, "").with(held(HeldCheck, ts(6))), RateLimited, "held (long-hint check) for 6s", true},
		"held by an overload past the deadline":  {before(0, "").with(held(HeldOverload, ts(6))), Overloaded, "held (overload) for 6s", true},
		"paced by a window past the deadline":    {before(1, ServerError).with(held(HeldWindow, ts(5.5))), ServerError, "held (window) for 5.5s", true},
		"no time left for an attempt":            {before(0, "").with(func(in *Input) { in.Deadline = ts(0.01) }), Timeout, "an attempt needs at least 50ms and only 10ms is left", true},
		"no time left for the observed latency":  {before(3, ServerError).with(func(in *Input) { in.Deadline = ts(1); in.Pace.Latency = 3 * time.Second }), ServerError, "needs at least 3s", true},

		// After the call.
		"the call's context ended":  {ended(2, RateLimited).with(func(in *Input) { in.Ended = context.Canceled }), Canceled, "ended after attempt 2", false},
		"a stream cut after commit": {ended(1, "").with(func(in *Input) { in.Committed = true }), Connection, "commit point", false},
		"no attempt observed":       {ended(0, ""), Connection, "before any attempt was sent", false},
		"the client stopped":        {ended(3, ServerError), ServerError, "ended the call after attempt 3", false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			d := cfg.Decide(tt.in)
			require.Equal(t, GiveUp, d.Action, "Action (reason: %s)", d.Reason)
			assert.Zero(t, d.Delay, "Delay")
			assert.Equal(t, tt.class, d.Class, "Class")
			assert.Equal(t, tt.deadline, d.Deadline, "Deadline")
			assert.Contains(t, d.Reason, tt.reason, "Reason")
			assert.True(t, strings.HasPrefix(d.Reason, string(d.Class)), "Reason = %q, want it to start with the class %q", d.Reason, d.Class)
		})
	}
}

func TestDecideRetry(t *testing.T) {
	cfg := DefaultConfig()
	full := DefaultConfig()
	full.Policies[ServerError] = Policy{MaxAttempts: 4, Base: time.Second, Max: 8 * time.Second, Multiplier: 2, Jitter: JitterFull}
	none := DefaultConfig()
	none.Policies[ServerError] = Policy{MaxAttempts: 4, Base: time.Second, Max: 8 * time.Second, Multiplier: 3, Jitter: JitterNone}
	ms := time.Millisecond
	tests := map[string]struct {
		cfg             Config
		in              Input
		source          Source
		min, max, delay time.Duration
	}{
		"hint floor, rand 0":                {cfg, hinted(RateLimited, 10*time.Second), SourceRetryAfter, 10 * time.Second, 11 * time.Second, 10 * time.Second},
		"hint, rand 0.5":                    {cfg, hinted(RateLimited, 10*time.Second).with(func(in *Input) { in.Rand = 0.5 }), SourceRetryAfter, 10 * time.Second, 11 * time.Second, 10500 * ms},
		"zero hint: spread min":             {cfg, hinted(RateLimited, 0).with(func(in *Input) { in.Rand = 0.5 }), SourceRetryAfter, 0, 50 * ms, 25 * ms},
		"small hint: spread min":            {cfg, hinted(RateLimited, 100*ms), SourceRetryAfter, 100 * ms, 150 * ms, 100 * ms},
		"large hint: spread max":            {cfg, hinted(RateLimited, 100*time.Second), SourceRetryAfter, 100 * time.Second, 102 * time.Second, 100 * time.Second},
		"hint exactly max":                  {cfg, hinted(RateLimited, 2*time.Minute), SourceRetryAfter, 2 * time.Minute, 2*time.Minute + 2*time.Second, 2 * time.Minute},
		"hint on server error":              {cfg, hinted(ServerError, 3*time.Second), SourceRetryAfter, 3 * time.Second, 3300 * ms, 3 * time.Second},
		"hint resets streak":                {cfg, hinted(RateLimited, time.Second).with(func(in *Input) { in.Streak = 6 }), SourceRetryAfter, time.Second, 1100 * ms, time.Second},
		"backoff streak 0":                  {cfg, failure(RateLimited, 429), SourceBackoff, 500 * ms, time.Second, 500 * ms},
		"backoff streak 1":                  {cfg, failure(RateLimited, 429).with(func(in *Input) { in.Streak = 1 }), SourceBackoff, time.Second, 2 * time.Second, time.Second},
		"backoff streak 3":                  {cfg, failure(RateLimited, 429).with(func(in *Input) { in.Streak = 3; in.Rand = 0.5 }), SourceBackoff, 4 * time.Second, 8 * time.Second, 6 * time.Second},
		"backoff capped":                    {cfg, failure(RateLimited, 429).with(func(in *Input) { in.Streak = 5 }), SourceBackoff, 15 * time.Second, 30 * time.Second, 15 * time.Second},
		"backoff capped far":                {cfg, failure(RateLimited, 429).with(func(in *Input) { in.Streak = 5000 }), SourceBackoff, 15 * time.Second, 30 * time.Second, 15 * time.Second},
		"server error backoff":              {cfg, failure(ServerError, 500).with(func(in *Input) { in.Attempt = 3; in.Streak = 2 }), SourceBackoff, time.Second, 2 * time.Second, time.Second},
		"connection backoff":                {cfg, failure(Connection, 0), SourceBackoff, 125 * ms, 250 * ms, 125 * ms},
		"timeout backoff":                   {cfg, failure(Timeout, 504), SourceBackoff, 500 * ms, time.Second, 500 * ms},
		"conflict backoff":                  {cfg, failure(Conflict, 409), SourceBackoff, 250 * ms, 500 * ms, 250 * ms},
		"overloaded: the limit's hold":      {cfg, failure(Overloaded, 529), SourceBackoff, time.Second, time.Second, time.Second},
		"overloaded probe: the longer hold": {cfg, failure(Overloaded, 529).with(func(in *Input) { in.Rand = 0.5; in.Pace.Probe = true }), SourceBackoff, 5250 * ms, 5250 * ms, 5250 * ms},
		"a long hint is checked by a probe": {cfg, hinted(RateLimited, time.Hour), SourceRetryAfter, time.Second, 1100 * ms, time.Second},
		"a hint past the stated window":     {cfg, hinted(RateLimited, 90*time.Second).with(func(in *Input) { in.Window = time.Minute }), SourceRetryAfter, time.Second, 1100 * ms, time.Second},
		"a hint past the pacer's window":    {cfg, hinted(RateLimited, 90*time.Second).with(func(in *Input) { in.Pace.Window = time.Minute }), SourceRetryAfter, time.Second, 1100 * ms, time.Second},
		"a hint within the window":          {cfg, hinted(RateLimited, 61*time.Second).with(func(in *Input) { in.Window = time.Minute }), SourceRetryAfter, 61 * time.Second, 63 * time.Second, 61 * time.Second},
		"a probe's long hint below max":     {cfg, hinted(RateLimited, 90*time.Second).with(func(in *Input) { in.Window = time.Minute; in.Pace = Verdict{Probe: true, By: HeldCheck} }), SourceRetryAfter, 90 * time.Second, 92 * time.Second, 90 * time.Second},
		"jitter full":                       {full, failure(ServerError, 500).with(func(in *Input) { in.Streak = 1; in.Rand = 0.25 }), SourceBackoff, 0, 2 * time.Second, 500 * ms},
		"jitter none":                       {none, failure(ServerError, 500).with(func(in *Input) { in.Streak = 1; in.Rand = 0.9 }), SourceBackoff, 3 * time.Second, 3 * time.Second, 3 * time.Second},
		"jitter none capped":                {none, failure(ServerError, 500).with(func(in *Input) { in.Streak = 2 }), SourceBackoff, 8 * time.Second, 8 * time.Second, 8 * time.Second},
		"x-should-retry true on 400":        {cfg, failure(InvalidRequest, 400).with(func(in *Input) { in.ShouldRetry = "true" }), SourceBackoff, 250 * ms, 500 * ms, 250 * ms},
		"x-should-retry true on quota":      {cfg, failure(QuotaExhausted, 429).with(func(in *Input) { in.ShouldRetry = "true"; in.Attempt = 3 }), SourceBackoff, 250 * ms, 500 * ms, 250 * ms},
		"x-should-retry true on retryable":  {cfg, failure(RateLimited, 429).with(func(in *Input) { in.ShouldRetry = "true"; in.Attempt = 7 }), SourceBackoff, 500 * ms, time.Second, 500 * ms},
		"below attempt limit":               {cfg, failure(RateLimited, 429).with(func(in *Input) { in.Attempt = 7 }), SourceBackoff, 500 * ms, time.Second, 500 * ms},
		"budget above half":                 {cfg, failure(Overloaded, 529).with(func(in *Input) { in.Budget = 50.1 }), SourceBackoff, time.Second, time.Second, time.Second},
		"budget ignores rate limits":        {cfg, failure(RateLimited, 429).with(func(in *Input) { in.Budget = 0 }), SourceBackoff, 500 * ms, time.Second, 500 * ms},
		"deadline caps max":                 {cfg, hinted(RateLimited, 10*time.Second).with(func(in *Input) { in.Deadline = ts(10.55); in.Rand = 0.5 }), SourceRetryAfter, 10 * time.Second, 10500 * ms, 10250 * ms},
		"deadline caps backoff":             {cfg, failure(RateLimited, 429).with(func(in *Input) { in.Streak = 5; in.Deadline = ts(20.05) }), SourceBackoff, 15 * time.Second, 20 * time.Second, 15 * time.Second},
		"deadline leaves the latency":       {cfg, hinted(RateLimited, 10*time.Second).with(func(in *Input) { in.Deadline = ts(13); in.Pace.Latency = 2 * time.Second }), SourceRetryAfter, 10 * time.Second, 11 * time.Second, 10 * time.Second},
		"far deadline no cap":               {cfg, hinted(RateLimited, time.Second).with(func(in *Input) { in.Deadline = ts(3600) }), SourceRetryAfter, time.Second, 1100 * ms, time.Second},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			d := tt.cfg.Decide(tt.in)
			require.Equal(t, Retry, d.Action, "Action (reason: %s)", d.Reason)
			assert.Equal(t, tt.source, d.HintSource, "HintSource")
			assert.Equal(t, tt.min, d.DelayMin, "range min")
			assert.Equal(t, tt.max, d.DelayMax, "range max")
			assert.Equal(t, tt.delay, d.Delay, "Delay")
			assert.False(t, d.Deadline, "Deadline")
			if !tt.in.Deadline.IsZero() {
				assert.LessOrEqual(t, tt.in.Now.Add(d.Delay), tt.in.Deadline, "Delay %v passes the deadline %v", d.Delay, tt.in.Deadline.Sub(tt.in.Now))
			}
			assert.Contains(t, d.Reason, "retrying in", "Reason must say it is retrying")
		})
	}
}

func TestDecideSuccess(t *testing.T) {
	cfg := DefaultConfig()
	d := cfg.Decide(Input{Attempt: 0, Now: t0, Budget: 0})
	assert.Equal(t, Success, d.Action, "Decide(success).Action")
	assert.Equal(t, "succeeded", d.Reason, "Decide(success).Reason")
	assert.Zero(t, d.Delay, "Decide(success).Delay")
	assert.Equal(t, 1, d.Attempt, "Attempt (0 reads as the first attempt)")
}

func TestDecideReason(t *testing.T) {
	cfg := DefaultConfig()
	d := cfg.Decide(hinted(RateLimited, 1146*time.Millisecond).with(func(in *Input) { in.Attempt = 2 }))
	assert.Equal(t, "rate_limited (HTTP 429): the server asked for 1.146s (retry-after); retrying in 1.146s (range 1.146s–1.261s), attempt 3 of at most 8", d.Reason)
	d = cfg.Decide(failure(Connection, 0))
	assert.Equal(t, "connection: no usable hint, backoff; retrying in 125ms (range 125ms–250ms), attempt 2 of at most 4", d.Reason)
}

// TestDecideMaxAttempts pins that MaxAttempts counts the first attempt:
// MaxAttempts n allows n−1 retries; 0 and 1 allow none.
func TestDecideMaxAttempts(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 5} {
		cfg := Config{Policies: map[Class]Policy{Timeout: {MaxAttempts: n, Base: time.Second, Max: time.Second}}}
		require.NoError(t, cfg.Validate())
		retries := 0
		for attempt := 1; attempt <= 10; attempt++ {
			if cfg.Decide(failure(Timeout, 0).with(func(in *Input) { in.Attempt = attempt })).Action != Retry {
				break
			}
			retries++
		}
		assert.Equal(t, max(n-1, 0), retries, "MaxAttempts %d: retries", n)
	}
}

// TestDecideHugeSpread: hint plus spread saturates instead of wrapping.
func TestDecideHugeSpread(t *testing.T) {
	cfg := Config{SpreadMin: math.MaxInt64, SpreadMax: math.MaxInt64}
	require.NoError(t, cfg.Validate())
	d := cfg.Decide(hinted(RateLimited, time.Second).with(func(in *Input) { in.Rand = 0.5 }))
	assert.Equal(t, Retry, d.Action, "Decide")
	assert.Equal(t, time.Second, d.DelayMin, "DelayMin")
	assert.Equal(t, time.Duration(math.MaxInt64), d.DelayMax, "DelayMax saturates")
	assert.GreaterOrEqual(t, d.Delay, time.Second, "Delay")
}

func TestDecideUnfilledConfig(t *testing.T) {
	var cfg Config // no policies: nothing is retried
	assert.Equal(t, GiveUp, cfg.Decide(failure(RateLimited, 429)).Action, "Action")
}

func TestBackoff(t *testing.T) {
	tests := map[string]struct {
		p      Policy
		k      int
		lo, hi time.Duration
	}{
		"first":           {Policy{Base: time.Second, Max: time.Minute, Multiplier: 2}, 1, 500 * time.Millisecond, time.Second},
		"k zero as first": {Policy{Base: time.Second, Max: time.Minute, Multiplier: 2}, 0, 500 * time.Millisecond, time.Second},
		"third":           {Policy{Base: time.Second, Max: time.Minute, Multiplier: 2, Jitter: JitterNone}, 3, 4 * time.Second, 4 * time.Second},
		"multiplier 1.5":  {Policy{Base: time.Second, Max: time.Minute, Multiplier: 1.5, Jitter: JitterNone}, 3, 2250 * time.Millisecond, 2250 * time.Millisecond},
		"capped":          {Policy{Base: time.Second, Max: 5 * time.Second, Multiplier: 2, Jitter: JitterFull}, 10, 0, 5 * time.Second},
		"infinite growth": {Policy{Base: time.Second, Max: 5 * time.Second, Multiplier: 10, Jitter: JitterNone}, 1000, 5 * time.Second, 5 * time.Second},
		"huge max":        {Policy{Base: time.Second, Max: math.MaxInt64, Multiplier: 2, Jitter: JitterNone}, 1000, math.MaxInt64, math.MaxInt64},
		"zero base":       {Policy{Base: 0, Max: 0, Multiplier: 2}, 4, 0, 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			lo, hi := tt.p.backoff(tt.k)
			assert.Equal(t, tt.lo, lo, "backoff(%d) low", tt.k)
			assert.Equal(t, tt.hi, hi, "backoff(%d) high", tt.k)
		})
	}
}

func TestValidate(t *testing.T) {
	policy := func(f func(*Policy)) map[Class]Policy {
		p := DefaultPolicies[RateLimited]
		f(&p)
		return map[Class]Policy{RateLimited: p}
	}
	tests := map[string]struct {
		cfg Config
		key string
	}{
		"max_attempts":           {Config{Policies: policy(func(p *Policy) { p.MaxAttempts = -1 })}, "policies.rate_limited.max_attempts"},
		"base":                   {Config{Policies: policy(func(p *Policy) { p.Base = -time.Second })}, "policies.rate_limited.base"},
		"max below base":         {Config{Policies: policy(func(p *Policy) { p.Max = p.Base - 1 })}, "policies.rate_limited.max"},
		"multiplier below 1":     {Config{Policies: policy(func(p *Policy) { p.Multiplier = 0.5 })}, "policies.rate_limited.multiplier"},
		"multiplier NaN":         {Config{Policies: policy(func(p *Policy) { p.Multiplier = math.NaN() })}, "policies.rate_limited.multiplier"},
		"multiplier Inf":         {Config{Policies: policy(func(p *Policy) { p.Multiplier = math.Inf(1) })}, "policies.rate_limited.multiplier"},
		"jitter":                 {Config{Policies: policy(func(p *Policy) { p.Jitter = "random" })}, "policies.rate_limited.jitter"},
		"unknown class":          {Config{Policies: map[Class]Policy{"teapot": {MaxAttempts: 2}}}, "policies.teapot"},
		"max_hint":               {Config{MaxHint: -time.Second}, "max_hint"},
		"spread negative":        {Config{Spread: -0.1}, "spread"},
		"spread above 1":         {Config{Spread: 1.5}, "spread"},
		"spread NaN":             {Config{Spread: math.NaN()}, "spread"},
		"spread_min":             {Config{SpreadMin: -time.Millisecond}, "spread_min"},
		"spread_max":             {Config{SpreadMin: 3 * time.Second, SpreadMax: time.Second}, "spread_max"},
		"budget.ratio":           {Config{Budget: BudgetConfig{Ratio: -1}}, "budget.ratio"},
		"budget.ratio NaN":       {Config{Budget: BudgetConfig{Ratio: math.NaN()}}, "budget.ratio"},
		"budget.ratio Inf":       {Config{Budget: BudgetConfig{Ratio: math.Inf(1)}}, "budget.ratio"},
		"budget.max_tokens NaN":  {Config{Budget: BudgetConfig{MaxTokens: math.NaN()}}, "budget.max_tokens"},
		"budget.max_tokens Inf":  {Config{Budget: BudgetConfig{MaxTokens: math.Inf(1)}}, "budget.max_tokens"},
		"overload.base":          {Config{Overload: OverloadConfig{Base: -time.Second}}, "overload.base"},
		"overload.max":           {Config{Overload: OverloadConfig{Base: time.Minute, Max: time.Second}}, "overload.max"},
		"overload.probe_timeout": {Config{Overload: OverloadConfig{ProbeTimeout: -time.Second}}, "overload.probe_timeout"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := tt.cfg.Validate()
			require.ErrorIs(t, err, ErrConfig, "Validate()")
			assert.ErrorContains(t, err, tt.key+" = ", "Validate() must name the key")
			_, err = New(tt.cfg)
			assert.ErrorIs(t, err, ErrConfig, "New()")
		})
	}
}

func TestValidateFillsDefaults(t *testing.T) {
	cfg := Config{Policies: map[Class]Policy{Timeout: {MaxAttempts: 5, Base: time.Second, Max: 2 * time.Second}}, Budget: BudgetConfig{MaxTokens: -1}}
	require.NoError(t, cfg.Validate(), "Validate()")
	checks := map[string]struct{ got, want any }{
		"max_hint":               {cfg.MaxHint, 2 * time.Minute},
		"spread":                 {cfg.Spread, 0.1},
		"spread_min":             {cfg.SpreadMin, 50 * time.Millisecond},
		"spread_max":             {cfg.SpreadMax, 2 * time.Second},
		"budget.max_tokens kept": {cfg.Budget.MaxTokens, -1.0},
		"budget.ratio":           {cfg.Budget.Ratio, 0.1},
		"overload.base":          {cfg.Overload.Base, time.Second},
		"overload.max":           {cfg.Overload.Max, 5 * time.Second},
		"probe.soon":             {cfg.Probe.Soon, time.Second},
		"probe.interval":         {cfg.Probe.Interval, time.Minute},
		"min_attempt_time":       {cfg.MinAttemptTime, 50 * time.Millisecond},
		"overload.probe_timeout": {cfg.Overload.ProbeTimeout, 30 * time.Second},
		"timeout policy kept":    {cfg.Policies[Timeout].MaxAttempts, 5},
		"timeout jitter":         {cfg.Policies[Timeout].Jitter, JitterEqual},
		"timeout multiplier":     {cfg.Policies[Timeout].Multiplier, 2.0},
		"rate_limited default":   {cfg.Policies[RateLimited].MaxAttempts, 8},
		"default not mutated":    {DefaultPolicies[Timeout].MaxAttempts, 3},
		"default jitter unset":   {DefaultPolicies[Timeout].Jitter, Jitter("")},
		"policies":               {len(cfg.Policies), len(DefaultPolicies)},
	}
	for name, c := range checks {
		assert.Equal(t, c.want, c.got, name)
	}
	d := DefaultConfig()
	assert.NoError(t, d.Validate(), "DefaultConfig().Validate()")
	assert.Equal(t, 100.0, d.Budget.MaxTokens, "default budget.max_tokens")
	r, err := New(Config{})
	require.NoError(t, err)
	assert.Equal(t, 2*time.Minute, r.Config().MaxHint, "New(Config{}).Config().MaxHint")
}

func TestBudget(t *testing.T) {
	b := budget{cfg: BudgetConfig{MaxTokens: 4, Ratio: 0.5}, tokens: map[Key]float64{}}
	steps := []struct {
		class Class
		want  float64
	}{
		{ServerError, 3}, {Overloaded, 2}, {RateLimited, 2}, {Timeout, 2}, {"", 2.5}, {"", 3},
		{Overloaded, 2}, {Overloaded, 1}, {Overloaded, 0}, {Overloaded, 0}, {"", 0.5},
		{"", 1}, {"", 1.5}, {"", 2}, {"", 2.5}, {"", 3}, {"", 3.5}, {"", 4}, {"", 4},
	}
	for i, s := range steps {
		require.Equal(t, s.want, b.record(Key{Model: "k"}, s.class), "step %d (%q): tokens", i, s.class)
		require.Equal(t, s.want, b.peek(Key{Model: "k"}), "step %d: peek", i)
	}
	assert.Empty(t, b.tokens, "a full bucket is kept")
	assert.Equal(t, 4.0, b.peek(Key{Model: "other"}), "peek(other) (full)")
	off := budget{cfg: BudgetConfig{MaxTokens: -1}}
	assert.Equal(t, -1.0, off.record(Key{Model: "k"}, Overloaded), "disabled budget")
}

func TestErrorMessage(t *testing.T) {
	e := &Error{Decision: Decision{Reason: "rate_limited (HTTP 429): 8 attempts made"}, Attempts: 8, Waited: 1500 * time.Millisecond,
		Err: &ResponseError{Status: 429}}
	assert.EqualError(t, e, "retry: gave up after 8 attempts (waited 1.5s): rate_limited (HTTP 429): 8 attempts made: retry: HTTP 429 Too Many Requests")
	e = &Error{Decision: Decision{Reason: "r"}, Attempts: 1}
	assert.EqualError(t, e, "retry: gave up after 1 attempt: r")
	assert.Empty(t, e.Unwrap(), "Unwrap()")
	e = &Error{Err: errIO, Cause: ErrDeadline}
	assert.ErrorIs(t, e, context.DeadlineExceeded)
	assert.ErrorIs(t, e, ErrDeadline)
	assert.ErrorIs(t, e, errIO, "the last error")
	assert.Equal(t, "1.235s", fmtDur(1234567890*time.Nanosecond), "fmtDur")
	assert.Equal(t, "500ns", fmtDur(500*time.Nanosecond), "fmtDur")
}

var errIO = errors.New("io")

func TestDecideListedNonRetryableClass(t *testing.T) {
	cfg := Config{Policies: map[Class]Policy{QuotaExhausted: {MaxAttempts: 2, Base: time.Second, Max: time.Second}}}
	require.NoError(t, cfg.Validate())
	in := Input{Assessment: Assessment{Class: QuotaExhausted, Status: 429}, Attempt: 1, Now: t0, Budget: -1}
	d := cfg.Decide(in)
	assert.Equal(t, Retry, d.Action, "listed quota_exhausted (%s)", d.Reason)
	in.Attempt = 2
	assert.Equal(t, GiveUp, cfg.Decide(in).Action, "listed quota_exhausted at its attempt limit")
	def := DefaultConfig()
	in.Attempt = 1
	assert.Equal(t, GiveUp, def.Decide(in).Action, "unlisted quota_exhausted")
}

func TestDecideSaturatedHintReason(t *testing.T) {
	cfg := DefaultConfig()
	in := Input{Assessment: Assessment{Class: RateLimited, Status: 429, Hint: Hint{maxWait, SourceRetryAfter}}, Attempt: 1, Now: t0, Budget: -1}
	d := cfg.Decide(in)
	assert.Equal(t, Retry, d.Action, "a retry behind a check")
	assert.Contains(t, d.Reason, "24h or more")
	assert.Equal(t, HeldCheck, d.Hold.By, "a retry behind a check")
	in.Pace = Verdict{Probe: true, By: HeldCheck}
	d = cfg.Decide(in)
	assert.Equal(t, GiveUp, d.Action, "a give-up after the check")
	assert.Contains(t, d.Reason, "24h or more")
	assert.Equal(t, HeldBlock, d.Hold.By, "a block after the check")
}

// TestSDKDecision checks the SDKs' rule as SDKDecision states it.
func TestSDKDecision(t *testing.T) {
	out := func(c Class, status int) Assessment { return Assessment{Class: c, Status: status} }
	tests := map[string]struct {
		a       Assessment
		attempt int
		ended   error
		want    Action
		reason  string
	}{
		"success":                     {out("", 200), 1, nil, Success, "succeeded"},
		"429 retried":                 {out(RateLimited, 429), 1, nil, Retry, "retry 1 of 2"},
		"quota 429 retried too":       {out(QuotaExhausted, 429), 2, nil, Retry, "retry 2 of 2"},
		"429 after two retries":       {out(RateLimited, 429), 3, nil, GiveUp, "2 retries are spent"},
		"500 retried":                 {out(ServerError, 500), 1, nil, Retry, "own backoff"},
		"408 retried":                 {out(Timeout, 408), 1, nil, Retry, "own backoff"},
		"409 retried":                 {out(Conflict, 409), 1, nil, Retry, "own backoff"},
		"no response retried":         {out(Connection, 0), 1, nil, Retry, "own backoff"},
		"400 not retried":             {out(InvalidRequest, 400), 1, nil, GiveUp, "does not retry this"},
		"402 not retried":             {out(QuotaExhausted, 402), 1, nil, GiveUp, "does not retry this"},
		"x-should-retry false on 503": {Assessment{Class: Overloaded, Status: 503, ShouldRetry: "false"}, 1, nil, GiveUp, "does not retry this"},
		"x-should-retry true on 400":  {Assessment{Class: InvalidRequest, Status: 400, ShouldRetry: "true"}, 1, nil, Retry, "own backoff"},
		"context ended":               {out(Connection, 0), 1, context.Canceled, GiveUp, "context ended"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			d := SDKDecision(Input{Assessment: tt.a, Attempt: tt.attempt, Ended: tt.ended}, SDKRetries)
			assert.Equal(t, tt.want, d.Action, "Action (%s)", d.Reason)
			assert.Contains(t, d.Reason, tt.reason, "Reason")
			assert.Zero(t, d.Delay, "Delay")
			if tt.ended != nil {
				assert.Equal(t, Canceled, d.Class, "Class")
			}
		})
	}
}
