package retry

import (
	"math"
	"slices"
	"time"
)

// A Cost is what one call takes from a limit's windows.
type Cost struct {
	// Requests is the number of requests, usually 1.
	Requests int64
	// Tokens is the estimated tokens of the request, or 0 when unknown (then
	// token windows do not pace the call).
	Tokens int64
}

// window is the minute over which providers state their limits: a window's
// capacity refills in one minute.
const window = time.Minute

// probePoll is how often calls held behind a probe look again.
const probePoll = 500 * time.Millisecond

// bookingTTL is how long a booking is kept when no response syncs it away.
const bookingTTL = 5 * time.Minute

// startWindow is how many calls may be in flight to a limit in slow start
// before any has succeeded, as TCP's initial window; each success lets one
// more go.
const startWindow = 4

// startPoll is the shortest time after which a call held by the slow start
// asks again.
const startPoll = 10 * time.Millisecond

// A HoldKind says what holds a limit's calls back. The names appear in
// reasons.
type HoldKind string

const (
	// HeldHint: a rate-limit hint holds every call until it expires.
	HeldHint HoldKind = "hint"
	// HeldWindow: the limit's windows, or the rate learned when it states
	// none, space the calls.
	HeldWindow HoldKind = "window"
	// HeldOverload: the provider is overloaded: calls are held, then one at
	// a time probes it.
	HeldOverload HoldKind = "overload"
	// HeldCheck: a suspiciously long hint is being checked: calls are held
	// while one probe goes.
	HeldCheck HoldKind = "long-hint check"
	// HeldBlock: the limit or its credential refuses calls for long (quota
	// exhausted, a long hint a probe confirmed): calls give up unsent, one
	// probe per interval.
	HeldBlock HoldKind = "block"
	// HeldStart: the limit is in slow start (it has stated no windows and
	// taught no rate yet): only a few calls are in flight until answers
	// say more.
	HeldStart HoldKind = "slow start"
)

// class is the class of a call that never got an answer because of k.
func (k HoldKind) class(v Verdict) Class {
	switch k {
	case HeldHint, HeldWindow, HeldCheck, HeldStart:
		return RateLimited
	case HeldOverload:
		return Overloaded
	case HeldBlock:
		return v.Class
	}
	return ""
}

// A Hold is what one outcome asks of every call to its limit; Decide sets
// it, PaceState.Observe applies it.
type Hold struct {
	// By is the kind of hold; "" asks nothing.
	By HoldKind `json:"by,omitempty"`
	// For is how long: the hint (HeldHint), the time before the check's
	// probe (HeldCheck), the overload hold (HeldOverload), the block's
	// length (HeldBlock; 0: until a probe succeeds).
	For time.Duration `json:"for,omitempty"`
	// Scope is what a block holds: the limit, or every limit of its
	// credential.
	Scope Scope `json:"scope,omitempty"`
	// Class and Reason are what a call blocked unsent gives up with.
	Class  Class  `json:"class,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Every is how often a blocked limit is probed.
	Every time.Duration `json:"every,omitempty"`
}

// A Block is a limit (or a credential) that refuses calls for long: calls
// give up unsent, and one call per Every probes it.
type Block struct {
	Class  Class  `json:"class"`
	Reason string `json:"reason"`
	// Since is when the block began: a success of a call sent after it ends
	// the block.
	Since time.Time `json:"since"`
	// Until is when the block ends by itself (a confirmed hint), or zero.
	Until time.Time `json:"until"`
	// Every is the probe interval; Next is when the next probe may go.
	Every time.Duration `json:"every"`
	Next  time.Time     `json:"next"`
}

// A Rate is a send rate learned from a limit's refusals when the provider
// states no windows, in the manner of CUBIC (as the AWS SDKs' adaptive retry
// mode does, but per limit). The first refusal sets Max (see
// PaceState.firstRate). Each refusal of a call sent after the last decrease
// sets Max to the rate the limit admitted calls at since that decrease, or
// a minute's successes if more, when that is below the current rate — the
// bucket was empty at both refusals, so what it admitted in between is what
// it refilled, and calls then in flight count as they succeed — else to the
// current rate. Either way the curve restarts: it falls to 0.7·Max, comes
// back to Max along a concave cubic in rateRecovery or rateRecoveryCalls
// intervals at Max, whichever is sooner, and then probes above it along a
// convex one — but never above rateHeadroom times the rate calls have
// recently succeeded at, so that a limit whose calls wait in line (or that
// is idle) does not climb on time alone. Calls are spaced at the rate: no
// burst, and none right after a refusal. A rate with neither a refusal nor
// a success for rateForget is forgotten.
type Rate struct {
	// Max is the rate at the last decrease, in calls per second.
	Max float64 `json:"max"`
	// Since is when the last decrease happened.
	Since time.Time `json:"since"`
	// TAT is when the next call may be sent at the rate.
	TAT time.Time `json:"tat"`
	// Counting reports that Max is the first estimate and calls wait for
	// the answers of those in flight at the first refusal; a decrease ends
	// it.
	Counting bool `json:"counting,omitempty"`
	// Admitted counts the successes of calls sent since Since.
	Admitted int `json:"admitted,omitempty"`
	// After, Over and Counted say which later answers Max still counts,
	// when it is a count of successes over a time (Over > 0): each success
	// of a call sent after After and not after Since adds one to Counted,
	// and Max is at least Counted per Over.
	After   time.Time     `json:"after"`
	Over    time.Duration `json:"over,omitempty"`
	Counted float64       `json:"counted,omitempty"`
}

// The learned rate's curve: the decrease factor, the time back to Max (or
// the calls at Max, if sooner), how far above the recent successes it may
// climb, and how long a rate neither refused nor answered is kept.
const (
	rateBeta          = 0.7
	rateRecovery      = 30 * time.Second
	rateRecoveryCalls = 15
	rateHeadroom      = 1.5
	rateForget        = 5 * time.Minute
	// minRecent is the fewest recent successes a first rate is learned
	// from; with fewer, the refusals are left to the backoff.
	minRecent = 2
)

// recovery is the time the curve takes back to Max: rateRecovery, or
// rateRecoveryCalls intervals at Max if sooner.
func (r *Rate) recovery() time.Duration {
	if r.Max <= 0 {
		return rateRecovery
	}
	return min(rateRecovery, time.Duration(rateRecoveryCalls/r.Max*float64(time.Second)))
}

// cubic is the curve's rate at t, in calls per second.
func (r *Rate) cubic(t time.Time) float64 {
	u := t.Sub(r.Since).Seconds()/r.recovery().Seconds() - 1
	return r.Max * (1 + (1-rateBeta)*u*u*u)
}

// rate is the learned rate at t as known at now (t is later for a call
// booked ahead): the curve at t, but above Max no higher than the curve at
// now, nor than rateHeadroom times the rate calls have succeeded at lately.
// So a line of calls booked ahead climbs back to Max along the curve and
// probes above it only as time passes and successes come, whatever its
// length.
func (s *PaceState) rate(t, now time.Time) float64 {
	r := s.Rate
	return min(r.cubic(t), max(r.Max, min(r.cubic(now), rateHeadroom*s.throughput(now))))
}

// interval is the time between two calls at the learned rate at t, as
// known at now.
func (s *PaceState) interval(t, now time.Time) time.Duration {
	return time.Duration(float64(time.Second) / max(s.rate(t, now), 1e-3))
}

// PaceState is what is known about one limit key (provider, model,
// credential): the provider's rate-limit windows or a rate learned without
// them, the calls in flight, a hold, the overload, a check of a long hint,
// a block, and the latency. It is also the state of a credential's scope,
// where only Block is used. Its methods are pure: time and randomness are
// arguments. It is not safe for concurrent use; a Store serializes access
// to it.
//
// The zero value knows nothing: the limit is in slow start, as a TCP
// connection begins. Until the provider states the limit's windows or a
// refusal teaches its rate, at most startWindow (4) calls are in flight
// (booked and not yet answered), plus one for each success; the others
// wait and ask again (By HeldStart). So the calls that meet a limit
// together first, as many runs started at once on one key do, do not all
// go into a bucket nobody has measured: a few go, and their answers pace
// the rest — the first response that states the windows ends the slow
// start. A call in flight for longer than the Ask's ProbeTimeout no longer
// holds its place. The state lives in the Store, so every process sharing
// one shares the slow start.
//
// The calls in flight are also what a response's count may leave out: the
// provider counted it when it admitted that call, and calls may reach it
// in another order than they were sent. So when a response syncs the
// windows, every call sent at or after the observed one is counted on top,
// answered or not, and so is every call still in flight that was sent up
// to a round trip before it; only the calls answered, or sent earlier, are
// taken as counted (see sync).
type PaceState struct {
	// Hold is the time before which no call may be sent.
	Hold time.Time `json:"hold"`
	// Windows model the provider's token buckets as a generic cell rate
	// algorithm: a window admits a call of cost c at t when
	// TAT + c·Interval − Span ≤ t.
	Windows []PaceWindow `json:"windows,omitempty"`
	// Bookings are the calls the provider's next count may leave out, or
	// that are in flight: those booked and not answered yet, and, while the
	// limit has windows, those answered that were booked at or after the
	// call whose response last synced them. Calls are booked while the
	// limit has windows or is in slow start.
	Bookings []Booking `json:"bookings,omitempty"`
	// Synced is the send time of the call whose response last synced the
	// windows; older responses are not applied.
	Synced time.Time `json:"synced"`
	// Acked counts the successes while the limit had no windows: the slow
	// start lets startWindow+Acked calls be in flight.
	Acked int `json:"acked,omitempty"`
	// Overloads counts consecutive overloaded failures (probes included);
	// while positive, calls are held and then let through one probe at a
	// time.
	Overloads int `json:"overloads,omitempty"`
	// OverloadSince is when Overloads last grew; failures of calls sent
	// before it are not counted again.
	OverloadSince time.Time `json:"overload_since"`
	// Check is when the check of a suspiciously long hint began, or zero:
	// while set, calls are held and then let through one probe at a time.
	Check time.Time `json:"check"`
	// ProbeUntil is when the probe in flight, if any, expires.
	ProbeUntil time.Time `json:"probe_until"`
	// Block, when set, makes calls give up unsent but for one probe per
	// interval.
	Block *Block `json:"block,omitempty"`
	// Rate, when set, paces calls to a limit that states no windows.
	Rate *Rate `json:"rate,omitempty"`
	// Recent counts successes in about the last minute (decayed
	// exponentially), as of RecentAt: the first learned rate.
	Recent   float64   `json:"recent,omitempty"`
	RecentAt time.Time `json:"recent_at"`
	// RecentSince is when the first call Recent counts was sent: while
	// less than a minute or so ago, Recent weighs a shorter time.
	RecentSince time.Time `json:"recent_since"`
	// Latency estimates how fast an attempt can be answered: the fastest
	// recent success, drifting up slowly (an eighth of the way per
	// success).
	Latency time.Duration `json:"latency,omitempty"`
}

// A PaceWindow is one provider window as the pacer models it.
type PaceWindow struct {
	// Reset names the window by its reset header.
	Reset Source `json:"reset"`
	// Tokens reports a token window; others count requests.
	Tokens bool `json:"tokens,omitempty"`
	// Interval is the time the window takes to refill one unit.
	Interval time.Duration `json:"interval"`
	// Span is the time the window takes to refill from empty: its capacity
	// times Interval.
	Span time.Duration `json:"span"`
	// TAT is the time at which the window would be full again given every
	// booking.
	TAT time.Time `json:"tat"`
}

// A Booking is a call booked to be sent at At.
type Booking struct {
	At   time.Time `json:"at"`
	Cost Cost      `json:"cost"`
	// Answered reports that the call's answer was observed and may have
	// been counted by the provider (the booking of a call it refused goes
	// at its answer).
	Answered bool `json:"answered,omitempty"`
}

// An Ask is a call asking its limit's pacer when it may send.
type Ask struct {
	// Now is the asker's clock. A store with its own clock (a shared one)
	// reads every other time of the Ask relative to Now.
	Now time.Time
	// NotBefore is when the call's own delay ends; zero or before Now
	// means now.
	NotBefore time.Time
	// Deadline is the caller's deadline, or zero. Nothing is booked so late
	// that an attempt could not finish before it (MinAttemptTime, or the
	// limit's Latency if longer).
	Deadline       time.Time
	MinAttemptTime time.Duration
	// Cost is what the call takes from the windows.
	Cost Cost
	// Tokens, when not nil, estimates the call's tokens; a store calls it
	// only when the limit has a token window and Cost.Tokens is 0, outside
	// any lock (it may read a large body), and reports the estimate in
	// Verdict.Cost.
	Tokens func() int64
	// Booked, when not zero, is the place the call holds (it slept until
	// then), booked at BookedAt: the pacer confirms it, or, when a hold,
	// an overload, a check or a block began since, books anew.
	Booked, BookedAt time.Time
	// ProbeTimeout is how long a probe may take before another call may
	// probe in its place.
	ProbeTimeout time.Duration
}

// A Verdict is the pacer's answer to an Ask.
type Verdict struct {
	// At is when the call may be sent (Booked) or should ask again.
	At time.Time
	// Booked reports that the call holds a place at At.
	Booked bool
	// Confirmed reports that the place asked about (Ask.Booked) stands.
	Confirmed bool
	// By is what holds the call when At is later than it asked, or what
	// blocks it; "" when nothing does.
	By HoldKind
	// Probe reports that the call is the limit's probe (of an overload, a
	// check or a block).
	Probe bool
	// Class and Reason say why a blocked call gives up, Until when the
	// block ends by itself (zero: only a probe ends it).
	Class  Class
	Reason string
	Until  time.Time
	// Window is the longest window the limit is known to have, or 0.
	Window time.Duration
	// Latency is the limit's latency estimate, or 0 when unknown.
	Latency time.Duration
	// Cost is the cost the call was booked with (its token estimate, when
	// the store asked for it).
	Cost Cost
	// Local reports that a shared store answered from its process's own
	// state because the shared one was unavailable (unreachable, too slow):
	// the call is paced on a conservative share of the limit, not with the
	// fleet. The engine passes it on to the Observer (Event.Local).
	Local bool
}

// An Observation is what a response taught about its limit key.
type Observation struct {
	// Now is when the response arrived.
	Now time.Time
	// Sent is when the call was sent: the time the pacer gave it.
	Sent time.Time
	// Class is the outcome's class, "" for a success.
	Class Class
	// Limits are the windows the response reported.
	Limits Limits
	// Hold is what the decision asked of the limit.
	Hold Hold
	// Unsent reports that the call was not sent after all: its caller gave
	// up while it waited for the time the pacer gave it, and gives that
	// place back. Class is then Canceled.
	Unsent bool
}

// countsTokens reports whether a token window paces calls: only then is a
// call's token cost needed.
func (s *PaceState) countsTokens() bool {
	for _, w := range s.Windows {
		if w.Tokens {
			return true
		}
	}
	return false
}

// cost is what c takes from w, in time. A call larger than the window's
// capacity costs nothing: it can never fit, the provider refuses it at
// once (request too large), and holding the window for it would only
// delay the calls that can.
func (w *PaceWindow) cost(c Cost) time.Duration {
	n := c.Requests
	if w.Tokens {
		n = c.Tokens
	}
	if n <= 0 || w.Interval <= 0 || n > int64(w.Span/w.Interval) { // also keeps n·Interval from overflowing
		return 0
	}
	return time.Duration(n) * w.Interval
}

// probing is what holds calls behind one probe at a time, if anything.
func (s *PaceState) probing() HoldKind {
	switch {
	case !s.Check.IsZero():
		return HeldCheck
	case s.Overloads > 0:
		return HeldOverload
	}
	return ""
}

// Book answers a call asking to send (see Ask and Verdict); cred is the
// state of the limit's credential, or nil. In order:
//
//   - A place asked about (Ask.Booked) stands unless a hold, an overload, a
//     check or a block began, or the rate fell, since it was booked; else
//     it is given up and the call is booked anew.
//   - A block, of the credential or the limit, refuses the call unbooked
//     (By HeldBlock) unless its probe may go: not before Next, one at a
//     time; a block past its Until is lifted.
//   - The call's time is the latest of now, its NotBefore and the hold.
//   - While an overload or a check holds the limit, a call whose time
//     (windows included) is later than now is told to come back then, and
//     while a probe is in flight every call is told to look again within
//     probePoll; otherwise the call is the probe, sent now.
//   - In slow start (see PaceState), a call is told to ask again (By
//     HeldStart) when the calls in flight fill the start window; so is
//     every call while the first learned rate still waits for the answers
//     of calls sent before its refusal. It asks again after a quarter of
//     the time the oldest call in flight has been out, within [startPoll,
//     probePoll].
//   - The windows (or the learned rate) delay it until it fits; a call
//     delayed by nothing but its own NotBefore is told to come back then,
//     unbooked, so that its place does not push the calls behind it.
//   - A time too late for an attempt to finish before the deadline books
//     nothing.
//
// Otherwise the call is booked at its time.
func (s *PaceState) Book(cred *PaceState, a Ask) Verdict {
	now := a.Now
	v := Verdict{Window: s.window(), Latency: s.Latency, Cost: a.Cost}
	if !a.Booked.IsZero() {
		if !s.heldSince(cred, a.BookedAt, a.Booked) {
			v.At, v.Booked, v.Confirmed = a.Booked, true, true
			return v
		}
		if i := s.booking(a.Booked); i >= 0 {
			s.Bookings = slices.Delete(s.Bookings, i, i+1) // the place is given up
		}
	}
	var probed []*PaceState // blocks this call probes, if it is booked
	for _, st := range []*PaceState{cred, s} {
		if st == nil || st.Block == nil {
			continue
		}
		b := st.Block
		switch {
		case !b.Until.IsZero() && !now.Before(b.Until):
			st.Block = nil
		case now.Before(b.Next) || st.ProbeUntil.After(now):
			v.At, v.By, v.Class, v.Reason, v.Until = later(b.Next, st.ProbeUntil), HeldBlock, b.Class, b.Reason, b.Until
			return v
		default:
			probed = append(probed, st)
		}
	}

	at, by := later(now, a.NotBefore), HoldKind("")
	if s.Hold.After(at) {
		at, by = s.Hold, HeldHint
	}
	p := s.probing()
	if p != "" {
		switch {
		case s.ProbeUntil.After(now):
			v.At, v.By = later(at, earlier(s.ProbeUntil, now.Add(probePoll))), p
			return v
		case at.After(now):
			v.At, v.By = at, p
			return v
		}
	}
	if (s.starting() || s.Rate != nil && s.Rate.Counting) && a.ProbeTimeout > 0 {
		if n, oldest := s.inFlight(now, a.ProbeTimeout); n > 0 && n >= s.flightLimit() {
			v.At, v.By = later(at, now.Add(min(max(now.Sub(oldest)/4, startPoll), probePoll))), HeldStart
			return v
		}
	}
	for i := range s.Windows {
		w := &s.Windows[i]
		if d := w.cost(a.Cost); d > 0 {
			if t := w.TAT.Add(d - w.Span); t.After(at) {
				at, by = t, HeldWindow
			}
		}
	}
	if s.Rate != nil && s.Rate.TAT.After(at) {
		at, by = s.Rate.TAT, HeldWindow
	}
	v.At, v.By = at, by
	if !a.Deadline.IsZero() && at.Add(max(a.MinAttemptTime, s.Latency)).After(a.Deadline) {
		return v
	}
	if by == "" && at.After(now) {
		return v // held by its own delay only: it books when that ends
	}
	if (p != "" || len(probed) > 0) && at.After(now) {
		return v // a probe is booked only to go now: the others wait while it is in flight
	}

	v.Booked = true
	if p != "" {
		s.ProbeUntil = at.Add(a.ProbeTimeout)
		v.Probe, v.By = true, p
	}
	for _, st := range probed {
		st.Block.Next = now.Add(st.Block.Every)
		st.ProbeUntil = at.Add(a.ProbeTimeout)
		v.Probe, v.By = true, HeldBlock
	}
	for i := range s.Windows {
		w := &s.Windows[i]
		w.TAT = later(w.TAT, at).Add(w.cost(a.Cost))
	}
	if s.Rate != nil {
		s.Rate.TAT = at.Add(s.interval(at, now))
	}
	if len(s.Windows) > 0 || s.starting() {
		s.Bookings = append(s.Bookings, Booking{At: at, Cost: a.Cost})
	}
	return v
}

// starting reports whether the limit is in slow start: it has stated no
// windows and taught no rate.
func (s *PaceState) starting() bool { return len(s.Windows) == 0 && s.Rate == nil }

// flightLimit is how many calls may be in flight in slow start; none while
// the first learned rate still counts the answers of calls in flight.
func (s *PaceState) flightLimit() int {
	if s.Rate != nil {
		return 0
	}
	return startWindow + s.Acked
}

// inFlight returns the number of calls booked and not answered, leaving out
// those booked to go more than timeout ago, and the earliest time one of
// them was booked to go.
func (s *PaceState) inFlight(now time.Time, timeout time.Duration) (n int, oldest time.Time) {
	for _, b := range s.Bookings {
		if !b.Answered && now.Sub(b.At) < timeout {
			n++
			if oldest.IsZero() || b.At.Before(oldest) {
				oldest = b.At
			}
		}
	}
	return n, oldest
}

// heldSince reports whether, since a call was booked (at bookedAt, to be
// sent at at), a hold past at, an overload, a check or a block began, or the
// learned rate fell: a call booked before then must not be sent into it.
func (s *PaceState) heldSince(cred *PaceState, bookedAt, at time.Time) bool {
	blockedSince := func(st *PaceState) bool { return st != nil && st.Block != nil && st.Block.Since.After(bookedAt) }
	return s.Hold.After(at) || s.Overloads > 0 && s.OverloadSince.After(bookedAt) ||
		s.Check.After(bookedAt) || blockedSince(s) || blockedSince(cred) ||
		s.Rate != nil && s.Rate.Since.After(bookedAt) // the rate fell: the line is spaced anew
}

// window is the longest window the state knows, or 0.
func (s *PaceState) window() time.Duration {
	var w time.Duration
	for _, pw := range s.Windows {
		w = max(w, pw.Span)
	}
	return w
}

// Observe folds what a response taught into the state, and into cred (the
// credential's state, or nil) what names the credential:
//
//   - Windows reported with a limit and a remaining count are synced to the
//     provider's count, if the response is not older than the last one
//     applied, with the calls it may not have counted replayed (see sync);
//     the learned rate is then dropped.
//   - The observed call is no longer in flight: its booking goes if it was
//     not sent (Unsent) or the provider refused it uncounted (rate_limited,
//     overloaded, quota_exhausted, request_too_large), and is otherwise
//     kept, answered, while a later count may still leave it out.
//   - The decision's Hold applies: a hint holds the limit until it expires;
//     a check holds it for For and starts the check (unless one is on); an
//     overload holds it for For, the first time and after each failed probe
//     (a call sent after the hold began); a block is set on its scope.
//   - An answer other than an overload to a call sent since the overload
//     began ends it; one other than a long hint to a call sent since the
//     check began ends the check; a success of a call sent since a block
//     began lifts the block. A canceled call (the caller's context ended)
//     ends nothing: it only frees the probe's place.
//   - A rate-limit refusal when the limit has no windows teaches the rate,
//     whether its hint holds the limit or not (the hint says when, the rate
//     how fast after): the first (if at least minRecent calls succeeded in
//     the last minute) sets Max as firstRate says, later ones (of calls
//     sent after the last decrease) to the rate the limit admitted calls at
//     since that decrease or the current rate (see Rate); either way the
//     rate falls to 0.7·Max, and the next call waits one interval. A rate
//     neither refused nor answered for rateForget is forgotten first.
//   - A success counts toward Recent and the Latency and, while the limit
//     has no windows, lets one more call be in flight in slow start; while
//     a rate is learned, it counts toward the rate admitted since the last
//     decrease, or toward Max if its call was in flight at that decrease.
func (s *PaceState) Observe(cred *PaceState, o Observation) {
	now := o.Now
	if s.rateStale(now) {
		s.Rate = nil
	}
	if lat := now.Sub(o.Sent); o.Class == "" && lat >= 0 {
		if s.Latency == 0 || lat < s.Latency {
			s.Latency = lat
		} else {
			s.Latency += (lat - s.Latency) / 8
		}
	}
	i := s.booking(o.Sent)
	var own Booking
	if i >= 0 {
		own = s.Bookings[i]
		s.Bookings = slices.Delete(s.Bookings, i, i+1) // it is in its own count
	}
	if !o.Sent.Before(s.Synced) && s.sync(now, o) {
		s.Rate = nil
	}
	if i >= 0 && !o.Unsent && !uncounted(o.Class) {
		own.Answered = true
		j := slices.IndexFunc(s.Bookings, func(b Booking) bool { return b.At.After(own.At) })
		if j < 0 {
			j = len(s.Bookings)
		}
		s.Bookings = slices.Insert(s.Bookings, j, own)
	}
	if o.Class == "" {
		if len(s.Windows) == 0 {
			s.Acked++
		}
		if s.RecentSince.IsZero() {
			s.RecentSince = o.Sent
		}
		s.Recent = s.recent(now) + 1
		s.RecentAt = now
		if r := s.Rate; r != nil {
			switch {
			case o.Sent.After(r.Since):
				r.Admitted++
			case r.Over > 0 && o.Sent.After(r.After):
				// It was in flight at the decrease.
				r.Counted++
				r.Max = max(r.Max, r.Counted/r.Over.Seconds())
			}
		}
	}

	h := o.Hold
	switch h.By {
	case HeldHint:
		s.Hold = later(s.Hold, now.Add(h.For))
	case HeldCheck:
		if s.Check.IsZero() && s.Block == nil {
			s.Check, s.ProbeUntil = now, time.Time{}
			s.Hold = later(s.Hold, now.Add(h.For))
		}
	case HeldOverload:
		if s.Overloads == 0 || !o.Sent.Before(s.OverloadSince) && !o.Sent.Before(s.Hold) {
			// The first overload, or a probe's (a call sent after the
			// hold): calls sent earlier report the same overload again.
			s.Overloads++
			s.OverloadSince, s.ProbeUntil = now, time.Time{}
			s.Hold = later(s.Hold, now.Add(h.For))
		}
	case HeldBlock:
		st := s
		if h.Scope == ScopeCredential && cred != nil {
			st = cred
		}
		b := &Block{Class: h.Class, Reason: h.Reason, Since: now, Every: h.Every, Next: now.Add(h.Every)}
		if h.For > 0 {
			b.Until = now.Add(h.For)
		}
		if st.Block != nil {
			b.Since = st.Block.Since // a probe refused again: the block goes on
		}
		st.Block, st.ProbeUntil = b, time.Time{}
		s.Check = time.Time{}
	}

	answered := o.Class != Canceled
	if !s.Check.IsZero() && !o.Sent.Before(s.Check) && h.By != HeldCheck && h.By != HeldBlock {
		if answered {
			s.Check = time.Time{}
		}
		s.ProbeUntil = time.Time{}
	}
	if s.Overloads > 0 && o.Class != Overloaded && !o.Sent.Before(s.OverloadSince) {
		if answered {
			s.Overloads = 0
		}
		s.ProbeUntil = time.Time{}
	}
	for _, st := range []*PaceState{s, cred} {
		if st == nil || st.Block == nil || o.Sent.Before(st.Block.Since) {
			continue
		}
		switch {
		case o.Class == "":
			st.Block, st.ProbeUntil = nil, time.Time{}
		case o.Class == Canceled && h.By != HeldBlock:
			st.ProbeUntil = time.Time{}
		}
	}

	if o.Class == RateLimited && len(s.Windows) == 0 && (h.By == "" || h.By == HeldCheck || h.By == HeldHint) {
		cut := true
		switch {
		case s.Rate == nil && s.recent(now) >= minRecent:
			max, over := s.firstRate(now, h)
			s.Rate = &Rate{Max: max, Since: now, Counting: true, Over: over, Counted: max * over.Seconds()}
		case s.Rate != nil && o.Sent.After(s.Rate.Since):
			r, span := s.Rate, now.Sub(s.Rate.Since)
			cur, over := s.rate(now, now), time.Duration(0)
			if avg := float64(r.Admitted) / span.Seconds(); avg < cur {
				// The bucket was empty at both refusals: what it admitted
				// in between is what it refilled, a minute's successes
				// at least.
				cur, over = min(cur, max(avg, s.recent(now)/window.Seconds())), span
			}
			*r = Rate{Max: cur, Since: now, After: r.Since, Over: over, Counted: float64(r.Admitted)}
		default:
			cut = false
		}
		if cut {
			// The bucket is empty now; the calls in line book anew (see
			// heldSince), so their places are given up. Other refusals
			// of the same instant leave the places booked since.
			s.Rate.TAT = now.Add(s.interval(now, now))
		}
	}
	s.prune(now)
}

// firstRate is the first learned rate, at a refusal that holds the limit
// by h, and the time it counts successes over (see Rate.Over): the rate
// calls succeeded at lately (see throughput), up to one call per h when a
// hint says the limit admits a call again within h (the bucket the refusal
// found empty refills a call in at least h); or, if more, the successes of
// the last minute per second, a floor, as a bucket holds at most a
// minute's limit. An overestimate is corrected at the next refusal (see
// Rate).
func (s *PaceState) firstRate(now time.Time, h Hold) (float64, time.Duration) {
	floor := s.recent(now) / window.Seconds()
	r := s.throughput(now)
	if h.By == HeldHint && h.For > 0 {
		r = min(r, 1/h.For.Seconds())
	}
	if r > floor {
		return r, 0
	}
	return floor, window
}

// rateStale reports whether the learned rate is forgotten at now: neither
// a refusal nor a success for rateForget.
func (s *PaceState) rateStale(now time.Time) bool {
	return s.Rate != nil && now.Sub(later(s.Rate.Since, s.RecentAt)) > rateForget
}

// booking returns the index of the first booking not answered of a call
// sent at sent, or -1.
func (s *PaceState) booking(sent time.Time) int {
	return slices.IndexFunc(s.Bookings, func(b Booking) bool { return !b.Answered && b.At.Equal(sent) })
}

// uncounted reports whether the provider refuses a call of class c without
// counting it against the limit's windows.
func uncounted(c Class) bool {
	switch c {
	case RateLimited, Overloaded, QuotaExhausted, RequestTooLarge:
		return true
	}
	return false
}

// recent is Recent decayed to now: successes in about the last minute.
func (s *PaceState) recent(now time.Time) float64 {
	if s.Recent == 0 || !now.After(s.RecentAt) {
		return s.Recent
	}
	return s.Recent * math.Exp(-now.Sub(s.RecentAt).Seconds()/window.Seconds())
}

// throughput is the rate calls have succeeded at lately, per second:
// Recent over the time it weighs, about a minute, or less when the first
// counted call was sent less than a minute or so ago (RecentSince). For
// calls succeeding at a steady rate since RecentSince, it is that rate.
func (s *PaceState) throughput(now time.Time) float64 {
	tau := window.Seconds()
	span := tau
	if age := now.Sub(s.RecentSince).Seconds(); !s.RecentSince.IsZero() && age > 0 {
		span = tau * -math.Expm1(-age/tau)
	}
	return s.recent(now) / span
}

// Idle reports whether the state carries no information at now that a new
// state would not: no hold, overload, check, block or learned rate, every
// window full again, no booking younger than a window. A store may forget
// an idle state.
func (s *PaceState) Idle(now time.Time) bool {
	if s.Hold.After(now) || s.Overloads > 0 || !s.Check.IsZero() || s.Block != nil || s.Rate != nil && !s.rateStale(now) || s.ProbeUntil.After(now) {
		return false
	}
	for _, w := range s.Windows {
		if w.TAT.After(now) {
			return false
		}
	}
	for _, b := range s.Bookings {
		if now.Sub(b.At) < window {
			return false
		}
	}
	return true
}

// sync sets each reported window from the provider's count and replays the
// bookings that count may leave out. The count was taken when the provider
// admitted the observed call, and calls may reach it in another order than
// they were sent: so every call sent at or after the observed one is
// replayed, answered or not, and so is every call still in flight that was
// sent at most a round trip before it (the fastest known: the limit's
// Latency, or the observed call's own if shorter), which may have reached
// the provider after it; the observed call's own booking is not among them
// (see Observe). Earlier calls are taken as counted, and their bookings
// go. A window refills its limit in one minute (providers state limits per
// minute); when the reset is known, the window is full again at now+reset
// and holds the remaining count plus what refills by then, else it is full
// at now+(limit−remaining) intervals and holds one minute's limit. The
// state is taken as of now, not of the admission: what refilled since is
// left out, on the side of caution. Of two responses to calls sent at the
// same instant, the more cautious wins: which of them the provider admitted
// first is unknown. It reports whether any window was synced.
func (s *PaceState) sync(now time.Time, o Observation) bool {
	rtt := now.Sub(o.Sent)
	if s.Latency > 0 {
		rtt = min(rtt, s.Latency)
	}
	uncounted := func(b Booking) bool {
		return !b.At.Before(o.Sent) || !b.Answered && !b.At.Before(o.Sent.Add(-rtt))
	}
	synced, same := false, o.Sent.Equal(s.Synced)
	for _, l := range o.Limits {
		if l.Limit <= 0 || l.Remaining < 0 {
			continue
		}
		w := s.paceWindow(l)
		old := w.TAT
		w.Interval = window / time.Duration(l.Limit)
		if l.Until >= 0 {
			// The reset says when the window is full again: that is the
			// TAT, and the capacity is what is left plus what refills by
			// then (a provider may allow less than a minute's limit).
			w.TAT = now.Add(l.Until)
			w.Span = l.Until + time.Duration(min(l.Remaining, l.Limit))*w.Interval
		} else {
			w.TAT = now.Add(time.Duration(max(l.Limit-l.Remaining, 0)) * w.Interval)
			w.Span = window
		}
		for _, b := range s.Bookings {
			if uncounted(b) {
				w.TAT = later(w.TAT, b.At).Add(w.cost(b.Cost))
			}
		}
		if same && old.After(w.TAT) {
			w.TAT = old // of two counts taken at the same instant, the more cautious wins
		}
		synced = true
	}
	if !synced {
		return false
	}
	s.Synced = o.Sent
	kept := s.Bookings[:0]
	for _, b := range s.Bookings {
		if uncounted(b) {
			kept = append(kept, b)
		}
	}
	clear(s.Bookings[len(kept):])
	s.Bookings = kept
	return true
}

// paceWindow returns the state's window for l, adding it if new.
func (s *PaceState) paceWindow(l Window) *PaceWindow {
	for i := range s.Windows {
		if s.Windows[i].Reset == l.Reset {
			return &s.Windows[i]
		}
	}
	s.Windows = append(s.Windows, PaceWindow{Reset: l.Reset, Tokens: l.Tokens})
	return &s.Windows[len(s.Windows)-1]
}

// prune drops the bookings no count will leave out (see sync for the
// others): the answered ones sent before the call whose response last
// synced the windows, all answered ones while the limit has no windows
// (there is nothing to replay them into, and they are no longer in flight),
// and any older than bookingTTL.
func (s *PaceState) prune(now time.Time) {
	kept := s.Bookings[:0]
	for _, b := range s.Bookings {
		counted := b.Answered && (len(s.Windows) == 0 || b.At.Before(s.Synced))
		if !counted && now.Sub(b.At) <= bookingTTL {
			kept = append(kept, b)
		}
	}
	clear(s.Bookings[len(kept):])
	s.Bookings = kept
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
