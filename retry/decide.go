package retry

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// An Action is what a decision says to do next.
type Action string

const (
	// Success: the attempt succeeded; the call is over.
	Success Action = "success"
	// Retry: wait Decision.Delay, then try again.
	Retry Action = "retry"
	// Wait: before an attempt, the call goes on: it waits Decision.Delay
	// (possibly 0) for the time the pacer gave it, then sends or asks the
	// pacer again. Never reported to an Observer.
	Wait Action = "wait"
	// GiveUp: the call is over and failed; Decision.Reason says why.
	GiveUp Action = "give_up"
)

// A Point is where in a call Decide is asked.
type Point uint8

const (
	// AfterAttempt: an attempt's outcome arrived. The zero Point.
	AfterAttempt Point = iota
	// BeforeAttempt: the call is about to send its next attempt (the first
	// included) and the pacer has answered (Input.Pace).
	BeforeAttempt
	// AfterCall: the caller's client returned an error although the last
	// decision observed was not a give-up (a stream cut after the response
	// was handed over, a context that ended inside the client, a client that
	// stopped on its own rule, or no attempt observed at all). The call is
	// over: the decision gives its last word.
	AfterCall
)

// An Assessment is what one outcome says, read once: its class and what the
// provider asked for.
type Assessment struct {
	// Class is the failure's class, or "" for a success.
	Class Class
	// Status is the HTTP status, or 0 when there was no response.
	Status int
	// Provider is the outcome's provider, given or detected.
	Provider Provider
	// Hint is the wait the provider asked for, if any.
	Hint Hint
	// Limits are the rate-limit windows the response reported.
	Limits Limits
	// Window is the limit's window as the error text states it ("per
	// minute", "RPM": 1m; "per second": 1s), or 0.
	Window time.Duration
	// Scope is what a quota_exhausted failure exhausted: the credential
	// (billing, credits, spend caps) or only this limit (a per-model daily
	// or monthly quota).
	Scope Scope
	// ShouldRetry is the x-should-retry header: "true", "false", or "".
	ShouldRetry string
	// Message is the provider's error message, at most 200 bytes.
	Message string
	// Err is the outcome's error, if any.
	Err error
}

// Assess reads an outcome: its class, hint and rate limits. Times in the
// response are measured from its Date header when valid, else from now.
func Assess(o Outcome, now time.Time) Assessment {
	a := Assessment{Status: o.Status, Provider: o.Provider, Err: o.Err, Limits: ParseLimits(o.Header, now)}
	if !o.Failed() {
		if a.Provider == "" {
			a.Provider = DetectProvider(o.Header, &errorBody{})
		}
		return a
	}
	eb := parseBody(o.Body)
	if a.Provider == "" {
		a.Provider = DetectProvider(o.Header, eb)
	}
	a.Class = classify(o, eb)
	a.Hint = parseHint(o.Header, eb, now)
	a.Window = statedWindow(eb.text())
	if a.Class == QuotaExhausted {
		a.Scope = quotaScope(o.Status, eb)
	}
	a.Message = truncate(eb.message, 200)
	switch v := strings.ToLower(strings.TrimSpace(o.Header.Get("x-should-retry"))); v {
	case "true", "false":
		a.ShouldRetry = v
	}
	return a
}

// Input is everything Decide needs at one decision point.
type Input struct {
	Assessment
	// Point is where in the call the decision is made.
	Point Point
	// Attempt is the 1-based number of the attempt that produced the
	// outcome; before an attempt, the number of attempts sent so far (0
	// before the first, when Assessment is the zero value).
	Attempt int
	// Streak is the number of failures without a usable hint just before
	// this one, in this call: the backoff exponent. A hint resets it.
	Streak int
	// Now is when the outcome arrived, or when the pacer answered.
	Now time.Time
	// Deadline is the caller's deadline; the zero Time means none.
	Deadline time.Time
	// Ended is the caller's context's error once it has ended, else nil.
	Ended error
	// Budget is the retry budget's tokens left after this failure was
	// charged, or a negative number when the budget is disabled.
	Budget float64
	// Rand is a number in [0, 1) that picks the delay within its range.
	Rand float64
	// Pace is the pacer's verdict: before an attempt, the one just given;
	// after an attempt, the one the attempt was sent under (whether it was
	// a probe, what the limit is known to be).
	Pace Verdict
	// Replay is nil when the request can be sent again, else why not:
	// ErrNotReplayable, or the error GetBody returned.
	Replay error
	// Committed reports that a response was already handed to the caller
	// (the commit point): nothing may be sent again.
	Committed bool
}

// ErrNotReplayable is Input.Replay for a request whose body can be read
// only once (a body and no GetBody).
var ErrNotReplayable = errors.New("retry: the request body cannot be sent again (no GetBody)")

// A Decision is what the engine decided at one point of a call.
type Decision struct {
	Assessment
	// Attempt is the 1-based number of the attempt decided on; for a
	// decision before an attempt, the number of the attempt not yet sent.
	Attempt int
	// Action is what to do next.
	Action Action
	// HintSource is where the delay's floor came from: the hint's source,
	// or SourceBackoff when the delay comes from the class's policy.
	HintSource Source
	// DelayMin and DelayMax bound the delay: [hint, hint+spread] after a
	// hint, the policy's jittered backoff otherwise, and never so close to
	// the deadline that an attempt could not finish. They are computed for
	// give-ups too, when a delay applies.
	DelayMin, DelayMax time.Duration
	// Delay is the wait before the next attempt, drawn from [DelayMin,
	// DelayMax] after an attempt, the pacer's time before one; 0 on
	// success and give-up.
	Delay time.Duration
	// Hold is what the outcome asks of every call to the limit, whatever
	// this call does: the pacer records it (see PaceState.Observe).
	Hold Hold
	// Deadline reports that the call gave up because the next attempt
	// could not be sent and finish before the caller's deadline.
	Deadline bool
	// Reason explains the decision to a person.
	Reason string
}

// Decide decides what follows at one point of a call. It is pure: the same
// input always gives the same decision. Every give-up of the engine is
// decided here, and its reason starts with the class.
//
// After an attempt (AfterAttempt) a success ends the call. A failure first
// sets the limit's Hold: a rate-limit hint holds every call for its wait —
// unless it is longer than any window the limit is known to have (the
// pacer's Window, the error text's "per minute", else MaxHint, and never
// more than MaxHint), when it holds them only while one probe checks it
// after Probe.Soon; a refused probe confirms it, and a confirmed hint above
// MaxHint blocks the limit. A quota_exhausted failure blocks its Scope, an
// overloaded one holds the limit for Overload.Base (Overload.Max after a
// failed probe). Then the call gives up, in this order, when: its context
// ended (canceled); a response was already handed over; x-should-retry:
// false; the class is not retryable (or listed in Policies with
// MaxAttempts above 1, or x-should-retry: true); the request cannot be
// sent again; a confirmed hint exceeds MaxHint; the class's attempt limit
// is reached; the retry budget is at or below half (server_error and
// overloaded only); or the shortest delay plus the time an attempt needs
// (MinAttemptTime, or the limit's observed latency if longer) does not fit
// before the deadline. Otherwise it retries after a delay drawn from
// [hint, hint+spread] (spread = Spread of the hint within [SpreadMin,
// SpreadMax]), from [Probe.Soon, +spread] for a hint under check, from
// [hold, hold·1.1] for an overload, or from the policy's backoff for
// Streak+1; DelayMax never reaches so close to the deadline that the
// attempt could not finish.
//
// Before an attempt (BeforeAttempt) the call gives up when its context
// ended, its body cannot be replayed (GetBody failed), the pacer says the
// limit or its credential is blocked and this call is not its probe, or
// the time the pacer gave it plus the time an attempt needs is past the
// deadline (held by a hint, a check, an overload, the windows or the slow
// start). Else it waits for that time: to send then if the pacer booked
// it, or to ask again. The first attempt is paced too: to a limit the
// pacer knows nothing of yet, only a few calls go until answers state its
// windows (the slow start, see PaceState).
//
// After the call (AfterCall) it always gives up, saying why the call ended.
func (c *Config) Decide(in Input) Decision {
	switch in.Point {
	case BeforeAttempt:
		return c.beforeAttempt(in)
	case AfterCall:
		return afterCall(in)
	}
	return c.afterAttempt(in)
}

// head is the start of every reason: the class, and the status if any.
func head(class Class, status int) string {
	if status != 0 {
		return fmt.Sprintf("%s (HTTP %d)", class, status)
	}
	return string(class)
}

// giveUp ends d with the reason (a format and its arguments) after head.
func (d *Decision) giveUp(format string, args ...any) Decision {
	d.Action, d.Delay = GiveUp, 0
	d.Reason = head(d.Class, d.Status) + ": " + fmt.Sprintf(format, args...)
	return *d
}

// decision begins the decision on in about attempt n: its outcome, and
// where the delay's floor comes from.
func decision(in Input, n int) Decision {
	d := Decision{Assessment: in.Assessment, Attempt: n, HintSource: SourceBackoff}
	if in.Hint.Valid() {
		d.HintSource = in.Hint.Source
	}
	return d
}

// succeeded decides a success, and reports it; a failure without a response
// whose caller's context ended becomes canceled: the context ended, not the
// attempt.
func (d *Decision) succeeded(in Input) bool {
	if d.Class == "" {
		d.Action, d.Reason = Success, "succeeded"
		return true
	}
	if in.Ended != nil && in.Status == 0 {
		d.Class = Canceled
	}
	return false
}

func (c *Config) afterAttempt(in Input) Decision {
	d := decision(in, max(in.Attempt, 1))
	if d.succeeded(in) {
		return d
	}
	probe := in.Pace.Probe
	suspect := in.Class == RateLimited && in.Hint.Valid() && in.Hint.Wait > c.knownWindow(in)
	// A probe of the check (or of a block it led to) refused alike confirms it.
	believed := suspect && probe && (in.Pace.By == HeldCheck || in.Pace.By == HeldBlock)
	d.Hold = c.hold(in, suspect, believed)

	policy, listed := c.Policies[d.Class]
	retryable := d.Class.Retryable() || listed && policy.MaxAttempts > 1
	switch {
	case d.Class == Canceled:
		return d.giveUp("the caller's context ended")
	case in.Committed:
		return d.giveUp("the response was already handed to the caller (commit point); nothing is sent again")
	case in.ShouldRetry == "false":
		return d.giveUp("the server said x-should-retry: false")
	case in.ShouldRetry == "true" && !retryable:
		policy, retryable = c.Policies[ServerError], true
	case !retryable:
		return d.giveUp("%s", notRetryable[d.Class])
	}
	if in.Replay != nil {
		return d.giveUp("the request body cannot be sent again")
	}

	switch {
	case suspect && !believed:
		// Wait for the check: the probe goes after Probe.Soon.
		d.DelayMin, d.DelayMax = c.Probe.Soon, c.Probe.Soon+c.spread(c.Probe.Soon)
	case in.Hint.Valid():
		d.DelayMin, d.DelayMax = in.Hint.Wait, in.Hint.Wait+c.spread(in.Hint.Wait)
	case d.Class == Overloaded:
		d.DelayMin, d.DelayMax = d.Hold.For, d.Hold.For
	default:
		d.DelayMin, d.DelayMax = policy.backoff(in.Streak + 1)
	}
	need := c.attemptTime(in.Pace)
	left := in.Deadline.Sub(in.Now) - need
	if !in.Deadline.IsZero() {
		d.DelayMax = max(min(d.DelayMax, left), d.DelayMin)
	}

	switch {
	case believed && in.Hint.Wait > c.MaxHint:
		return d.giveUp("the server asked for %s (%s) again when probed, more than the %s maximum", fmtWait(in.Hint.Wait), in.Hint.Source, fmtDur(c.MaxHint))
	case d.Attempt >= policy.MaxAttempts:
		return d.giveUp("%d attempts made, the most for %s", d.Attempt, d.Class)
	case d.Class.budgeted() && in.Budget >= 0 && in.Budget <= c.Budget.MaxTokens/2:
		return d.giveUp("retry budget exhausted (%.1f of %g tokens left; retries stop at half)", in.Budget, c.Budget.MaxTokens)
	case !in.Deadline.IsZero() && d.DelayMin >= left:
		d.Deadline = true
		return d.giveUp("the wait of at least %s and an attempt of at least %s do not fit in the %s left before the deadline",
			fmtDur(d.DelayMin), fmtDur(need), fmtDur(max(in.Deadline.Sub(in.Now), 0)))
	}

	d.Action = Retry
	d.Delay = d.DelayMin + time.Duration(in.Rand*float64(d.DelayMax-d.DelayMin))
	var why string
	switch {
	case suspect && !believed:
		why = fmt.Sprintf("the server asked for %s (%s), longer than any window this limit is known to have (%s): one probe checks it first",
			fmtWait(in.Hint.Wait), in.Hint.Source, fmtDur(c.knownWindow(in)))
	case in.Hint.Valid():
		why = fmt.Sprintf("the server asked for %s (%s)", fmtDur(in.Hint.Wait), in.Hint.Source)
	case d.Class == Overloaded:
		why = "the limit is held while one call at a time probes the provider"
	default:
		why = "no usable hint, backoff"
	}
	d.Reason = fmt.Sprintf("%s: %s; retrying in %s (range %s–%s), attempt %d of at most %d",
		head(d.Class, d.Status), why, fmtDur(d.Delay), fmtDur(d.DelayMin), fmtDur(d.DelayMax), d.Attempt+1, policy.MaxAttempts)
	return d
}

// hold is what a failure asks of every call to its limit (see Decide).
func (c *Config) hold(in Input, suspect, believed bool) Hold {
	switch {
	case in.Class == QuotaExhausted:
		return Hold{By: HeldBlock, Scope: in.Scope, Class: QuotaExhausted, Every: c.Probe.Interval,
			Reason: fmt.Sprintf("%s: the provider said the %s's quota is exhausted (%s); calls give up unsent until a probe (one per %s) succeeds",
				head(QuotaExhausted, in.Status), scopeName(in.Scope), quotaKind(in.Scope), fmtDur(c.Probe.Interval))}
	case in.Class == Overloaded:
		base := c.Overload.Base
		if in.Pace.Probe {
			base = c.Overload.Max
		}
		return Hold{By: HeldOverload, For: base + time.Duration(in.Rand*float64(base)/10)}
	case in.Class != RateLimited || !in.Hint.Valid():
		return Hold{}
	case !suspect:
		return Hold{By: HeldHint, For: in.Hint.Wait}
	case !believed:
		return Hold{By: HeldCheck, For: c.Probe.Soon}
	case in.Hint.Wait <= c.MaxHint:
		return Hold{By: HeldHint, For: in.Hint.Wait}
	}
	return Hold{By: HeldBlock, For: in.Hint.Wait, Class: RateLimited, Every: c.Probe.Interval,
		Reason: fmt.Sprintf("%s: the server asked for %s (%s) and a probe confirmed it, more than the %s maximum; calls give up unsent until a probe (one per %s) succeeds",
			head(RateLimited, in.Status), fmtWait(in.Hint.Wait), in.Hint.Source, fmtDur(c.MaxHint), fmtDur(c.Probe.Interval))}
}

// knownWindow is the longest wait a rate-limit hint may ask for before it
// is suspect: a tenth above the longest window the limit is known to have
// (the pacer's, or the error text's), else MaxHint; never above MaxHint.
func (c *Config) knownWindow(in Input) time.Duration {
	w := max(in.Window, in.Pace.Window)
	if w <= 0 {
		return c.MaxHint
	}
	return min(w+w/10, c.MaxHint)
}

// attemptTime is the least time an attempt needs to possibly finish.
func (c *Config) attemptTime(v Verdict) time.Duration {
	return max(c.MinAttemptTime, v.Latency)
}

// spread is how far above a wait w the delay may be drawn.
func (c *Config) spread(w time.Duration) time.Duration {
	// The last bound keeps w+spread from overflowing.
	return min(max(time.Duration(float64(w)*c.Spread), c.SpreadMin), c.SpreadMax, math.MaxInt64-w)
}

func (c *Config) beforeAttempt(in Input) Decision {
	d := decision(in, in.Attempt+1)
	v := in.Pace
	held := v.By.class(v)
	switch {
	case in.Ended != nil:
		d.Class = Canceled
		if in.Attempt == 0 {
			return d.giveUp("the caller's context ended before the first attempt")
		}
		return d.giveUp("the caller's context ended while waiting")
	case in.Replay != nil:
		return d.giveUp("the request body could not be read again for attempt %d: %v", d.Attempt, in.Replay)
	case v.By == HeldBlock && !v.Booked:
		d.Class, d.Status = v.Class, 0
		d.Reason = v.Reason
		d.Action = GiveUp
		return d
	}
	if d.Class == "" {
		d.Class = held
	}
	need := c.attemptTime(v)
	if !in.Deadline.IsZero() && v.At.Add(need).After(in.Deadline) {
		d.Deadline = true
		if v.At.After(in.Now) && held != "" {
			return d.giveUp("calls to this limit are held (%s) for %s, past the deadline", v.By, fmtDur(v.At.Sub(in.Now)))
		}
		if d.Class == "" {
			d.Class = Timeout
		}
		return d.giveUp("an attempt needs at least %s and only %s is left before the deadline", fmtDur(need), fmtDur(max(in.Deadline.Sub(in.Now), 0)))
	}
	d.Action = Wait
	d.Delay = max(v.At.Sub(in.Now), 0)
	by := string(v.By)
	if by == "" {
		by = "its own delay"
	}
	switch {
	case v.Probe:
		d.Reason = fmt.Sprintf("attempt %d probes the limit (%s) in %s", d.Attempt, by, fmtDur(d.Delay))
	case d.Delay > 0:
		d.Reason = fmt.Sprintf("attempt %d waits %s for its turn (%s)", d.Attempt, fmtDur(d.Delay), by)
	default:
		d.Reason = "the pacer lets the attempt go now"
	}
	return d
}

func afterCall(in Input) Decision {
	d := decision(in, max(in.Attempt, 1))
	switch {
	case in.Ended != nil:
		d.Class = Canceled
		if in.Attempt > 0 {
			return d.giveUp("the caller's context ended after attempt %d", in.Attempt)
		}
		return d.giveUp("the caller's context ended")
	case in.Committed:
		if d.Class == "" {
			d.Class = Connection
		}
		return d.giveUp("the response failed after it was handed to the caller (a cut stream); past the commit point nothing is sent again")
	case in.Attempt == 0:
		d.Class = Connection
		return d.giveUp("the call failed before any attempt was sent")
	case d.Class == "":
		d.Class = Connection
	}
	return d.giveUp("the caller's client ended the call after attempt %d", in.Attempt)
}

var notRetryable = map[Class]string{
	QuotaExhausted:  "billing, spend cap, credits or a daily or monthly quota; no wait within a run helps",
	RequestTooLarge: "the request alone exceeds the limit; resending it cannot succeed",
	ContextLength:   "the prompt is longer than the model's context",
	Auth:            "the credentials were refused",
	InvalidRequest:  "the provider rejected the request as invalid",
}

// fmtDur renders a duration rounded to the millisecond.
func fmtDur(d time.Duration) string {
	if d >= time.Millisecond || d <= -time.Millisecond {
		d = d.Round(time.Millisecond)
	}
	return d.String()
}

// fmtWait renders a stated wait, saying when it was saturated.
func fmtWait(d time.Duration) string {
	if d >= maxWait {
		return "24h or more"
	}
	return fmtDur(d)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 { // keep UTF-8 whole
		n--
	}
	return s[:n] + "…"
}
