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

	ask  ask              // the pacer's question and answer, for book
	book func(*PaceState) // c.ask.apply, bound once per pooled call
}

// An ask is a request to the pacer and its answer. Its apply runs under
// the Store's lock; it lives in the call so that asking allocates nothing.
type ask struct {
	from, now, deadline time.Time
	cost                Cost
	tokens              bool // a token estimate is still to be made
	cfg                 OverloadConfig

	at                             time.Time
	booked, overloaded, quiet, est bool
}

// apply books the call on s, or says why not: see PaceState.Reserve. While
// the key is overloaded a call still in its own delay is told to come back
// when the delay ends, rather than take the probe's place while sleeping;
// a call whose token cost a window needs is told to estimate it first.
func (a *ask) apply(s *PaceState) {
	a.at, a.booked, a.overloaded, a.quiet, a.est = a.from, false, s.Overloads > 0, s.Quiet(), false
	switch {
	case a.tokens && s.countsTokens():
		a.est = true
	case a.overloaded && a.from.After(a.now):
	default:
		a.at, a.booked = s.Reserve(a.from, a.deadline, a.cost, a.cfg)
	}
}

// calls recycles calls: one is made per request, on the hot path.
var calls = sync.Pool{New: func() any {
	c := new(call)
	c.book = c.ask.apply
	return c
}}

// start begins a call; end must be called when it is over, after which c
// must not be used.
func (r *Retrier) start(key Key, tokens func() int64, replayable bool) *call {
	c := calls.Get().(*call)
	book := c.book
	*c = call{r: r, key: key, id: key.String(), cost: Cost{Requests: 1}, tokens: tokens, replayable: replayable, book: book}
	return c
}

// end releases c.
func (c *call) end() {
	book := c.book
	*c = call{book: book}
	calls.Put(c)
}

// wait waits until the call may send its next attempt: the last decision's
// delay is over and the limit's pacer books it. It gives up at once, with an
// *Error wrapping ErrDeadline, when the pacer's time is past ctx's deadline,
// and returns an *Error wrapping ctx.Err() when ctx ends while waiting.
func (c *call) wait(ctx context.Context) error {
	deadline, _ := ctx.Deadline()
	began := c.r.now()
	for now := began; ; now = c.r.now() {
		c.ask = ask{from: later(now, c.notBefore), now: now, deadline: deadline, cost: c.cost, tokens: c.tokens != nil, cfg: c.r.cfg.Overload}
		// A store that fails is bypassed: the call goes unpaced rather than
		// not at all.
		c.ask.at, c.ask.booked = c.ask.from, true
		_ = c.r.store.Update(ctx, c.id, c.book)
		a := c.ask
		c.quiet = a.quiet
		if a.est { // outside the store's lock, then ask again
			c.cost.Tokens, c.tokens = c.tokens(), nil
			continue
		}
		if !deadline.IsZero() && a.at.After(deadline) {
			held := RateLimited // held by a hint or paced by a window
			if a.overloaded {
				held = Overloaded
			}
			return c.stopBeforeSend(ctx, began, ErrDeadline, held, fmt.Sprintf(
				"calls to this limit are held for %s, past the deadline", fmtDur(a.at.Sub(now))))
		}
		if a.at.After(now) {
			if err := sleep(ctx, a.at.Sub(now)); err != nil {
				if a.booked { // free a probe's place: this call will not be sent
					c.release(ctx, a.at)
				}
				return c.stopBeforeSend(ctx, began, err, Canceled, "the caller's context ended while waiting")
			}
			if a.booked && c.heldSince(ctx, now, a.at) {
				continue // a hold began while this call slept: book again
			}
		} else if err := ctx.Err(); err != nil {
			return c.stopBeforeSend(ctx, began, err, Canceled, "the caller's context ended while waiting")
		}
		if a.booked {
			c.sent = a.at
			if c.queued = 0; a.at.After(began) {
				c.queued = c.r.now().Sub(began)
			}
			c.waited += c.queued
			return nil
		}
	}
}

// release frees the place of the call booked at at, which will not be sent.
func (c *call) release(ctx context.Context, at time.Time) {
	_ = c.r.store.Update(ctx, c.id, func(s *PaceState) {
		s.Observe(c.r.now(), Observation{Sent: at, Class: Canceled}, c.r.cfg.Overload)
	})
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
