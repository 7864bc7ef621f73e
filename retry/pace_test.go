package retry

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// probeTimeout is the probe timeout of the tests' asks.
const probeTimeout = 30 * time.Second

// holdUntil is a hint's hold, observed at now, that lasts until until.
func holdUntil(now, until time.Time) Hold { return Hold{By: HeldHint, For: until.Sub(now)} }

// overload is an overload hold of d.
func overload(d time.Duration) Hold { return Hold{By: HeldOverload, For: d} }

// book asks s at now for a call of cost c.
func book(s *PaceState, now time.Time, c Cost) Verdict {
	return s.Book(nil, Ask{Now: now, Cost: c, ProbeTimeout: probeTimeout})
}

var one = Cost{Requests: 1}

// requests is a requests window of limit with remaining left, from a
// provider whose capacity is a minute's limit: full again in
// (limit−remaining) intervals of a minute/limit.
func requests(limit, remaining int64) Limits {
	until := time.Duration(limit-remaining) * (time.Minute / time.Duration(limit))
	return Limits{{Reset: SourceResetRequests, Limit: limit, Remaining: remaining, Until: until}}
}

// reserve books a call and fails the test unless it is booked at want.
func reserve(t *testing.T, s *PaceState, now time.Time, c Cost, want time.Time) {
	t.Helper()
	v := book(s, now, c)
	require.True(t, v.Booked, "Book(t0+%v) = t0+%v, not booked; want t0+%v, booked", now.Sub(t0), v.At.Sub(t0), want.Sub(t0))
	require.WithinDuration(t, want, v.At, 0, "Book(t0+%v)", now.Sub(t0))
}

// refused fails the test unless a Book at now is refused with the time to
// come back want.
func refused(t *testing.T, s *PaceState, now time.Time, want time.Time) {
	t.Helper()
	n := len(s.Bookings)
	v := book(s, now, one)
	require.False(t, v.Booked, "Book(t0+%v) = t0+%v, booked; want t0+%v, refused", now.Sub(t0), v.At.Sub(t0), want.Sub(t0))
	require.WithinDuration(t, want, v.At, 0, "Book(t0+%v)", now.Sub(t0))
	require.Len(t, s.Bookings, n, "a refused Book booked")
}

func TestPaceSyncedWindowSpacesCallsOnceEmpty(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Limits: requests(60, 2)})
	require.Len(t, s.Windows, 1, "Windows")
	require.Equal(t, time.Second, s.Windows[0].Interval, "Interval")
	require.Equal(t, time.Minute, s.Windows[0].Span, "Span")
	require.WithinDuration(t, ts(58), s.Windows[0].TAT, 0, "TAT")
	// Two calls are left: they go now; then one per Interval.
	for i, want := range []float64{0, 0, 1, 2, 3, 4} {
		reserve(t, &s, t0, one, ts(want))
		require.Len(t, s.Bookings, i+1, "Bookings")
	}
	// A call asking later than its slot goes at once.
	reserve(t, &s, ts(30), one, ts(30))
	assert.WithinDuration(t, ts(65), s.Windows[0].TAT, 0, "TAT")
	// A call that costs no requests is not paced.
	reserve(t, &s, ts(30), Cost{}, ts(30))
}

func TestPaceTokenWindow(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Limits: Limits{{Reset: SourceResetTokens, Tokens: true, Limit: 60000, Remaining: 0, Until: time.Minute}}})
	reserve(t, &s, t0, Cost{Requests: 1, Tokens: 3000}, ts(3))   // 3000 tokens at 1ms each
	reserve(t, &s, t0, Cost{Requests: 1}, t0)                    // unknown tokens: not paced by tokens
	reserve(t, &s, t0, Cost{Requests: 1, Tokens: 1_000_000}, t0) // more than the window holds: refused at once by the provider, not paced
	reserve(t, &s, t0, Cost{Requests: 1, Tokens: 3000}, ts(6))   // and it took nothing from the window
}

func TestPaceWindowCost(t *testing.T) {
	w := PaceWindow{Tokens: true, Interval: time.Minute, Span: time.Minute} // a limit of 1 token a minute
	tests := map[string]struct {
		tokens int64
		want   time.Duration
	}{
		"none":               {0, 0},
		"negative":           {-5, 0},
		"one":                {1, time.Minute},
		"more than the span": {2, 0},
		"would overflow":     {153722868, 0},
		"int64 limit":        {math.MaxInt64, 0},
	}
	for name, tt := range tests {
		assert.Equal(t, tt.want, w.cost(Cost{Tokens: tt.tokens}), "%s: cost(%d tokens)", name, tt.tokens)
	}
	assert.Zero(t, (&PaceWindow{Span: time.Minute}).cost(one), "cost with a zero Interval")
}

func TestPaceReplaysBookingsAfterTheObservedSend(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Limits: requests(60, 60)})
	reserve(t, &s, ts(1), one, ts(1))
	reserve(t, &s, ts(2), one, ts(2))
	reserve(t, &s, ts(3), one, ts(3))
	// The response to the call sent at 1s arrives at 5s: the provider has
	// counted one call; the two booked after it are replayed.
	s.Observe(nil, Observation{Now: ts(5), Sent: ts(1), Limits: requests(60, 59)})
	assert.WithinDuration(t, ts(8), s.Windows[0].TAT, 0, "TAT (5s + 1 counted + 2 replayed)")
	assert.Len(t, s.Bookings, 3, "Bookings (the observed one answered, the two in flight)")
	assert.WithinDuration(t, ts(1), s.Synced, 0, "Synced")
	// An older response is not applied.
	s.Observe(nil, Observation{Now: ts(6), Sent: t0, Limits: requests(60, 0)})
	assert.WithinDuration(t, ts(8), s.Windows[0].TAT, 0, "TAT after an older observation")
	// One to a call sent at the same instant as the synced one is; the
	// synced call, answered, is counted on top (which of the two the
	// provider admitted first is unknown).
	s.Observe(nil, Observation{Now: ts(6), Sent: ts(1), Limits: requests(60, 58)})
	assert.WithinDuration(t, ts(11), s.Windows[0].TAT, 0, "TAT after an equal observation")
	// Windows without a limit or a remaining count do not sync.
	s.Observe(nil, Observation{Now: ts(7), Sent: ts(7), Limits: Limits{{Reset: SourceResetRequests, Limit: 60, Remaining: -1, Until: -1}, {Reset: SourceResetTokens, Limit: 0, Remaining: 0}}})
	assert.WithinDuration(t, ts(11), s.Windows[0].TAT, 0, "unsyncable windows changed the TAT")
	assert.WithinDuration(t, ts(1), s.Synced, 0, "unsyncable windows changed Synced")
	assert.Len(t, s.Windows, 1, "unsyncable windows changed the windows")
}

func TestPaceTwoWindows(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Limits: Limits{
		{Reset: SourceResetRequests, Limit: 600, Remaining: 600, Until: 0},
		{Reset: SourceResetTokens, Tokens: true, Limit: 6000, Remaining: 0, Until: time.Minute},
	}})
	require.Len(t, s.Windows, 2, "Windows")
	// tokens: 10ms each; requests: 100ms each. The slower window decides.
	reserve(t, &s, t0, Cost{Requests: 1, Tokens: 500}, ts(5))
	reserve(t, &s, t0, Cost{Requests: 1, Tokens: 1}, ts(5.01))
	// Syncing again updates the windows in place.
	s.Observe(nil, Observation{Now: ts(6), Sent: ts(6), Limits: Limits{{Reset: SourceResetTokens, Tokens: true, Limit: 6000, Remaining: 6000, Until: 0}}})
	if assert.Len(t, s.Windows, 2, "Windows") {
		assert.WithinDuration(t, ts(6), s.Windows[1].TAT, 0, "the token window's TAT")
	}
}

func TestPaceHold(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Hold: holdUntil(t0, ts(10))})
	reserve(t, &s, t0, one, ts(10))
	reserve(t, &s, ts(5), one, ts(10))
	reserve(t, &s, ts(12), one, ts(12))
	s.Observe(nil, Observation{Now: ts(1), Sent: ts(1), Hold: holdUntil(ts(1), ts(5))}) // an earlier hold does not shorten it
	assert.WithinDuration(t, ts(10), s.Hold, 0, "Hold")
	s.Observe(nil, Observation{Now: ts(1), Sent: ts(1), Hold: holdUntil(ts(1), ts(15))})
	reserve(t, &s, ts(12), one, ts(15))
}

func TestPaceLatestRefusesToBook(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Hold: holdUntil(t0, ts(10)), Limits: requests(60, 0)})
	before := s.Windows[0].TAT
	latest := func(s *PaceState, deadline time.Time) (time.Time, bool) {
		v := s.Book(nil, Ask{Now: t0, Deadline: deadline, Cost: one})
		return v.At, v.Booked
	}
	at, ok := latest(&s, ts(9))
	require.False(t, ok, "Book(latest 9s) booked")
	require.WithinDuration(t, ts(10), at, 0, "Book(latest 9s)")
	assert.Empty(t, s.Bookings, "a refused Book booked")
	assert.WithinDuration(t, before, s.Windows[0].TAT, 0, "a refused Book moved the TAT")
	// A latest equal to the time books.
	at, ok = latest(&s, ts(10))
	assert.True(t, ok, "Book(latest 10s) refused")
	assert.WithinDuration(t, ts(10), at, 0, "Book(latest 10s)")

	// The same for a window: empty at t0, it admits the next call at 1s.
	var w PaceState
	w.Observe(nil, Observation{Now: t0, Sent: t0, Limits: requests(60, 0)})
	at, ok = latest(&w, ts(0.5))
	assert.False(t, ok, "Book(latest 0.5s) booked")
	assert.WithinDuration(t, ts(1), at, 0, "Book(latest 0.5s)")
	assert.WithinDuration(t, ts(60), w.Windows[0].TAT, 0, "a refused Book moved the TAT")
	assert.Empty(t, w.Bookings, "a refused Book booked")
	at, ok = latest(&w, ts(1))
	assert.True(t, ok, "Book(latest 1s) refused")
	assert.WithinDuration(t, ts(1), at, 0, "Book(latest 1s)")
}

func TestPaceOverloadOneProbeAtATime(t *testing.T) {
	var s PaceState
	// An overloaded failure at t0 holds the key for 1s.
	s.Observe(nil, Observation{Now: t0, Sent: ts(-1), Class: Overloaded, Hold: overload(time.Second)})
	require.Equal(t, 1, s.Overloads, "Overloads")
	require.WithinDuration(t, ts(1), s.Hold, 0, "Hold")
	// Before the hold every call is told to come back at its end.
	refused(t, &s, t0, ts(1))
	refused(t, &s, ts(0.5), ts(1))
	// At the hold, one probe goes; the others are told to come back.
	reserve(t, &s, ts(1), one, ts(1))
	refused(t, &s, ts(1), ts(1.5))
	refused(t, &s, ts(1.2), ts(1.7))
	refused(t, &s, ts(30.8), ts(31)) // no later than the probe's expiry
	// Another overloaded failure of a call sent before the episode began is
	// not news.
	s.Observe(nil, Observation{Now: ts(2), Sent: ts(-0.5), Class: Overloaded, Hold: overload(time.Second)})
	assert.Equal(t, 1, s.Overloads, "Overloads after a stale failure")
	// Nor is a success of one.
	s.Observe(nil, Observation{Now: ts(2), Sent: ts(-0.5)})
	assert.Equal(t, 1, s.Overloads, "Overloads after a stale success")
	refused(t, &s, ts(2), ts(2.5))
	// The probe succeeds: every call goes again.
	s.Observe(nil, Observation{Now: ts(3), Sent: ts(1)})
	require.Zero(t, s.Overloads, "Overloads after the probe's success")
	require.Zero(t, s.ProbeUntil, "ProbeUntil after the probe's success")
	reserve(t, &s, ts(3), one, ts(3))
	reserve(t, &s, ts(3), one, ts(3))
}

func TestPaceOverloadFailingProbeHoldsAgain(t *testing.T) {
	// Each failed probe holds the key for what its decision says (5s,
	// Overload.Max), from its answer; then the next probe goes.
	var s PaceState
	now, sent := t0, ts(-1)
	s.Observe(nil, Observation{Now: now, Sent: sent, Class: Overloaded, Hold: overload(time.Second)})
	for k := 2; k <= 6; k++ {
		refused(t, &s, now, s.Hold)
		sent = s.Hold
		reserve(t, &s, sent, one, sent)
		now = sent.Add(time.Second)
		s.Observe(nil, Observation{Now: now, Sent: sent, Class: Overloaded, Hold: overload(5 * time.Second)})
		require.Equal(t, k, s.Overloads, "Overloads after failed probe %d", k-1)
		require.Equal(t, 5*time.Second, s.Hold.Sub(now), "hold after failed probe %d", k-1)
	}
}

func TestPaceOverloadProbeTimeoutLetsAnotherProbe(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Class: Overloaded, Hold: overload(time.Second)})
	reserve(t, &s, ts(1), one, ts(1))
	require.WithinDuration(t, ts(31), s.ProbeUntil, 0, "ProbeUntil")
	refused(t, &s, ts(30.9), ts(31))
	// The probe never answered: at its expiry another call probes.
	reserve(t, &s, ts(31), one, ts(31))
	refused(t, &s, ts(31), ts(31.5))
	assert.Equal(t, 1, s.Overloads, "Overloads")
}

// TestPaceOverloadHoldOutlastsTheProbe: a call held behind a probe is not
// told to come back before the key's hold ends.
func TestPaceOverloadHoldOutlastsTheProbe(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Class: Overloaded, Hold: overload(time.Second)})
	reserve(t, &s, ts(1), one, ts(1))
	// A 429 of a call sent before the overload holds the key for 40s.
	s.Observe(nil, Observation{Now: ts(1.5), Sent: ts(-1), Class: RateLimited, Hold: holdUntil(ts(1.5), ts(40))})
	require.Equal(t, 1, s.Overloads, "Overloads")
	refused(t, &s, ts(2), ts(40))
}

// TestPaceOverloadCanceledProbe: a probe whose caller's context ended says
// nothing about the provider. The overload lasts until a probe succeeds, and
// the next call may probe at once.
func TestPaceOverloadCanceledProbe(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Class: Overloaded, Hold: overload(time.Second)})
	reserve(t, &s, ts(1), one, ts(1))
	s.Observe(nil, Observation{Now: ts(2), Sent: ts(1), Class: Canceled})
	require.Equal(t, 1, s.Overloads, "Overloads after a canceled probe")
	reserve(t, &s, ts(2), one, ts(2)) // a new probe
	refused(t, &s, ts(2), ts(2.5))
}

// TestPaceOverloadProbeWithOtherAnswer: a probe that gets an answer other
// than overloaded shows the provider is serving again.
func TestPaceOverloadProbeWithOtherAnswer(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Class: Overloaded, Hold: overload(time.Second)})
	reserve(t, &s, ts(1), one, ts(1))
	s.Observe(nil, Observation{Now: ts(2), Sent: ts(1), Class: RateLimited, Hold: holdUntil(ts(2), ts(4))})
	require.Zero(t, s.Overloads, "Overloads")
	reserve(t, &s, ts(2), one, ts(4))
	reserve(t, &s, ts(2), one, ts(4))
}

func TestPacePrunesOldBookings(t *testing.T) {
	var s PaceState
	s.Windows = []PaceWindow{{Reset: SourceResetRequests, Interval: time.Millisecond, Span: time.Minute}}
	reserve(t, &s, t0, one, t0)
	reserve(t, &s, ts(200), one, ts(200))
	s.Observe(nil, Observation{Now: ts(301), Sent: ts(301)})
	if assert.Len(t, s.Bookings, 1, "Bookings: want only the one at t0+200s") {
		assert.WithinDuration(t, ts(200), s.Bookings[0].At, 0, "the booking kept")
	}
}

// A provider that reports no windows leaves nothing to replay bookings
// into: they are dropped as their answers come, not kept for bookingTTL;
// those in flight stay (the slow start counts them) until their answers,
// or bookingTTL.
func TestPacePrunesBookingsWhenUnpaced(t *testing.T) {
	var s PaceState
	for i := range 3 {
		reserve(t, &s, ts(float64(i)), one, ts(float64(i)))
	}
	s.Observe(nil, Observation{Now: ts(2.5), Sent: ts(1)})
	if assert.Len(t, s.Bookings, 2, "Bookings: want the two not yet answered") {
		assert.WithinDuration(t, t0, s.Bookings[0].At, 0, "the booking kept")
		assert.WithinDuration(t, ts(2), s.Bookings[1].At, 0, "the booking kept")
	}
	for i := range 1000 {
		at := ts(float64(10 + i))
		reserve(t, &s, at, one, at)
		s.Observe(nil, Observation{Now: at, Sent: at})
	}
	assert.Empty(t, s.Bookings, "bookings after 1000 answered calls")
}

// TestMemoryStoreConcurrent books and observes from 64 goroutines on two
// keys. Whatever the order, each key's 32 calls get the same set of times.
func TestMemoryStoreConcurrent(t *testing.T) {
	var m MemoryStore
	ctx := context.Background()
	keys := []Key{{OpenAI, "gpt-4o", "a"}, {OpenAI, "gpt-4o", "b"}}
	for _, k := range keys {
		m.Observe(ctx, k, Observation{Now: t0, Sent: t0, Limits: requests(30, 30)}) // 2s per call
	}
	var mu sync.Mutex
	got := map[Key][]time.Duration{}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			key := keys[i%2]
			v, err := m.Book(ctx, key, Ask{Now: t0, Cost: one})
			assert.NoError(t, err, "Book")
			assert.True(t, v.Booked, "Book = %+v", v)
			m.Observe(ctx, key, Observation{Now: v.At, Sent: v.At})
			mu.Lock()
			got[key] = append(got[key], v.At.Sub(t0))
			mu.Unlock()
		})
	}
	wg.Wait()
	// 30 fit in the window now; the other two follow at 2s spacing.
	var want []time.Duration
	for range 30 {
		want = append(want, 0)
	}
	want = append(want, 2*time.Second, 4*time.Second)
	for _, k := range keys {
		slices.Sort(got[k])
		assert.Equal(t, want, got[k], "%s: times", k)
		m.mu.Lock()
		s := m.limits[k]
		assert.Len(t, s.Bookings, 32, "%s: bookings", k)
		if assert.Len(t, s.Windows, 1, "%s: windows", k) {
			assert.WithinDuration(t, ts(64), s.Windows[0].TAT, 0, "%s: TAT", k)
		}
		assert.Zero(t, s.Overloads, "%s: overloads", k)
		m.mu.Unlock()
	}
}

// A provider whose bucket holds less than a minute's limit says so through
// its reset: the pacer allows that much burst and no more.
func TestPaceCapacityFromReset(t *testing.T) {
	var s PaceState
	// limit 60/min (1s each), 2 left, full again in 3s: a capacity of 5.
	s.Observe(nil, Observation{Now: t0, Sent: t0, Limits: Limits{{Reset: SourceResetRequests, Limit: 60, Remaining: 2, Until: 3 * time.Second}}})
	require.Equal(t, 5*time.Second, s.Windows[0].Span, "Span")
	require.WithinDuration(t, ts(3), s.Windows[0].TAT, 0, "TAT")
	for _, want := range []float64{0, 0, 1, 2} {
		reserve(t, &s, t0, one, ts(want))
	}
	// Idle until the bucket is full again: five go at once, the sixth a
	// second later.
	for _, want := range []float64{20, 20, 20, 20, 20, 21} {
		reserve(t, &s, ts(20), one, ts(want))
	}
}

// Calls booked before an overload began and sent during its hold report
// the same overload: only the first failure and failed probes grow it.
func TestPaceOverloadEscalatesOncePerProbe(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: ts(1), Sent: ts(0.5), Class: Overloaded, Hold: overload(time.Second)})
	require.Equal(t, 1, s.Overloads, "Overloads after the first overload")
	require.WithinDuration(t, ts(2), s.Hold, 0, "Hold after the first overload")
	// Booked earlier, sent during the hold, failed: the same overload.
	s.Observe(nil, Observation{Now: ts(1.5), Sent: ts(1.2), Class: Overloaded, Hold: overload(time.Second)})
	require.Equal(t, 1, s.Overloads, "Overloads after a call sent during the hold")
	require.WithinDuration(t, ts(2), s.Hold, 0, "Hold after a call sent during the hold")
	// The probe, sent after the hold, fails: the hold grows.
	reserve(t, &s, ts(2), one, ts(2))
	s.Observe(nil, Observation{Now: ts(2.5), Sent: ts(2), Class: Overloaded, Hold: overload(2 * time.Second)})
	require.Equal(t, 2, s.Overloads, "Overloads after a failed probe")
	require.WithinDuration(t, ts(4.5), s.Hold, 0, "Hold after a failed probe")
}

// Calls booked at the same instant may be admitted in any order: a response
// to one of them counts itself, not surely the others; and of two such
// responses the more cautious wins.
func TestPaceSyncSameInstant(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Limits: requests(60, 60)})
	for range 3 {
		reserve(t, &s, ts(1), one, ts(1))
	}
	// The first answer counts one call (59 left): the other two booked at
	// 1s are replayed.
	s.Observe(nil, Observation{Now: ts(2), Sent: ts(1), Limits: requests(60, 59)})
	require.WithinDuration(t, ts(5), s.Windows[0].TAT, 0, "TAT (2s + 1 counted + 2 replayed)")
	// A later-processed answer to a call sent at the same instant that
	// says more is left does not make the state less cautious.
	s.Observe(nil, Observation{Now: ts(2), Sent: ts(1), Limits: requests(60, 60)})
	require.WithinDuration(t, ts(5), s.Windows[0].TAT, 0, "TAT after a more optimistic answer")
	// One that says less is left does.
	s.Observe(nil, Observation{Now: ts(2), Sent: ts(1), Limits: requests(60, 57)})
	require.WithinDuration(t, ts(7), s.Windows[0].TAT, 0, "TAT after a more cautious answer")
}
