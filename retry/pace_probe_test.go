package retry

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkHold is what Decide asks of a limit after a suspiciously long hint.
var checkHold = Hold{By: HeldCheck, For: time.Second}

// blockHold is a block for a long hint a probe confirmed.
func blockHold(scope Scope, d time.Duration) Hold {
	return Hold{By: HeldBlock, For: d, Scope: scope, Class: RateLimited, Reason: "rate_limited: confirmed", Every: time.Minute}
}

// A suspiciously long hint holds the limit while one probe checks it; the
// probe's success releases every call at once.
func TestPaceCheckReleasedByTheProbe(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: ts(-0.1), Class: RateLimited, Hold: checkHold})
	require.WithinDuration(t, t0, s.Check, 0)
	refused(t, &s, ts(0.5), ts(1)) // held until the probe may go
	v := book(&s, ts(1), one)
	require.True(t, v.Booked, "the probe is booked")
	require.True(t, v.Probe, "the call is the probe")
	assert.Equal(t, HeldCheck, v.By, "the probe's verdict names the check, so its refusal confirms it")
	refused(t, &s, ts(1.2), ts(1.7)) // behind the probe in flight
	// A second long hint, from a call sent before the check, changes nothing.
	s.Observe(nil, Observation{Now: ts(1.1), Sent: ts(-0.05), Class: RateLimited, Hold: checkHold})
	assert.WithinDuration(t, t0, s.Check, 0)
	s.Observe(nil, Observation{Now: ts(1.2), Sent: ts(1)})
	assert.True(t, s.Check.IsZero(), "the probe's success ends the check")
	reserve(t, &s, ts(1.2), one, ts(1.2))
	reserve(t, &s, ts(1.2), one, ts(1.2))
}

// A probe refused alike confirms the hint: a block, probed once per
// interval, that a success lifts. A probe whose caller gave up frees its
// place for the next.
func TestPaceCheckConfirmedBlocks(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: ts(-0.1), Class: RateLimited, Hold: checkHold})
	v := book(&s, ts(1), one)
	require.True(t, v.Probe)
	s.Observe(nil, Observation{Now: ts(1.1), Sent: ts(1), Class: RateLimited, Hold: blockHold(ScopeLimit, time.Hour)})
	require.NotNil(t, s.Block)
	assert.True(t, s.Check.IsZero())
	v = book(&s, ts(2), one)
	assert.False(t, v.Booked)
	assert.Equal(t, HeldBlock, v.By)
	assert.Equal(t, RateLimited, v.Class)
	assert.Equal(t, "rate_limited: confirmed", v.Reason)
	assert.WithinDuration(t, ts(61.1), v.At, 0, "the next probe's time")
	assert.WithinDuration(t, ts(3601.1), v.Until, 0)
	// At the interval one call probes; the others still give up.
	v = book(&s, ts(61.1), one)
	require.True(t, v.Booked, "the probe is booked")
	require.True(t, v.Probe, "the call is the probe")
	assert.Equal(t, HeldBlock, v.By)
	assert.False(t, book(&s, ts(61.2), one).Booked)
	// The probe's caller gives up: the next call may probe, once.
	s.Observe(nil, Observation{Now: ts(61.3), Sent: ts(61.1), Class: Canceled})
	assert.NotNil(t, s.Block)
	v = book(&s, ts(121.1), one)
	require.True(t, v.Probe, "the next probe goes at the next interval")
	// It is refused alike: the block goes on, from its start.
	s.Observe(nil, Observation{Now: ts(121.2), Sent: ts(121.1), Class: RateLimited, Hold: blockHold(ScopeLimit, time.Hour)})
	assert.WithinDuration(t, ts(1.1), s.Block.Since, 0)
	v = book(&s, ts(181.2), one)
	require.True(t, v.Probe)
	// It succeeds: the block is lifted.
	s.Observe(nil, Observation{Now: ts(181.4), Sent: ts(181.2)})
	assert.Nil(t, s.Block)
	reserve(t, &s, ts(181.4), one, ts(181.4))
}

// A block that ends by itself (a confirmed hint's time) is lifted then.
func TestPaceBlockEndsAtItsUntil(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: t0, Sent: t0, Class: RateLimited, Hold: blockHold(ScopeLimit, 90*time.Second)})
	assert.False(t, book(&s, ts(30), one).Booked)
	reserve(t, &s, ts(90), one, ts(90))
	assert.Nil(t, s.Block)
}

// A quota that names the credential blocks every model of it; one for the
// model blocks that limit only.
func TestMemoryStoreQuotaScopes(t *testing.T) {
	ctx := context.Background()
	var m MemoryStore
	gpt4, mini := Key{OpenAI, "gpt-4o", "c1"}, Key{OpenAI, "gpt-4o-mini", "c1"}
	other := Key{OpenAI, "gpt-4o", "c2"}
	quota := func(scope Scope) Observation {
		return Observation{Now: t0, Sent: t0, Class: QuotaExhausted,
			Hold: Hold{By: HeldBlock, Scope: scope, Class: QuotaExhausted, Reason: "quota_exhausted: billing", Every: time.Minute}}
	}
	ask := Ask{Now: ts(1), Cost: one, ProbeTimeout: probeTimeout}
	require.NoError(t, m.Observe(ctx, gpt4, quota(ScopeCredential)))
	for _, k := range []Key{gpt4, mini} {
		v, err := m.Book(ctx, k, ask)
		require.NoError(t, err)
		assert.False(t, v.Booked, "%s is blocked with its credential", k)
		assert.Equal(t, QuotaExhausted, v.Class)
	}
	v, _ := m.Book(ctx, other, ask)
	assert.True(t, v.Booked, "another credential is not blocked")
	// One probe per interval for the credential, whichever model it uses.
	probe := ask
	probe.Now = ts(60)
	v, _ = m.Book(ctx, mini, probe)
	require.True(t, v.Booked, "the probe is booked")
	require.True(t, v.Probe, "the call is the probe")
	v, _ = m.Book(ctx, gpt4, probe)
	assert.False(t, v.Booked, "one probe at a time for the credential")
	// Topped up: the probe succeeds, and every model goes again.
	require.NoError(t, m.Observe(ctx, mini, Observation{Now: ts(60.2), Sent: ts(60)}))
	probe.Now = ts(61)
	v, _ = m.Book(ctx, gpt4, probe)
	assert.True(t, v.Booked)

	// A per-model quota blocks that model only.
	var n MemoryStore
	require.NoError(t, n.Observe(ctx, gpt4, quota(ScopeLimit)))
	v, _ = n.Book(ctx, gpt4, ask)
	assert.False(t, v.Booked)
	v, _ = n.Book(ctx, mini, ask)
	assert.True(t, v.Booked)
}

// A limit that states no windows learns its rate from refusals: the first
// from the rate calls succeeded at since the first was sent (a minute's
// successes at least); later ones cut the current rate; calls are spaced
// at it.
func TestPaceLearnsTheRateWithoutWindows(t *testing.T) {
	var s PaceState
	for i := range 30 { // 30 calls succeed in the first second, from 1 an hour ago
		s.Observe(nil, Observation{Now: ts(float64(i) / 30), Sent: ts(float64(i)/30 - 3600)})
	}
	refusal := Observation{Now: ts(1), Sent: ts(1), Class: RateLimited}
	s.Observe(nil, refusal)
	require.NotNil(t, s.Rate)
	assert.InDelta(t, 0.5, s.Rate.Max, 0.01, "30 successes a minute, since an hour")
	// Ten more sent before the refusal succeed after it: they count too.
	for range 10 {
		s.Observe(nil, Observation{Now: ts(1.1), Sent: ts(0.9)})
	}
	assert.InDelta(t, 40.0/60, s.Rate.Max, 0.01)
	// The rate falls to 0.7·Max and spaces calls, starting one interval
	// (at the rate then) after the refusal: the bucket is empty.
	rate0 := 0.7 * 0.5
	first := time.Duration(float64(time.Second) / rate0)
	v := book(&s, ts(1.1), one)
	require.True(t, v.Booked)
	assert.Equal(t, HeldWindow, v.By)
	assert.InDelta(t, float64(ts(1).Add(first).Sub(t0)), float64(v.At.Sub(t0)), float64(50*time.Millisecond), "Recent decays a little")
	next := book(&s, ts(1.1), one)
	assert.WithinDuration(t, v.At.Add(s.interval(v.At, ts(1.1))), next.At, 0, "the next call, one interval later")
	assert.Greater(t, s.interval(v.At, ts(1.1)), time.Second, "below a call a second yet")
	// A refusal of a call sent before the decrease is old news.
	s.Observe(nil, Observation{Now: ts(2), Sent: ts(1), Class: RateLimited})
	assert.WithinDuration(t, ts(1), s.Rate.Since, 0)
	// One sent after it cuts the rate again, and the line books anew.
	max0 := s.rate(ts(5), ts(5))
	s.Observe(nil, Observation{Now: ts(5), Sent: ts(4), Class: RateLimited})
	assert.InDelta(t, max0, s.Rate.Max, 1e-9)
	assert.False(t, s.Rate.Counting)
	assert.True(t, s.heldSince(nil, ts(4.5), ts(6)), "a call booked before the cut books anew")
	// A success of an old call no longer counts toward Max.
	s.Observe(nil, Observation{Now: ts(5.1), Sent: ts(0.5)})
	assert.InDelta(t, max0, s.Rate.Max, 1e-9)
	// Windows reported later are the truth: the learned rate goes.
	s.Observe(nil, Observation{Now: ts(6), Sent: ts(6), Limits: requests(60, 60)})
	assert.Nil(t, s.Rate)
}

// The curve falls to 0.7·Max, is back at Max after its recovery (30 s, or
// 15 calls at Max if sooner), climbs above it only as far as recent
// successes allow, and is forgotten after five minutes without a refusal
// or a success.
func TestPaceRateCurve(t *testing.T) {
	assert.Equal(t, rateRecovery, (&Rate{Max: 0.2}).recovery(), "a slow limit: 30 s")
	assert.Equal(t, 1500*time.Millisecond, (&Rate{Max: 10}).recovery(), "15 calls at 10 a second")
	s := PaceState{Rate: &Rate{Max: 1, Since: t0}}
	k := s.Rate.recovery()
	assert.Equal(t, 15*time.Second, k)
	assert.InDelta(t, 0.7, s.rate(t0, t0), 1e-9)
	assert.InDelta(t, 1, s.rate(t0.Add(k), t0.Add(k)), 1e-9)
	assert.InDelta(t, 1, s.rate(t0.Add(3*k), t0.Add(3*k)), 1e-9, "no successes: capped at Max")
	s.Recent, s.RecentAt = 120, t0.Add(3*k) // 2 a second lately
	assert.InDelta(t, 3, s.rate(t0.Add(3*k), t0.Add(3*k)), 1e-9, "capped at 1.5 × recent successes")
	// A call booked ahead climbs back to Max with the curve, and above it
	// no further than the curve is at the time it books.
	assert.InDelta(t, 0.7+0.3*7.0/8, s.rate(t0.Add(k/2), t0), 1e-9)
	assert.InDelta(t, 1, s.rate(t0.Add(3*k), t0), 1e-9)
	assert.InDelta(t, 1.3, s.rate(t0.Add(3*k), t0.Add(2*k)), 1e-9)
	s.Observe(nil, Observation{Now: t0.Add(3*k + rateForget), Sent: t0.Add(3*k + rateForget - time.Second)})
	assert.NotNil(t, s.Rate, "a success within five minutes: kept")
	s.Observe(nil, Observation{Now: s.RecentAt.Add(rateForget + time.Second), Sent: s.RecentAt.Add(rateForget)})
	assert.Nil(t, s.Rate, "five minutes without a refusal or a success: forgotten")
	// Too few recent successes to learn from: nothing is learned.
	var q PaceState
	q.Observe(nil, Observation{Now: t0, Sent: t0, Class: RateLimited})
	assert.Nil(t, q.Rate)
	// A hint holds the limit, and teaches the rate after it as well.
	q.Recent, q.RecentAt = 30, t0
	q.Observe(nil, Observation{Now: t0, Sent: t0, Class: RateLimited, Hold: Hold{By: HeldHint, For: time.Second}})
	if assert.NotNil(t, q.Rate) {
		assert.InDelta(t, 0.5, q.Rate.Max, 1e-9)
	}
	assert.WithinDuration(t, ts(1), q.Hold, 0)
	// A refusal of a limit with windows teaches nothing: they pace it.
	w := PaceState{Recent: 30, RecentAt: t0, Windows: []PaceWindow{{Interval: time.Second, Span: time.Minute}}}
	w.Observe(nil, Observation{Now: t0, Sent: t0, Class: RateLimited})
	assert.Nil(t, w.Rate)
}

// The latency estimate follows the fastest recent success and drifts up
// slowly; Book passes it on, and books nothing too late for it.
func TestPaceLatency(t *testing.T) {
	var s PaceState
	s.Observe(nil, Observation{Now: ts(1), Sent: t0})
	assert.Equal(t, time.Second, s.Latency)
	s.Observe(nil, Observation{Now: ts(2.5), Sent: ts(2)})
	assert.Equal(t, 500*time.Millisecond, s.Latency)
	s.Observe(nil, Observation{Now: ts(12.5), Sent: ts(4.5)}) // 8s: an eighth of the way
	assert.Equal(t, 1437500*time.Microsecond, s.Latency)
	v := s.Book(nil, Ask{Now: ts(20), Deadline: ts(21), Cost: one})
	assert.False(t, v.Booked, "1s left, 1.44s needed")
	assert.Equal(t, s.Latency, v.Latency)
	v = s.Book(nil, Ask{Now: ts(20), Deadline: ts(22), Cost: one})
	assert.True(t, v.Booked)
}

// Idle states carry nothing a new one would not.
func TestPaceIdle(t *testing.T) {
	now := ts(100)
	tests := map[string]struct {
		s    PaceState
		idle bool
	}{
		"zero":               {PaceState{}, true},
		"answered, no more":  {PaceState{Acked: 3, Latency: time.Second, Recent: 3}, true},
		"hold ahead":         {PaceState{Hold: ts(101)}, false},
		"hold past":          {PaceState{Hold: ts(99)}, true},
		"overloaded":         {PaceState{Overloads: 1}, false},
		"checking":           {PaceState{Check: ts(90)}, false},
		"blocked":            {PaceState{Block: &Block{}}, false},
		"a learned rate":     {PaceState{Rate: &Rate{Max: 1}, RecentAt: ts(90)}, false},
		"a rate forgotten":   {PaceState{Rate: &Rate{Max: 1, Since: ts(-201)}, RecentAt: ts(-201)}, true},
		"probe in flight":    {PaceState{ProbeUntil: ts(110)}, false},
		"a window refilling": {PaceState{Windows: []PaceWindow{{TAT: ts(101)}}}, false},
		"a window full":      {PaceState{Windows: []PaceWindow{{TAT: ts(99)}}}, true},
		"a recent booking":   {PaceState{Bookings: []Booking{{At: ts(50)}}}, false},
		"an old booking":     {PaceState{Bookings: []Booking{{At: ts(39)}}}, true},
	}
	for name, tt := range tests {
		assert.Equal(t, tt.idle, tt.s.Idle(now), name)
	}
}

// TestMemoryStoreForgetsIdleLimits books and answers one call on each of
// 1,000,000 distinct keys (rotated credentials, arbitrary models), a
// millisecond apart, and states the bound: the store keeps fewer than
// 4,096 states and the heap grows by less than 16 MiB, where remembering
// every key would take hundreds of MiB.
func TestMemoryStoreForgetsIdleLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("a million keys")
	}
	ctx := context.Background()
	var m MemoryStore
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	most := 0
	for i := range 1_000_000 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		key := Key{OpenAI, "gpt-4o", "rotated-" + strconv.Itoa(i)}
		v, err := m.Book(ctx, key, Ask{Now: now, Cost: one})
		require.NoError(t, err)
		require.NoError(t, m.Observe(ctx, key, Observation{Now: now.Add(200 * time.Millisecond), Sent: v.At}))
		most = max(most, m.Len())
	}
	grown := int64(heap()) - int64(before)
	t.Logf("most states held: %d; heap grown by %.1f MiB", most, float64(grown)/(1<<20))
	assert.Less(t, most, 4096, "states held at once")
	assert.Less(t, grown, int64(16<<20), "heap growth after 1,000,000 keys")

	// A key still holding information is kept through sweeps.
	held := Key{OpenAI, "gpt-4o", "held"}
	require.NoError(t, m.Observe(ctx, held, Observation{Now: ts(1000), Sent: ts(1000), Class: RateLimited, Hold: Hold{By: HeldHint, For: time.Hour}}))
	for i := range 10_000 {
		now := ts(1001).Add(time.Duration(i) * time.Millisecond)
		key := Key{OpenAI, "m", "late-" + strconv.Itoa(i)}
		m.Book(ctx, key, Ask{Now: now, Cost: one})
		m.Observe(ctx, key, Observation{Now: now, Sent: now})
	}
	v, _ := m.Book(ctx, held, Ask{Now: ts(1020), Cost: one})
	assert.WithinDuration(t, ts(4600), v.At, 0, "the held key kept its hold")
}

// A token cost is estimated only for a limit with a token window, once,
// and the verdict carries it.
func TestMemoryStoreEstimatesTokensOnlyWhenCounted(t *testing.T) {
	ctx := context.Background()
	var m MemoryStore
	key := Key{OpenAI, "gpt-4o", "c"}
	estimates := 0
	tokens := func() int64 { estimates++; return 3000 }
	v, _ := m.Book(ctx, key, Ask{Now: t0, Cost: one, Tokens: tokens})
	assert.Zero(t, estimates, "no token window: no estimate")
	assert.Zero(t, v.Cost.Tokens)
	m.Observe(ctx, key, Observation{Now: t0, Sent: v.At, Limits: Limits{{Reset: SourceResetTokens, Tokens: true, Limit: 60000, Remaining: 0, Until: time.Minute}}})
	v, _ = m.Book(ctx, key, Ask{Now: t0, Cost: one, Tokens: tokens})
	assert.Equal(t, 1, estimates)
	assert.Equal(t, int64(3000), v.Cost.Tokens)
	assert.WithinDuration(t, ts(3), v.At, 0, "paced by its 3000 tokens")
	v, _ = m.Book(ctx, key, Ask{Now: t0, Cost: v.Cost, Tokens: tokens})
	assert.Equal(t, 1, estimates, "a known cost is not estimated again")
}

// A probe is booked only to go at once: one the windows would delay is told
// to come back then, so that the others do not wait behind a probe that
// sleeps.
func TestPaceProbeGoesNowOrNotAtAll(t *testing.T) {
	var s PaceState
	s.Windows = []PaceWindow{{Reset: SourceResetRequests, Interval: time.Second, Span: time.Second, TAT: ts(3)}}
	s.Observe(nil, Observation{Now: t0, Sent: ts(-1), Class: Overloaded, Hold: overload(time.Second)})
	refused(t, &s, ts(1), ts(3))
	assert.True(t, s.ProbeUntil.IsZero(), "no probe in flight")
	v := book(&s, ts(3), one)
	assert.True(t, v.Booked, "the probe is booked")
	assert.True(t, v.Probe, "the call is the probe")
	assert.WithinDuration(t, ts(3), v.At, 0, "the probe goes when the window admits it")

	// The same for a block's probe.
	var b PaceState
	b.Windows = []PaceWindow{{Reset: SourceResetRequests, Interval: time.Second, Span: time.Second, TAT: ts(63)}}
	b.Observe(nil, Observation{Now: t0, Sent: t0, Class: QuotaExhausted, Hold: Hold{By: HeldBlock, Class: QuotaExhausted, Every: time.Minute}})
	v = book(&b, ts(60), one)
	assert.False(t, v.Booked)
	assert.WithinDuration(t, ts(63), v.At, 0)
	v = book(&b, ts(63), one)
	assert.True(t, v.Booked, "the block's probe is booked")
	assert.True(t, v.Probe, "the call is the block's probe")
}

// A refusal after at least minAdmitted successes since the last decrease
// sets Max to the rate the limit admitted them at (its bucket was empty at
// both refusals), if below the current rate; the successes of calls sent
// in between that are answered later count toward it. With fewer, Max is
// the current rate.
func TestPaceRateFromAdmitted(t *testing.T) {
	s := PaceState{Rate: &Rate{Max: 10, Since: t0}}
	for i := range 12 { // 12 of the calls sent since succeed within 2 s
		at := ts(0.1 + float64(i)/8)
		s.Observe(nil, Observation{Now: at.Add(200 * time.Millisecond), Sent: at})
	}
	require.Equal(t, 12, s.Rate.Admitted)
	s.Observe(nil, Observation{Now: ts(2), Sent: ts(1.9), Class: RateLimited})
	assert.InDelta(t, 6, s.Rate.Max, 1e-9, "12 admitted in 2 s")
	assert.WithinDuration(t, ts(2), s.Rate.Since, 0)
	assert.Equal(t, 0, s.Rate.Admitted)
	s.Observe(nil, Observation{Now: ts(2.1), Sent: ts(1.95)})
	assert.InDelta(t, 6.5, s.Rate.Max, 1e-9, "a call sent before the refusal succeeded after it")
	s.Observe(nil, Observation{Now: ts(2.2), Sent: t0.Add(-time.Second)})
	assert.InDelta(t, 6.5, s.Rate.Max, 1e-9, "sent before the last cycle: not counted")
	s.Observe(nil, Observation{Now: ts(2.3), Sent: ts(2.1)})
	assert.Equal(t, 1, s.Rate.Admitted, "sent since the refusal")

	// One admitted in 1 s, below the current rate (the minute's successes,
	// a floor, are less): Max is 1, and the calls then in flight count
	// toward it as they succeed.
	require.Less(t, 1.0, s.rate(ts(3), ts(3)))
	require.Less(t, s.recent(ts(3))/60, 1.0)
	s.Observe(nil, Observation{Now: ts(3), Sent: ts(2.9), Class: RateLimited})
	assert.InDelta(t, 1, s.Rate.Max, 1e-9)
	assert.Equal(t, time.Second, s.Rate.Over)
	for range 4 {
		s.Observe(nil, Observation{Now: ts(3.1), Sent: ts(2.5)})
	}
	assert.InDelta(t, 5, s.Rate.Max, 1e-9, "five in 1 s")

	// Admitted at no less than the current rate: Max is the current rate.
	for i := range 100 {
		s.Observe(nil, Observation{Now: ts(3.2 + float64(i)/100), Sent: ts(3.1 + float64(i)/100)})
	}
	r := s.rate(ts(4), ts(4))
	s.Observe(nil, Observation{Now: ts(4), Sent: ts(3.99), Class: RateLimited})
	assert.InDelta(t, r, s.Rate.Max, 1e-9)
	assert.Zero(t, s.Rate.Over, "nothing counted later")
}

// Without windows, throughput is the rate calls have succeeded at since the
// first was sent, when that was less than a minute or so ago, and a
// minute's successes per second after.
func TestPaceThroughput(t *testing.T) {
	var s PaceState
	assert.Zero(t, s.throughput(t0))
	for i := range 20 { // 20 a second for a second
		at := ts(float64(i) / 20)
		s.Observe(nil, Observation{Now: at.Add(200 * time.Millisecond), Sent: at})
	}
	assert.InEpsilon(t, 20/1.15, s.throughput(ts(1.15)), 0.02, "20 since t0, 1.15 s ago")
	assert.InEpsilon(t, s.recent(ts(600))/60, s.throughput(ts(600)), 1e-3, "long ago: a minute's successes")
}
