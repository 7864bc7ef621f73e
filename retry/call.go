package retry

import (
	"context"
	"sync"
	"time"
)

// A call is one logical call across its attempts. The loops in Do and
// Transport.RoundTrip drive it: ready (ask the pacer, decide, wait),
// attempt, decide, and again. Every decision is Config.Decide's.
type call struct {
	r      *Retrier
	key    Key
	cost   Cost
	tokens func() int64 // estimates cost.Tokens when a token window needs it; nil once done
	replay error        // ErrNotReplayable when the request can be sent only once

	attempts  int           // attempts sent so far
	streak    int           // failures without a hint in a row
	notBefore time.Time     // the last decision's delay ends here
	pace      Verdict       // the verdict the current attempt was sent under
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
	*c = call{r: r, key: key, cost: Cost{Requests: 1}, tokens: tokens}
	if !replayable {
		c.replay = ErrNotReplayable
	}
	return c
}

// end releases c.
func (c *call) end() {
	*c = call{}
	calls.Put(c)
}

// ready waits until the call may send its next attempt, and reports true
// then. Before that it asks the pacer and lets Decide judge its verdict
// with the context and replay (the error that keeps the request from being
// read again, if any); when Decide gives up, ready records that decision as
// the last, tells the Observer and reports false. A place booked before a
// hold began is confirmed after the wait, or booked anew.
func (c *call) ready(ctx context.Context, replay error) bool {
	deadline, _ := ctx.Deadline()
	began := c.r.now()
	now := began
	var v Verdict
	if ctx.Err() == nil && replay == nil {
		v = c.book(ctx, Ask{Now: now})
	}
	for {
		last := c.last.Assessment
		if c.attempts == 0 {
			last = Assessment{Provider: c.key.Provider}
		}
		d := c.r.cfg.Decide(Input{
			Point: BeforeAttempt, Assessment: last, Attempt: c.attempts, Streak: c.streak,
			Now: now, Deadline: deadline, Ended: ctx.Err(), Budget: -1, Pace: v, Replay: replay,
		})
		if d.Action == GiveUp {
			if v.Booked {
				c.release(ctx, v.At)
			}
			c.stop(ctx, began, d, v.Local)
			return false
		}
		slept := d.Delay > 0
		if err := sleep(ctx, d.Delay); err != nil {
			if v.Booked { // free the place: this call will not be sent
				c.release(ctx, v.At)
			}
			v, now = Verdict{}, c.r.now()
			continue // Decide gives up: the context ended
		}
		bookedAt := now
		now = c.r.now()
		if slept && !v.At.Before(c.notBefore) {
			c.notBefore = time.Time{} // its own delay is served, whatever the clock says
		}
		switch {
		case !v.Booked:
			v = c.book(ctx, Ask{Now: now})
			continue
		case slept:
			if w := c.book(ctx, Ask{Now: now, Booked: v.At, BookedAt: bookedAt}); !w.Confirmed {
				v = w // a hold began while this call slept
				continue
			}
		}
		c.pace = v
		if c.queued = 0; v.At.After(began) {
			c.queued = now.Sub(began)
		}
		c.waited += c.queued
		return true
	}
}

// book asks the pacer; a store that fails is bypassed: the call goes
// unpaced rather than not at all.
func (c *call) book(ctx context.Context, a Ask) Verdict {
	a.NotBefore, a.Cost, a.ProbeTimeout = c.notBefore, c.cost, c.r.cfg.Overload.ProbeTimeout
	a.Deadline, _ = ctx.Deadline()
	a.MinAttemptTime, a.Tokens = c.r.cfg.MinAttemptTime, c.tokens
	v, err := c.r.store.Book(ctx, c.key, a)
	if err != nil {
		return Verdict{At: later(a.Now, a.NotBefore), Booked: true, Confirmed: true, Cost: a.Cost}
	}
	if v.Cost.Tokens != c.cost.Tokens {
		c.cost, c.tokens = v.Cost, nil // estimated once
	}
	return v
}

// release frees the place of the call booked at at, which will not be sent.
func (c *call) release(ctx context.Context, at time.Time) {
	_ = c.r.store.Observe(live(ctx), c.key, Observation{Now: c.r.now(), Sent: at, Class: Canceled, Unsent: true})
}

// live returns ctx, or one without its cancelation once it ended: what a
// response taught must reach the store even after the caller gave up.
func live(ctx context.Context) context.Context {
	if ctx.Err() != nil {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// stop records a give-up decided before an attempt was sent; local is the
// last verdict's Local.
func (c *call) stop(ctx context.Context, began time.Time, d Decision, local bool) {
	now := c.r.now()
	c.waited += now.Sub(began)
	c.last = d
	c.observe(ctx, Event{Key: c.key, Decision: d, Start: now, End: now, Queued: now.Sub(began), Waited: c.waited, Local: local})
}

// decide records the outcome of the attempt just made, updates the pacer
// and the budget, tells the observer, and returns the decision. The caller
// sets lastErr.
func (c *call) decide(ctx context.Context, o Outcome) Decision {
	now := c.r.now()
	c.attempts++
	if o.Provider == "" {
		o.Provider = c.key.Provider
	}
	a := Assess(o, now)
	deadline, _ := ctx.Deadline()
	d := c.r.cfg.Decide(Input{
		Assessment: a, Attempt: c.attempts, Streak: c.streak, Now: now, Deadline: deadline, Ended: ctx.Err(),
		Budget: c.r.budget.record(c.key, a.Class), Rand: c.r.rand(), Pace: c.pace, Replay: c.replay,
	})
	switch {
	case a.Hint.Valid():
		c.streak = 0
	case a.Class != "":
		c.streak++
	}
	_ = c.r.store.Observe(live(ctx), c.key, Observation{Now: now, Sent: c.pace.At, Class: d.Class, Limits: a.Limits, Hold: d.Hold})

	c.last, c.notBefore = d, now.Add(d.Delay)
	c.observe(ctx, Event{Key: c.key, Decision: d, Sent: true, Start: c.pace.At, End: now, Queued: c.queued, Waited: c.waited, Local: c.pace.Local})
	return d
}

func (c *call) observe(ctx context.Context, e Event) {
	if c.r.observer != nil {
		if e.Budget = -1; c.r.cfg.Budget.MaxTokens >= 0 {
			e.Budget = c.r.budget.peek(c.key)
		}
		c.r.observer.Observe(ctx, e)
	}
}

// result is the error a call returns after its last decision, when it has
// no response to return: nil on success, else an *Error wrapping the last
// attempt's error and the cause (see Error.Cause). cause is the error that
// kept the request from being read again, if that ended the call.
func (c *call) result(ctx context.Context, cause error) error {
	d := c.last
	if d.Action == Success {
		return nil
	}
	e := &Error{Decision: d, Attempts: c.attempts, Waited: c.waited, Err: c.lastErr}
	switch {
	case d.Deadline:
		e.Cause = ErrDeadline
	case d.Class == Canceled && ctx.Err() != nil:
		e.Cause = ctx.Err()
	case cause != nil:
		e.Cause = cause
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
