package retry

import (
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
	// GiveUp: the call is over and failed; Decision.Reason says why.
	GiveUp Action = "give_up"
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
	a.Message = truncate(eb.message, 200)
	switch v := strings.ToLower(strings.TrimSpace(o.Header.Get("x-should-retry"))); v {
	case "true", "false":
		a.ShouldRetry = v
	}
	return a
}

// Input is everything Decide needs about one outcome.
type Input struct {
	Assessment
	// Attempt is the 1-based number of the attempt that produced the
	// outcome.
	Attempt int
	// Streak is the number of failures without a usable hint just before
	// this one, in this call: the backoff exponent. A hint resets it.
	Streak int
	// Now is when the outcome arrived.
	Now time.Time
	// Deadline is the caller's deadline; the zero Time means none.
	Deadline time.Time
	// Budget is the retry budget's tokens left after this failure was
	// charged, or a negative number when the budget is disabled.
	Budget float64
	// Rand is a number in [0, 1) that picks the delay within its range.
	Rand float64
}

// A Decision is what the engine decided after one attempt.
type Decision struct {
	Assessment
	// Attempt is the 1-based number of the attempt decided on.
	Attempt int
	// Action is what to do next.
	Action Action
	// HintSource is where the delay's floor came from: the hint's source,
	// or SourceBackoff when the delay comes from the class's policy.
	HintSource Source
	// DelayMin and DelayMax bound the delay: [hint, hint+spread] after a
	// hint, the policy's jittered backoff otherwise, and never past the
	// deadline. They are computed for give-ups too, when a delay applies.
	DelayMin, DelayMax time.Duration
	// Delay is the wait before the next attempt, drawn from [DelayMin,
	// DelayMax]; 0 unless Action is Retry.
	Delay time.Duration
	// Deadline reports that the call gave up because the wait would pass
	// the caller's deadline.
	Deadline bool
	// Reason explains the decision to a person.
	Reason string
}

// Decide decides what follows one attempt's outcome. It is pure: the same
// input always gives the same decision.
//
// A success ends the call. A failure is retried when its class is
// retryable or has a policy in the Config allowing more than one attempt
// (or x-should-retry: true says so, and x-should-retry: false forbids it), the class's attempt limit is not reached, the retry budget
// allows it (server_error and overloaded only), the hint is at most MaxHint,
// and the shortest wait fits before the deadline. The delay is at least the
// hint plus nothing and at most the hint plus its spread, or the policy's
// backoff for Streak+1 when there is no hint, and never reaches past the
// deadline.
func (c *Config) Decide(in Input) Decision {
	d := Decision{Assessment: in.Assessment, Attempt: max(in.Attempt, 1), HintSource: SourceBackoff}
	if in.Hint.Valid() {
		d.HintSource = in.Hint.Source
	}
	if in.Class == "" {
		d.Action, d.Reason = Success, "succeeded"
		return d
	}
	d.Action = GiveUp
	head := string(in.Class)
	if in.Status != 0 {
		head += fmt.Sprintf(" (HTTP %d)", in.Status)
	}
	giveUp := func(format string, args ...any) Decision {
		d.Reason = head + ": " + fmt.Sprintf(format, args...)
		return d
	}

	policy, listed := c.Policies[in.Class]
	retryable := in.Class.Retryable() || listed && policy.MaxAttempts > 1
	switch {
	case in.Class == Canceled:
		return giveUp("the caller's context ended")
	case in.ShouldRetry == "false":
		return giveUp("the server said x-should-retry: false")
	case in.ShouldRetry == "true" && !retryable:
		policy, retryable = c.Policies[ServerError], true
	case !retryable:
		return giveUp("%s", notRetryable[in.Class])
	}

	if in.Hint.Valid() {
		// The last bound keeps hint+spread from overflowing.
		spread := min(max(time.Duration(float64(in.Hint.Wait)*c.Spread), c.SpreadMin), c.SpreadMax, math.MaxInt64-in.Hint.Wait)
		d.DelayMin, d.DelayMax = in.Hint.Wait, in.Hint.Wait+spread
	} else {
		d.DelayMin, d.DelayMax = policy.backoff(in.Streak + 1)
	}
	left := in.Deadline.Sub(in.Now)
	if !in.Deadline.IsZero() {
		d.DelayMax = max(min(d.DelayMax, left), d.DelayMin)
	}

	switch {
	case in.Hint.Valid() && in.Hint.Wait > c.MaxHint:
		asked := fmtDur(in.Hint.Wait)
		if in.Hint.Wait >= maxWait {
			asked = "24h or more"
		}
		return giveUp("the server asked for %s (%s), more than the %s maximum", asked, in.Hint.Source, fmtDur(c.MaxHint))
	case d.Attempt >= policy.MaxAttempts:
		return giveUp("%d attempts made, the most for %s", d.Attempt, in.Class)
	case in.Class.budgeted() && in.Budget >= 0 && in.Budget <= c.Budget.MaxTokens/2:
		return giveUp("retry budget exhausted (%.1f of %g tokens left; retries stop at half)", in.Budget, c.Budget.MaxTokens)
	case !in.Deadline.IsZero() && d.DelayMin >= left:
		d.Deadline = true
		return giveUp("the wait of at least %s does not fit in the %s left before the deadline", fmtDur(d.DelayMin), fmtDur(max(left, 0)))
	}

	d.Action = Retry
	d.Delay = d.DelayMin + time.Duration(in.Rand*float64(d.DelayMax-d.DelayMin))
	why := "no usable hint, backoff"
	if in.Hint.Valid() {
		why = fmt.Sprintf("the server asked for %s (%s)", fmtDur(in.Hint.Wait), in.Hint.Source)
	}
	d.Reason = fmt.Sprintf("%s: %s; retrying in %s (range %s–%s), attempt %d of at most %d",
		head, why, fmtDur(d.Delay), fmtDur(d.DelayMin), fmtDur(d.DelayMax), d.Attempt+1, policy.MaxAttempts)
	return d
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 { // keep UTF-8 whole
		n--
	}
	return s[:n] + "…"
}
