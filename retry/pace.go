package retry

import (
	"context"
	"sync"
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

// probePoll is how often calls held behind an overload probe look again.
const probePoll = 500 * time.Millisecond

// bookingTTL is how long a booking is kept when no response syncs it away.
const bookingTTL = 5 * time.Minute

// PaceState is what is known about one limit key (provider, model,
// credential): the provider's rate-limit windows, a hold, and the overload
// state. The zero value knows nothing and lets every call go. Its methods
// are pure: time and randomness are arguments. It is not safe for
// concurrent use; a Store serializes access to it.
type PaceState struct {
	// Hold is the time before which no call may be sent.
	Hold time.Time `json:"hold"`
	// Windows model the provider's token buckets as a generic cell rate
	// algorithm: a window admits a call of cost c at t when
	// TAT + c·Interval − Span ≤ t.
	Windows []PaceWindow `json:"windows,omitempty"`
	// Bookings are calls booked after the newest synced observation.
	Bookings []Booking `json:"bookings,omitempty"`
	// Synced is the send time of the call whose response last synced the
	// windows; older responses are not applied.
	Synced time.Time `json:"synced"`
	// Answered reports that a response to a call to the key was observed.
	// Until then every call is booked, so that the first windows reported
	// can count the calls in flight; after it, calls are booked only while
	// the provider reports windows.
	Answered bool `json:"answered,omitempty"`
	// Overloads counts consecutive overloaded failures; while positive,
	// calls are held and then let through one probe at a time.
	Overloads int `json:"overloads,omitempty"`
	// OverloadSince is when Overloads last grew; failures of calls sent
	// before it are not counted again.
	OverloadSince time.Time `json:"overload_since"`
	// ProbeUntil is when the probe in flight, if any, expires.
	ProbeUntil time.Time `json:"probe_until"`
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

// Reserve asks to send a call of cost c at now or later. It returns the
// time at which the call may be sent and true, having booked it; or, when
// the call must ask again later (it is held behind an overload probe) or
// the time is after latest (the zero Time means no limit), the time to ask
// again and false, having booked nothing.
func (s *PaceState) Reserve(now, latest time.Time, c Cost, cfg OverloadConfig) (time.Time, bool) {
	at := now
	if s.Hold.After(at) {
		at = s.Hold
	}
	probe := s.Overloads > 0
	if probe {
		switch {
		case s.ProbeUntil.After(now):
			return later(at, earlier(s.ProbeUntil, now.Add(probePoll))), false
		case at.After(now):
			return at, false
		}
	}
	for i := range s.Windows {
		w := &s.Windows[i]
		if d := w.cost(c); d > 0 {
			if t := w.TAT.Add(d - w.Span); t.After(at) {
				at = t
			}
		}
	}
	if !latest.IsZero() && at.After(latest) {
		return at, false
	}
	if probe {
		s.ProbeUntil = at.Add(cfg.ProbeTimeout)
	}
	for i := range s.Windows {
		w := &s.Windows[i]
		w.TAT = later(w.TAT, at).Add(w.cost(c))
	}
	if len(s.Windows) > 0 || !s.Answered {
		s.Bookings = append(s.Bookings, Booking{At: at, Cost: c})
	}
	return at, true
}

// An Observation is what a response taught about its limit key.
type Observation struct {
	// Sent is when the call was sent: the time Reserve returned for it.
	Sent time.Time
	// Class is the outcome's class, "" for a success.
	Class Class
	// Limits are the windows the response reported.
	Limits Limits
	// Hold, when after the current hold, holds every call until then.
	Hold time.Time
	// Rand is a number in [0, 1) for the overload hold's jitter.
	Rand float64
}

// Observe folds what a response, arriving at now, taught into the state:
// windows reported with a limit and a remaining count are synced to the
// provider's count (if the response is not older than the last one
// applied), a later hold replaces the current one, the first overloaded
// failure and each failed probe grow the overload hold, and any other
// answer to a call sent since the overload began ends it. A canceled call (the
// caller's context ended) ends nothing; it only frees the probe's place.
func (s *PaceState) Observe(now time.Time, o Observation, cfg OverloadConfig) {
	if o.Class != Canceled {
		s.Answered = true
	}
	if !o.Sent.Before(s.Synced) {
		s.sync(now, o)
	}
	if o.Hold.After(s.Hold) {
		s.Hold = o.Hold
	}
	switch {
	case o.Class == Overloaded && (s.Overloads == 0 || !o.Sent.Before(s.OverloadSince) && !o.Sent.Before(s.Hold)):
		// The first overload, or a probe's (a call sent after the hold):
		// calls sent earlier report the same overload again.
		s.Overloads++
		s.OverloadSince = now
		s.ProbeUntil = time.Time{}
		hold := Policy{Base: cfg.Base, Max: cfg.Max, Multiplier: 2, Jitter: JitterEqual}
		lo, hi := hold.backoff(s.Overloads)
		if h := now.Add(lo + time.Duration(o.Rand*float64(hi-lo))); h.After(s.Hold) {
			s.Hold = h
		}
	case o.Class == Canceled && !o.Sent.Before(s.OverloadSince):
		// The caller gave up: no news of the provider. The overload lasts,
		// but the probe's place is free.
		s.ProbeUntil = time.Time{}
	case o.Class != Overloaded && !o.Sent.Before(s.OverloadSince):
		s.Overloads, s.ProbeUntil = 0, time.Time{}
	}
	s.prune(now, o)
}

// Quiet reports whether a success that reported no windows and sets no
// hold would change nothing: the provider has been answering without
// windows and is not overloaded. Callers may skip observing it.
func (s *PaceState) Quiet() bool {
	return s.Answered && len(s.Windows) == 0 && s.Overloads == 0 && len(s.Bookings) == 0
}

// sync sets each reported window from the provider's state and replays the
// bookings the provider may not have counted yet: those made after the
// observed call was sent, and all but one of those made at the same instant
// (the observed call is one of them, and the provider may have admitted the
// others after it). A window refills its limit in one minute (providers
// state limits per minute); when the reset is known, the window is full
// again at now+reset and holds the remaining count plus what refills by
// then, else it is full at now+(limit−remaining) intervals and holds one
// minute's limit. The state is taken as of now, which errs on the side of
// caution when the provider counted it at admission. Of two responses to
// calls sent at the same instant, the more cautious wins.
func (s *PaceState) sync(now time.Time, o Observation) {
	synced, same := false, o.Sent.Equal(s.Synced)
	for _, l := range o.Limits {
		if l.Limit <= 0 || l.Remaining < 0 {
			continue
		}
		w := s.window(l)
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
		self := false // whether the observed call's own booking was skipped
		for _, b := range s.Bookings {
			if b.At.Before(o.Sent) || b.At.Equal(o.Sent) && !self {
				self = self || b.At.Equal(o.Sent)
				continue
			}
			w.TAT = later(w.TAT, b.At).Add(w.cost(b.Cost))
		}
		if same && old.After(w.TAT) {
			w.TAT = old
		}
		synced = true
	}
	if !synced {
		return
	}
	s.Synced = o.Sent
	kept := s.Bookings[:0]
	for _, b := range s.Bookings {
		if !b.At.Before(o.Sent) {
			kept = append(kept, b)
		}
	}
	s.Bookings = kept
}

// window returns the state's window for l, adding it if new.
func (s *PaceState) window(l Window) *PaceWindow {
	for i := range s.Windows {
		if s.Windows[i].Reset == l.Reset {
			return &s.Windows[i]
		}
	}
	s.Windows = append(s.Windows, PaceWindow{Reset: l.Reset, Tokens: l.Tokens})
	return &s.Windows[len(s.Windows)-1]
}

// prune drops the bookings no response will sync away: those older than
// bookingTTL and, while the provider reports no windows, those made up to
// the observed call.
func (s *PaceState) prune(now time.Time, o Observation) {
	unpaced := len(s.Windows) == 0 && len(o.Limits) == 0 // nothing to replay them into
	kept := s.Bookings[:0]
	for _, b := range s.Bookings {
		if now.Sub(b.At) <= bookingTTL && !(unpaced && !b.At.After(o.Sent)) {
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

// A Store keeps the PaceState of every limit key. Implementations must be
// safe for concurrent use.
type Store interface {
	// Update calls f with key's state and keeps what f leaves in it. Calls
	// for the same key are serialized; f may run more than once (an
	// optimistic store retries it) and must not block.
	Update(ctx context.Context, key string, f func(*PaceState)) error
}

// MemoryStore is a Store in process memory. The zero value is ready to use.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]*PaceState
}

// Update implements Store. It never fails.
func (m *MemoryStore) Update(_ context.Context, key string, f func(*PaceState)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[string]*PaceState)
	}
	s, ok := m.m[key]
	if !ok {
		s = new(PaceState)
		m.m[key] = s
	}
	f(s)
	return nil
}
