package retry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// held fails the test unless a Book at now is held by the slow start, told
// to ask again at want.
func held(t *testing.T, s *PaceState, now, want time.Time) {
	t.Helper()
	n := len(s.Bookings)
	v := book(s, now, one)
	require.False(t, v.Booked, "Book(t0+%v) = t0+%v, booked; want held by the slow start", now.Sub(t0), v.At.Sub(t0))
	require.Equal(t, HeldStart, v.By, "Book(t0+%v): By", now.Sub(t0))
	require.WithinDuration(t, want, v.At, 0, "Book(t0+%v): ask again at", now.Sub(t0))
	require.Len(t, s.Bookings, n, "a held Book booked")
}

// A limit nothing is known of lets four calls go, then one more per
// success; the others ask again after a quarter of the time the oldest call
// has been out. The first response that states the windows ends it.
func TestPaceSlowStart(t *testing.T) {
	var s PaceState
	for range startWindow {
		reserve(t, &s, t0, one, t0)
	}
	held(t, &s, t0, ts(0.01))      // no time out yet: the shortest wait
	held(t, &s, ts(0.4), ts(0.5))  // out for 400 ms: ask again in 100 ms
	held(t, &s, ts(9), ts(9.5))    // never longer than probePoll
	held(t, &s, ts(0.2), ts(0.25)) // the clock of the asker, not the latest seen

	// A success: it is no longer in flight, and one more may go.
	s.Observe(nil, Observation{Now: ts(0.5), Sent: t0})
	assert.Equal(t, 1, s.Acked, "Acked")
	reserve(t, &s, ts(0.5), one, ts(0.5))
	reserve(t, &s, ts(0.5), one, ts(0.5))
	held(t, &s, ts(0.5), ts(0.625))
	// A failure that is not a refusal frees its place, and widens nothing.
	s.Observe(nil, Observation{Now: ts(0.55), Sent: t0, Class: ServerError})
	assert.Equal(t, 1, s.Acked, "Acked after a server error")
	reserve(t, &s, ts(0.55), one, ts(0.55))
	held(t, &s, ts(0.55), ts(0.6875))

	// The windows end the slow start. The calls still in flight (two sent
	// at t0, the observed one of them, two at 0.5s, one at 0.55s) are
	// counted on top of the provider's count: 10 used, full again in 10s.
	s.Observe(nil, Observation{Now: ts(0.6), Sent: t0, Limits: requests(60, 50)})
	require.Len(t, s.Windows, 1)
	assert.WithinDuration(t, ts(14.6), s.Windows[0].TAT, 0, "TAT: 0.6s + 10 used + the 4 others in flight")
	for range 10 {
		v := book(&s, ts(0.6), one)
		require.True(t, v.Booked, "the windows pace now, not the start window")
		assert.Empty(t, v.By)
	}
}

// A call that stays in flight longer than the ProbeTimeout (lost, or slow)
// no longer holds its place.
func TestPaceSlowStartTimeout(t *testing.T) {
	var s PaceState
	for range startWindow {
		reserve(t, &s, t0, one, t0)
	}
	held(t, &s, ts(29.9), ts(30.4))
	reserve(t, &s, ts(30), one, ts(30))
	// Without a ProbeTimeout no call holds a place.
	v := s.Book(nil, Ask{Now: ts(30), Cost: one})
	assert.True(t, v.Booked)
}

// Without windows the slow start lasts until a refusal teaches the rate,
// whether it carries a hint or not; until the calls sent before it that are
// still in flight are answered, no call is booked at a rate that does not
// count them yet. Without a hint (or with one longer than a minute's
// successes allow) the first rate is a minute's successes, and those of the
// calls in flight count toward it as they come; with a hint it is the rate
// calls succeeded at since the first was sent, at most one per hint.
func TestPaceSlowStartUntilARefusal(t *testing.T) {
	tests := map[string]struct {
		hold       Hold
		max, after float64 // Max at the refusal, and after the seven in flight succeed
	}{
		"no hint":    {Hold{}, 4 / 0.4, 4 / 0.4}, // four in 0.4 s
		"long hint":  {Hold{By: HeldHint, For: 20 * time.Second}, 4.0 / 60, 11.0 / 60},
		"hint":       {Hold{By: HeldHint, For: 200 * time.Millisecond}, 5, 5},            // one per hint
		"short hint": {Hold{By: HeldHint, For: 50 * time.Millisecond}, 4 / 0.4, 4 / 0.4}, // four in 0.4 s
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var s PaceState
			for range startWindow {
				reserve(t, &s, t0, one, t0)
			}
			for range startWindow {
				s.Observe(nil, Observation{Now: ts(0.3), Sent: t0})
			}
			assert.Empty(t, s.Bookings, "answered calls of a limit without windows are not kept")
			for range 2 * startWindow {
				reserve(t, &s, ts(0.3), one, ts(0.3))
			}
			held(t, &s, ts(0.3), ts(0.31))

			s.Observe(nil, Observation{Now: ts(0.4), Sent: ts(0.3), Class: RateLimited, Hold: tt.hold})
			require.NotNil(t, s.Rate, "a refusal teaches the rate")
			assert.InEpsilon(t, tt.max, s.Rate.Max, 0.01, "at the refusal")
			if tt.hold.By == HeldHint {
				assert.WithinDuration(t, ts(0.4).Add(tt.hold.For), s.Hold, 0, "the hint holds the limit")
			}
			held(t, &s, ts(0.4), later(ts(0.425), s.Hold)) // seven still in flight
			for range 2*startWindow - 1 {
				s.Observe(nil, Observation{Now: ts(0.6), Sent: ts(0.3)})
			}
			assert.InEpsilon(t, tt.after, s.Rate.Max, 0.01, "the seven in flight succeeded")
			at := later(ts(0.6), s.Hold)
			first := book(&s, at, one)
			require.True(t, first.Booked)
			v := book(&s, at, one)
			require.True(t, v.Booked)
			assert.Equal(t, HeldWindow, v.By, "spaced at the rate")
			assert.WithinDuration(t, first.At.Add(s.interval(first.At, at)), v.At, 0)
		})
	}
}

// TestPaceSyncCountsCallsInFlight: a response's count was taken when the
// provider admitted its call, and calls sent one after the other may reach
// it in another order. Three calls go a millisecond apart; the last one is
// admitted first and answered first, its count including only itself.
// Taking the two sent before it as counted (the rule before the slow
// start) left the pacer believing 59 remained where 57 did, and let two
// calls too many go; they are counted until their own answers come.
func TestPaceSyncCountsCallsInFlight(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Limits: requests(60, 60)})
	for _, at := range []float64{1, 1.001, 1.002} {
		reserve(t, &s, ts(at), one, ts(at))
	}
	s.Observe(nil, Observation{Now: ts(1.5), Sent: ts(1.002), Limits: requests(60, 59)})
	w := s.Windows[0]
	assert.WithinDuration(t, ts(4.5), w.TAT, 0, "TAT: 1.5s + 1 counted + 2 in flight")
	level := func(s *PaceState, now time.Time) float64 {
		w := s.Windows[0]
		return (w.Span - w.TAT.Sub(now)).Seconds() / w.Interval.Seconds()
	}
	assert.InDelta(t, 57, level(&s, ts(1.5)), 1e-9, "calls left")
	// Their answers come later: older than the synced one, they are not
	// applied, and, answered and sent before it, they are counted in it.
	s.Observe(nil, Observation{Now: ts(1.6), Sent: ts(1), Limits: requests(60, 59)})
	s.Observe(nil, Observation{Now: ts(1.7), Sent: ts(1.001), Limits: requests(60, 58)})
	assert.WithinDuration(t, ts(4.5), s.Windows[0].TAT, 0, "TAT after the older answers")
	assert.Len(t, s.Bookings, 1, "only the synced call's own booking is kept")
	// The next response to a call sent after them counts them all.
	reserve(t, &s, ts(2), one, ts(2))
	s.Observe(nil, Observation{Now: ts(2.2), Sent: ts(2), Limits: requests(60, 56)})
	assert.WithinDuration(t, ts(6.2), s.Windows[0].TAT, 0, "TAT: 2.2s + 4 counted")
	assert.Len(t, s.Bookings, 1, "the answered calls before the synced one are dropped")
}

// A call the provider refused uncounted, or that was never sent, gives its
// place back at once; one answered otherwise stays counted until a
// response to a call sent after it syncs the windows.
func TestPaceAnsweredBookings(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Limits: requests(60, 60)})
	for _, at := range []float64{1, 2, 3, 4, 5} {
		reserve(t, &s, ts(at), one, ts(at))
	}
	s.Observe(nil, Observation{Now: ts(1.1), Sent: ts(1), Class: RateLimited})
	s.Observe(nil, Observation{Now: ts(4), Sent: ts(4), Class: Canceled, Unsent: true})
	s.Observe(nil, Observation{Now: ts(3.2), Sent: ts(3)})
	s.Observe(nil, Observation{Now: ts(5.5), Sent: ts(5), Class: Canceled}) // sent: it may have been counted
	require.Len(t, s.Bookings, 3)
	for i, want := range []struct {
		at       float64
		answered bool
	}{{2, false}, {3, true}, {5, true}} {
		assert.WithinDuration(t, ts(want.at), s.Bookings[i].At, 0)
		assert.Equal(t, want.answered, s.Bookings[i].Answered, "booking at %gs: Answered", want.at)
	}
	// The count of the call sent at 2s may leave out those sent after it,
	// answered or not.
	s.Observe(nil, Observation{Now: ts(6), Sent: ts(2), Limits: requests(60, 59)})
	assert.WithinDuration(t, ts(9), s.Windows[0].TAT, 0, "TAT: 6s + 1 counted + the calls of 3s and 5s")
	s.Observe(nil, Observation{Now: ts(7.2), Sent: ts(7), Limits: requests(60, 58)})
	assert.Empty(t, s.Bookings, "counted by a call sent after them")
}

// A place that does not stand (a hold began while its call slept) is given
// up when the call books anew.
func TestPaceRebookGivesThePlaceUp(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Limits: requests(60, 0)})
	v := book(&s, t0, one)
	require.True(t, v.Booked)
	s.Observe(nil, Observation{Now: ts(0.5), Sent: ts(-1), Class: RateLimited, Hold: holdUntil(ts(0.5), ts(5))})
	w := s.Book(nil, Ask{Now: v.At, Booked: v.At, BookedAt: t0, Cost: one, ProbeTimeout: probeTimeout})
	require.False(t, w.Confirmed)
	require.True(t, w.Booked)
	if assert.Len(t, s.Bookings, 1, "the old place is given up") {
		assert.WithinDuration(t, w.At, s.Bookings[0].At, 0)
	}
}

// Refusals answered at the same instant cut the learned rate once: the
// places booked after the cut stand.
func TestPaceRateCutOncePerInstant(t *testing.T) {
	s := PaceState{Recent: 30, RecentAt: ts(1)}
	s.Observe(nil, Observation{Now: ts(1), Sent: ts(1), Class: RateLimited})
	require.NotNil(t, s.Rate)
	first := book(&s, ts(1), one)
	require.True(t, first.Booked)
	s.Observe(nil, Observation{Now: ts(1), Sent: ts(0.9), Class: RateLimited})
	next := book(&s, ts(1), one)
	assert.WithinDuration(t, first.At.Add(s.interval(first.At, ts(1))), next.At, 0, "one interval after the first, not with it")
}
