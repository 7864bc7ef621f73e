package retry

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
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
			if d.Action != GiveUp {
				t.Fatalf("Action = %q, want %q (reason: %s)", d.Action, GiveUp, d.Reason)
			}
			if d.Delay != 0 {
				t.Errorf("Delay = %v, want 0", d.Delay)
			}
			if d.Class != tt.class {
				t.Errorf("Class = %q, want %q", d.Class, tt.class)
			}
			if d.Deadline != tt.deadline {
				t.Errorf("Deadline = %v, want %v", d.Deadline, tt.deadline)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to contain %q", d.Reason, tt.reason)
			}
			if !strings.HasPrefix(d.Reason, string(d.Class)) {
				t.Errorf("Reason = %q, want it to start with the class %q", d.Reason, d.Class)
			}
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
			if d.Action != Retry {
				t.Fatalf("Action = %q, want %q (reason: %s)", d.Action, Retry, d.Reason)
			}
			if d.HintSource != tt.source {
				t.Errorf("HintSource = %q, want %q", d.HintSource, tt.source)
			}
			if d.DelayMin != tt.min || d.DelayMax != tt.max {
				t.Errorf("range = [%v, %v], want [%v, %v]", d.DelayMin, d.DelayMax, tt.min, tt.max)
			}
			if d.Delay != tt.delay {
				t.Errorf("Delay = %v, want %v", d.Delay, tt.delay)
			}
			if d.Deadline {
				t.Error("Deadline = true, want false")
			}
			if !tt.in.Deadline.IsZero() && tt.in.Now.Add(d.Delay).After(tt.in.Deadline) {
				t.Errorf("Delay %v passes the deadline %v", d.Delay, tt.in.Deadline.Sub(tt.in.Now))
			}
			if !strings.Contains(d.Reason, "retrying in") {
				t.Errorf("Reason = %q, want it to say it is retrying", d.Reason)
			}
		})
	}
}

func TestDecideSuccess(t *testing.T) {
	cfg := DefaultConfig()
	d := cfg.Decide(Input{Attempt: 0, Now: t0, Budget: 0})
	if d.Action != Success || d.Reason != "succeeded" || d.Delay != 0 {
		t.Errorf("Decide(success) = %q %q %v, want %q %q 0", d.Action, d.Reason, d.Delay, Success, "succeeded")
	}
	if d.Attempt != 1 {
		t.Errorf("Attempt = %d, want 1 (0 reads as the first attempt)", d.Attempt)
	}
}

func TestDecideReason(t *testing.T) {
	cfg := DefaultConfig()
	d := cfg.Decide(hinted(RateLimited, 1146*time.Millisecond).with(func(in *Input) { in.Attempt = 2 }))
	want := "rate_limited (HTTP 429): the server asked for 1.146s (retry-after); retrying in 1.146s (range 1.146s–1.261s), attempt 3 of at most 8"
	if d.Reason != want {
		t.Errorf("Reason = %q\nwant %q", d.Reason, want)
	}
	d = cfg.Decide(failure(Connection, 0))
	if want := "connection: no usable hint, backoff; retrying in 125ms (range 125ms–250ms), attempt 2 of at most 4"; d.Reason != want {
		t.Errorf("Reason = %q\nwant %q", d.Reason, want)
	}
}

// TestDecideMaxAttempts pins that MaxAttempts counts the first attempt:
// MaxAttempts n allows n−1 retries; 0 and 1 allow none.
func TestDecideMaxAttempts(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 5} {
		cfg := Config{Policies: map[Class]Policy{Timeout: {MaxAttempts: n, Base: time.Second, Max: time.Second}}}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		retries := 0
		for attempt := 1; attempt <= 10; attempt++ {
			if cfg.Decide(failure(Timeout, 0).with(func(in *Input) { in.Attempt = attempt })).Action != Retry {
				break
			}
			retries++
		}
		if want := max(n-1, 0); retries != want {
			t.Errorf("MaxAttempts %d: got %d retries, want %d", n, retries, want)
		}
	}
}

// TestDecideHugeSpread: hint plus spread saturates instead of wrapping.
func TestDecideHugeSpread(t *testing.T) {
	cfg := Config{SpreadMin: math.MaxInt64, SpreadMax: math.MaxInt64}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := cfg.Decide(hinted(RateLimited, time.Second).with(func(in *Input) { in.Rand = 0.5 }))
	if d.Action != Retry || d.DelayMin != time.Second || d.DelayMax != math.MaxInt64 || d.Delay < time.Second {
		t.Errorf("Decide = %q, delay %v in [%v, %v]; want a retry of at least 1s in [1s, max]", d.Action, d.Delay, d.DelayMin, d.DelayMax)
	}
}

func TestDecideUnfilledConfig(t *testing.T) {
	var cfg Config // no policies: nothing is retried
	if d := cfg.Decide(failure(RateLimited, 429)); d.Action != GiveUp {
		t.Errorf("Action = %q, want %q", d.Action, GiveUp)
	}
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
			if lo != tt.lo || hi != tt.hi {
				t.Errorf("backoff(%d) = [%v, %v], want [%v, %v]", tt.k, lo, hi, tt.lo, tt.hi)
			}
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
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.key+" = ") {
				t.Errorf("Validate() = %q, want it to name %q", err, tt.key)
			}
			if _, err2 := New(tt.cfg); !errors.Is(err2, ErrConfig) {
				t.Errorf("New() error = %v, want one wrapping ErrConfig", err2)
			}
		})
	}
}

func TestValidateFillsDefaults(t *testing.T) {
	cfg := Config{Policies: map[Class]Policy{Timeout: {MaxAttempts: 5, Base: time.Second, Max: 2 * time.Second}}, Budget: BudgetConfig{MaxTokens: -1}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
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
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", name, c.got, c.want)
		}
	}
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v, want nil", err)
	}
	if d.Budget.MaxTokens != 100 {
		t.Errorf("default budget.max_tokens: got %v, want 100", d.Budget.MaxTokens)
	}
	r, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Config().MaxHint; got != 2*time.Minute {
		t.Errorf("New(Config{}).Config().MaxHint: got %v, want 2m", got)
	}
}

func TestBudget(t *testing.T) {
	b := budget{cfg: BudgetConfig{MaxTokens: 4, Ratio: 0.5}, tokens: map[string]float64{}}
	steps := []struct {
		class Class
		want  float64
	}{
		{ServerError, 3}, {Overloaded, 2}, {RateLimited, 2}, {Timeout, 2}, {"", 2.5}, {"", 3},
		{Overloaded, 2}, {Overloaded, 1}, {Overloaded, 0}, {Overloaded, 0}, {"", 0.5},
		{"", 1}, {"", 1.5}, {"", 2}, {"", 2.5}, {"", 3}, {"", 3.5}, {"", 4}, {"", 4},
	}
	for i, s := range steps {
		if got := b.record("k", s.class); got != s.want {
			t.Fatalf("step %d (%q): got %v tokens, want %v", i, s.class, got, s.want)
		}
		if got := b.peek("k"); got != s.want {
			t.Fatalf("step %d: peek got %v, want %v", i, got, s.want)
		}
	}
	if len(b.tokens) != 0 {
		t.Errorf("a full bucket is kept: got %d entries, want 0", len(b.tokens))
	}
	if got := b.peek("other"); got != 4 {
		t.Errorf("peek(other) got %v, want 4 (full)", got)
	}
	off := budget{cfg: BudgetConfig{MaxTokens: -1}}
	if got := off.record("k", Overloaded); got != -1 {
		t.Errorf("disabled budget: got %v, want -1", got)
	}
}

func TestErrorMessage(t *testing.T) {
	e := &Error{Decision: Decision{Reason: "rate_limited (HTTP 429): 8 attempts made"}, Attempts: 8, Waited: 1500 * time.Millisecond,
		Err: &ResponseError{Status: 429}}
	want := "retry: gave up after 8 attempts (waited 1.5s): rate_limited (HTTP 429): 8 attempts made: retry: HTTP 429 Too Many Requests"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q\nwant %q", got, want)
	}
	e = &Error{Decision: Decision{Reason: "r"}, Attempts: 1}
	if got, want := e.Error(), "retry: gave up after 1 attempt: r"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := e.Unwrap(); len(got) != 0 {
		t.Errorf("Unwrap() = %v, want none", got)
	}
	e = &Error{Err: errIO, Cause: ErrDeadline}
	if !errors.Is(e, context.DeadlineExceeded) || !errors.Is(e, ErrDeadline) || !errors.Is(e, errIO) {
		t.Errorf("errors.Is(%v, …) false, want true for DeadlineExceeded, ErrDeadline and the last error", e)
	}
	if got := fmtDur(1234567890 * time.Nanosecond); got != "1.235s" {
		t.Errorf("fmtDur = %q, want %q", got, "1.235s")
	}
	if got := fmtDur(500 * time.Nanosecond); got != "500ns" {
		t.Errorf("fmtDur = %q, want %q", got, "500ns")
	}
}

var errIO = errors.New("io")

func TestDecideListedNonRetryableClass(t *testing.T) {
	cfg := Config{Policies: map[Class]Policy{QuotaExhausted: {MaxAttempts: 2, Base: time.Second, Max: time.Second}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	in := Input{Assessment: Assessment{Class: QuotaExhausted, Status: 429}, Attempt: 1, Now: t0, Budget: -1}
	if d := cfg.Decide(in); d.Action != Retry {
		t.Errorf("listed quota_exhausted: action %s (%s), want retry", d.Action, d.Reason)
	}
	in.Attempt = 2
	if d := cfg.Decide(in); d.Action != GiveUp {
		t.Errorf("listed quota_exhausted at its attempt limit: action %s, want give_up", d.Action)
	}
	def := DefaultConfig()
	in.Attempt = 1
	if d := def.Decide(in); d.Action != GiveUp {
		t.Errorf("unlisted quota_exhausted: action %s, want give_up", d.Action)
	}
}

func TestDecideSaturatedHintReason(t *testing.T) {
	cfg := DefaultConfig()
	in := Input{Assessment: Assessment{Class: RateLimited, Status: 429, Hint: Hint{maxWait, SourceRetryAfter}}, Attempt: 1, Now: t0, Budget: -1}
	if d := cfg.Decide(in); d.Action != Retry || !strings.Contains(d.Reason, "24h or more") || d.Hold.By != HeldCheck {
		t.Errorf("got %s %q (hold %q), want a retry behind a check, saying 24h or more", d.Action, d.Reason, d.Hold.By)
	}
	in.Pace = Verdict{Probe: true, By: HeldCheck}
	if d := cfg.Decide(in); d.Action != GiveUp || !strings.Contains(d.Reason, "24h or more") || d.Hold.By != HeldBlock {
		t.Errorf("got %s %q (hold %q), want a give-up saying 24h or more, and a block", d.Action, d.Reason, d.Hold.By)
	}
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
			if d.Action != tt.want || !strings.Contains(d.Reason, tt.reason) || d.Delay != 0 {
				t.Errorf("got %s %q (delay %v), want %s containing %q", d.Action, d.Reason, d.Delay, tt.want, tt.reason)
			}
			if tt.ended != nil && d.Class != Canceled {
				t.Errorf("class %q, want canceled", d.Class)
			}
		})
	}
}
