package retry

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// A call is one logical call across its attempts. The loops in Do and
// Transport.RoundTrip drive it: wait, attempt, decide, and again.
type call struct {
	r          *Retrier
	key        Key
	id         string // key.String(), the Store key
	cost       Cost
	tokens     func() int64 // estimates cost.Tokens when a token window needs it; nil once done
	replayable bool         // whether the request can be sent again
	quiet      bool         // the key was quiet (see PaceState.Quiet) when the attempt was booked

	attempts  int           // attempts sent so far
	streak    int           // failures without a hint in a row
	notBefore time.Time     // the last decision's delay ends here
	sent      time.Time     // when the current attempt was sent
	queued    time.Duration // waited before the current attempt
	waited    time.Duration // waited in all
	last      Decision      // the last decision
	lastErr   error         // the last attempt's error, or its failed response as a *ResponseError
}

// calls recycles calls: one is made per request, on the hot path.
var calls = sync.Pool{New: func() any { return new(call) }}

// start begins a call; end must be called when it is over, after which c
// must not be used.
func (r *Retrier) start(key Key, tokens func() int64, replayable bool) *call {
	c := calls.Get().(*call)
	*c = call{r: r, key: key, id: key.String(), cost: Cost{Requests: 1}, tokens: tokens, replayable: replayable}
	return c
}

// end releases c.
func (c *call) end() {
	*c = call{}
	calls.Put(c)
}

// wait waits until the call may send its next attempt: the last decision's
// delay is over and the limit's pacer books it. It gives up at once, with an
// *Error wrapping ErrDeadline, when the pacer's time is past ctx's deadline,
// and returns an *Error wrapping ctx.Err() when ctx ends while waiting.
func (c *call) wait(ctx context.Context) error {
	deadline, _ := ctx.Deadline()
	began := c.r.now()
	for {
		now := c.r.now()
		from := later(now, c.notBefore)
		at, booked, overloaded, estimate := from, true, false, false
		// A store that fails is bypassed: the call goes unpaced rather than
		// not at all.
		_ = c.r.store.Update(ctx, c.id, func(s *PaceState) {
			overloaded, c.quiet = s.Overloads > 0, s.Quiet()
			if estimate = c.tokens != nil && s.countsTokens(); estimate {
				return // estimate outside the store's lock, then book
			}
			if s.Overloads > 0 && from.After(now) {
				// Overloaded: come back when the delay ends rather than take
				// the probe's place while sleeping.
				at, booked = from, false
				return
			}
			at, booked = s.Reserve(from, deadline, c.cost, c.r.cfg.Overload)
		})
		if estimate {
			c.cost.Tokens, c.tokens = c.tokens(), nil
			continue
		}
		if !deadline.IsZero() && at.After(deadline) {
			held := RateLimited // held by a hint or paced by a window
			if overloaded {
				held = Overloaded
			}
			return c.stopBeforeSend(ctx, began, ErrDeadline, held, fmt.Sprintf(
				"calls to this limit are held for %s, past the deadline", fmtDur(at.Sub(now))))
		}
		if err := sleep(ctx, at.Sub(now)); err != nil {
			if booked { // free a probe's place: this call will not be sent
				_ = c.r.store.Update(ctx, c.id, func(s *PaceState) {
					s.Observe(c.r.now(), Observation{Sent: at, Class: Canceled}, c.r.cfg.Overload)
				})
			}
			return c.stopBeforeSend(ctx, began, err, Canceled, "the caller's context ended while waiting")
		}
		if booked && at.After(now) && c.heldSince(ctx, now, at) {
			continue // a hold began while this call slept: book again
		}
		if booked {
			c.sent = at
			c.queued = c.r.now().Sub(began)
			c.waited += c.queued
			return nil
		}
	}
}

// heldSince reports whether, since the call was booked (at booked, to be
// sent at at), the key was held past at or found overloaded: a call booked
// before then must not be sent into it.
func (c *call) heldSince(ctx context.Context, booked, at time.Time) bool {
	held := false
	_ = c.r.store.Update(ctx, c.id, func(s *PaceState) {
		held = s.Hold.After(at) || s.Overloads > 0 && s.OverloadSince.After(booked)
	})
	return held
}

// stopBeforeSend ends the call before an attempt was sent, for cause. The
// decision keeps the last failure's class; a call that never sent one gets
// class, the reason it could not.
func (c *call) stopBeforeSend(ctx context.Context, began time.Time, cause error, class Class, why string) error {
	d := c.last
	d.Attempt, d.Action, d.Delay = c.attempts+1, GiveUp, 0
	d.Deadline = cause == ErrDeadline
	if c.attempts == 0 {
		d.Provider, d.HintSource = c.key.Provider, SourceBackoff
	}
	if class == Canceled || d.Class == "" {
		d.Class = class
	}
	d.Reason = string(d.Class) + ": " + why
	c.last = d
	now := c.r.now()
	c.waited += now.Sub(began)
	c.observe(ctx, Event{Key: c.key, Decision: d, Start: now, End: now, Queued: now.Sub(began), Waited: c.waited})
	return &Error{Decision: d, Attempts: c.attempts, Waited: c.waited, Err: c.lastErr, Cause: cause}
}

// decide records the outcome of the attempt just made, updates the pacer
// and the budget, tells the observer, and returns the decision.
func (c *call) decide(ctx context.Context, o Outcome) Decision {
	now := c.r.now()
	c.attempts++
	if o.Provider == "" {
		o.Provider = c.key.Provider
	}
	a := Assess(o, now)
	if o.Status == 0 && o.Err != nil && ctx.Err() != nil {
		a.Class = Canceled // the caller's context ended, not the attempt's
	}
	deadline, _ := ctx.Deadline()
	d := c.r.cfg.Decide(Input{
		Assessment: a, Attempt: c.attempts, Streak: c.streak, Now: now, Deadline: deadline,
		Budget: c.r.budget.record(c.id, a.Class), Rand: c.r.rand(),
	})
	if d.Action == Retry && !c.replayable {
		d.Action, d.Delay = GiveUp, 0
		d.Reason = string(a.Class) + ": the request body cannot be sent again"
	}
	switch {
	case a.Hint.Valid():
		c.streak = 0
	case a.Class != "":
		c.streak++
	}

	obs := Observation{Sent: c.sent, Class: a.Class, Limits: a.Limits, Rand: c.r.rand()}
	if a.Class == RateLimited && a.Hint.Valid() && a.Hint.Wait <= c.r.cfg.MaxHint {
		obs.Hold = now.Add(a.Hint.Wait)
	}
	if !(c.quiet && a.Class == "" && len(a.Limits) == 0) { // a quiet key's plain success changes nothing
		_ = c.r.store.Update(ctx, c.id, func(s *PaceState) { s.Observe(now, obs, c.r.cfg.Overload) })
	}

	c.last, c.notBefore = d, now.Add(d.Delay)
	c.observe(ctx, Event{Key: c.key, Decision: d, Sent: true, Start: c.sent, End: now, Queued: c.queued, Waited: c.waited})
	c.lastErr = o.Err
	if o.Status >= 400 {
		c.lastErr = &ResponseError{Status: o.Status, Header: o.Header, Body: o.Body}
	}
	return d
}

func (c *call) observe(ctx context.Context, e Event) {
	if c.r.observer != nil {
		if e.Budget = -1; c.r.cfg.Budget.MaxTokens >= 0 {
			e.Budget = c.r.budget.peek(c.id)
		}
		c.r.observer.Observe(ctx, e)
	}
}

// result is what Do returns after the last decision: nil on success, else
// an *Error wrapping err and, when the call stopped for the deadline or the
// context, ErrDeadline or ctx.Err().
func (c *call) result(ctx context.Context, err error) error {
	if c.last.Action == Success {
		return nil
	}
	e := &Error{Decision: c.last, Attempts: c.attempts, Waited: c.waited, Err: err}
	switch {
	case c.last.Deadline:
		e.Cause = ErrDeadline
	case c.last.Class == Canceled:
		e.Cause = ctx.Err()
	}
	return e
}

// sleep waits for d or until ctx ends, whichever is first, and returns
// ctx.Err() in the second case. A d of zero or less returns at once.
func sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
