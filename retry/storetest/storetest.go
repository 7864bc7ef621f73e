// Package storetest is the conformance suite of retry.Store: every store
// must pace calls as MemoryStore does. A store's tests call Run with a
// Harness:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{New: …, Forgets: …})
//	}
//
// The suite asks at fixed instants (T0 and later), so a store that reads
// times against a clock of its own (a shared store) must be built to take
// the askers' times as they are.
package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/autopack/dynretry/retry"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Harness builds the stores under test.
type Harness struct {
	// New returns an empty store, for one test; the test is over when t
	// ends.
	New func(t *testing.T) retry.Store
	// Forgets fails t unless s forgets the states of keys, every one of
	// them idle (retry.PaceState.Idle) from the instant idle on and
	// touched by nothing since: the store's memory is bounded by the limits
	// in use. It may make s forget (asking of it what makes it sweep,
	// waiting for an expiry) before it looks.
	Forgets func(t *testing.T, s retry.Store, keys []retry.Key, idle time.Time)
}

// T0 is the first instant of every test; At(sec) is sec seconds after it.
var T0 = time.Date(2026, time.November, 27, 8, 0, 0, 0, time.UTC)

// At returns the instant sec seconds after T0.
func At(sec float64) time.Time { return T0.Add(time.Duration(sec * float64(time.Second))) }

// probeTimeout is the ProbeTimeout of every ask.
const probeTimeout = 30 * time.Second

var one = retry.Cost{Requests: 1}

// The keys of the suite: two models of one credential, and another
// credential.
var (
	gpt4  = retry.Key{Provider: retry.OpenAI, Model: "gpt-4o", Credential: "c1"}
	mini  = retry.Key{Provider: retry.OpenAI, Model: "gpt-4o-mini", Credential: "c1"}
	other = retry.Key{Provider: retry.OpenAI, Model: "gpt-4o", Credential: "c2"}
)

// Run runs the suite against the stores h builds.
func Run(t *testing.T, h Harness) {
	require.NotNil(t, h.New, "Harness.New")
	require.NotNil(t, h.Forgets, "Harness.Forgets")
	tests := []struct {
		name string
		f    func(t *testing.T, s retry.Store)
	}{
		{"slow start until the windows", slowStart},
		{"windows space calls once empty", windowsSpaceCalls},
		{"token windows and the estimate", tokenWindows},
		{"hint holds the limit only", hintHoldsTheLimit},
		{"place confirmed or booked anew", confirmOrRebook},
		{"deadline books nothing too late", deadline},
		{"overload probes one at a time", overloadProbes},
		{"credential block holds every model", credentialBlock},
		{"limit block holds its model", limitBlock},
		{"learned rate spaces calls", learnedRate},
		{"concurrent callers share the windows", concurrent},
		{"same verdicts as PaceState", sameAsPaceState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, h.New(t)) })
	}
	t.Run("idle states are forgotten", func(t *testing.T) { idleForgotten(t, h) })
}

// requests is a requests window of limit with remaining left, full again
// in (limit−remaining) intervals of a minute/limit.
func requests(limit, remaining int64) retry.Limits {
	until := time.Duration(limit-remaining) * (time.Minute / time.Duration(limit))
	return retry.Limits{{Reset: retry.SourceResetRequests, Limit: limit, Remaining: remaining, Until: until}}
}

func ask(now time.Time) retry.Ask { return retry.Ask{Now: now, Cost: one, ProbeTimeout: probeTimeout} }

func book(t *testing.T, s retry.Store, k retry.Key, a retry.Ask) retry.Verdict {
	t.Helper()
	v, err := s.Book(context.Background(), k, a)
	require.NoError(t, err)
	return v
}

func observe(t *testing.T, s retry.Store, k retry.Key, o retry.Observation) {
	t.Helper()
	require.NoError(t, s.Observe(context.Background(), k, o))
}

// booked fails t unless a call asking at now is booked at want.
func booked(t *testing.T, s retry.Store, k retry.Key, now, want time.Time) retry.Verdict {
	t.Helper()
	v := book(t, s, k, ask(now))
	require.True(t, v.Booked, "%s at %v: not booked: %+v", k, now.Sub(T0), v)
	require.True(t, v.At.Equal(want), "%s at %v: booked at %v, want %v", k, now.Sub(T0), v.At.Sub(T0), want.Sub(T0))
	return v
}

// refused fails t unless a call asking at now is refused, told to come back
// at want.
func refused(t *testing.T, s retry.Store, k retry.Key, now, want time.Time) retry.Verdict {
	t.Helper()
	v := book(t, s, k, ask(now))
	require.False(t, v.Booked, "%s at %v: booked, want refused: %+v", k, now.Sub(T0), v)
	require.True(t, v.At.Equal(want), "%s at %v: come back at %v, want %v", k, now.Sub(T0), v.At.Sub(T0), want.Sub(T0))
	return v
}

// slowStart: a limit nothing is known of lets four calls go, then one more
// per success, until a response states its windows.
func slowStart(t *testing.T, s retry.Store) {
	var sent []retry.Verdict
	for range 4 {
		v := booked(t, s, gpt4, T0, T0)
		assert.Empty(t, v.By)
		assert.Zero(t, v.Window)
		sent = append(sent, v)
	}
	v := refused(t, s, gpt4, At(0.4), At(0.5))
	assert.Equal(t, retry.HeldStart, v.By)
	booked(t, s, mini, At(0.4), At(0.4)) // another limit starts on its own
	observe(t, s, gpt4, retry.Observation{Now: At(0.5), Sent: sent[0].At})
	booked(t, s, gpt4, At(0.5), At(0.5)) // three in flight, and a fifth place
	booked(t, s, gpt4, At(0.5), At(0.5))
	refused(t, s, gpt4, At(0.5), At(0.625))
	observe(t, s, gpt4, retry.Observation{Now: At(0.6), Sent: sent[1].At, Limits: requests(60, 50)})
	for range 10 {
		v = booked(t, s, gpt4, At(0.6), At(0.6))
		assert.Equal(t, time.Minute, v.Window)
	}
}

func windowsSpaceCalls(t *testing.T, s retry.Store) {
	observe(t, s, gpt4, retry.Observation{Now: T0, Sent: T0, Limits: requests(60, 2)})
	// Two calls are left: they go now; then one per second.
	for _, want := range []float64{0, 0, 1, 2, 3} {
		v := booked(t, s, gpt4, T0, At(want))
		assert.Equal(t, time.Minute, v.Window)
	}
	// The provider's count wins: a response to a call sent at 1s says 10
	// are left; the calls booked after it are counted on top.
	observe(t, s, gpt4, retry.Observation{Now: At(1.2), Sent: At(1), Limits: requests(60, 10)})
	booked(t, s, gpt4, At(1.2), At(1.2))
	// Another model of the credential has windows of its own.
	booked(t, s, mini, T0, T0)
}

func tokenWindows(t *testing.T, s retry.Store) {
	estimates := 0
	tokens := func() int64 { estimates++; return 3000 }
	a := ask(T0)
	a.Tokens = tokens
	v := book(t, s, gpt4, a)
	assert.Zero(t, estimates, "no token window: no estimate")
	assert.Zero(t, v.Cost.Tokens)
	observe(t, s, gpt4, retry.Observation{Now: T0, Sent: v.At,
		Limits: retry.Limits{{Reset: retry.SourceResetTokens, Tokens: true, Limit: 60000, Remaining: 0, Until: time.Minute}}})
	v = book(t, s, gpt4, a)
	assert.Equal(t, 1, estimates)
	assert.Equal(t, int64(3000), v.Cost.Tokens, "the verdict carries the estimate")
	assert.True(t, v.At.Equal(At(3)), "paced by its 3000 tokens: %v", v.At.Sub(T0))
	a.Cost = v.Cost
	v = book(t, s, gpt4, a)
	assert.Equal(t, 1, estimates, "a known cost is not estimated again")
	assert.True(t, v.At.Equal(At(6)), "%v", v.At.Sub(T0))
}

func hintHoldsTheLimit(t *testing.T, s retry.Store) {
	observe(t, s, gpt4, retry.Observation{Now: T0, Sent: T0, Class: retry.RateLimited, Hold: retry.Hold{By: retry.HeldHint, For: 3 * time.Second}})
	v := booked(t, s, gpt4, At(1), At(3))
	assert.Equal(t, retry.HeldHint, v.By)
	booked(t, s, mini, At(1), At(1))
	booked(t, s, other, At(1), At(1))
	v = booked(t, s, gpt4, At(3.5), At(3.5))
	assert.Empty(t, v.By)
}

func confirmOrRebook(t *testing.T, s retry.Store) {
	observe(t, s, gpt4, retry.Observation{Now: T0, Sent: T0, Limits: requests(60, 0)})
	v := booked(t, s, gpt4, T0, At(1))
	// Slept until its place: it stands.
	a := ask(At(1))
	a.Booked, a.BookedAt = v.At, T0
	w := book(t, s, gpt4, a)
	assert.True(t, w.Booked && w.Confirmed && w.At.Equal(v.At), "%+v", w)
	// A hint that began while the next call slept moves it.
	v = booked(t, s, gpt4, At(1), At(2))
	observe(t, s, gpt4, retry.Observation{Now: At(1.5), Sent: At(1), Class: retry.RateLimited, Hold: retry.Hold{By: retry.HeldHint, For: 5 * time.Second}})
	a = ask(At(2))
	a.Booked, a.BookedAt = v.At, At(1)
	w = book(t, s, gpt4, a)
	assert.False(t, w.Confirmed)
	assert.True(t, w.At.Equal(At(6.5)), "booked anew after the hint: %v", w.At.Sub(T0))
}

func deadline(t *testing.T, s retry.Store) {
	observe(t, s, gpt4, retry.Observation{Now: T0, Sent: T0, Class: retry.RateLimited, Hold: retry.Hold{By: retry.HeldHint, For: 10 * time.Second}})
	a := ask(T0)
	a.Deadline, a.MinAttemptTime = At(5), time.Second
	v := book(t, s, gpt4, a)
	assert.False(t, v.Booked, "the hold passes the deadline")
	assert.True(t, v.At.Equal(At(10)))
	// Nothing was booked: a later call is not pushed back by it.
	observe(t, s, gpt4, retry.Observation{Now: At(10), Sent: At(10), Limits: requests(60, 1)})
	booked(t, s, gpt4, At(10), At(10))
}

func overloadProbes(t *testing.T, s retry.Store) {
	observe(t, s, gpt4, retry.Observation{Now: T0, Sent: T0, Class: retry.Overloaded, Hold: retry.Hold{By: retry.HeldOverload, For: 2 * time.Second}})
	v := refused(t, s, gpt4, At(1), At(2))
	assert.Equal(t, retry.HeldOverload, v.By)
	probe := booked(t, s, gpt4, At(2), At(2))
	assert.True(t, probe.Probe, "the first call after the hold probes")
	v = refused(t, s, gpt4, At(2.1), At(2.6))
	assert.Equal(t, retry.HeldOverload, v.By, "one probe at a time: the others look again soon")
	// The probe fails: held again, longer.
	observe(t, s, gpt4, retry.Observation{Now: At(2.5), Sent: probe.At, Class: retry.Overloaded, Hold: retry.Hold{By: retry.HeldOverload, For: 4 * time.Second}})
	refused(t, s, gpt4, At(3), At(6.5))
	probe = booked(t, s, gpt4, At(6.5), At(6.5))
	require.True(t, probe.Probe)
	// It succeeds: every call goes.
	observe(t, s, gpt4, retry.Observation{Now: At(7), Sent: probe.At})
	for range 3 {
		v = booked(t, s, gpt4, At(7), At(7))
		assert.False(t, v.Probe)
	}
}

// quota is a quota_exhausted observation blocking scope, probed each minute.
func quota(now time.Time, scope retry.Scope) retry.Observation {
	return retry.Observation{Now: now, Sent: now, Class: retry.QuotaExhausted,
		Hold: retry.Hold{By: retry.HeldBlock, Scope: scope, Class: retry.QuotaExhausted, Reason: "quota_exhausted: billing", Every: time.Minute}}
}

func credentialBlock(t *testing.T, s retry.Store) {
	observe(t, s, gpt4, quota(T0, retry.ScopeCredential))
	for _, k := range []retry.Key{gpt4, mini} {
		v := refused(t, s, k, At(1), At(60))
		assert.Equal(t, retry.HeldBlock, v.By, "%s is blocked with its credential", k)
		assert.Equal(t, retry.QuotaExhausted, v.Class)
		assert.Equal(t, "quota_exhausted: billing", v.Reason)
	}
	booked(t, s, other, At(1), At(1))
	// One probe per interval for the credential, whichever model.
	v := booked(t, s, mini, At(60), At(60))
	require.True(t, v.Probe)
	refused(t, s, gpt4, At(60), At(120)) // the next probe's time
	// Topped up: the probe succeeds and every model goes.
	observe(t, s, mini, retry.Observation{Now: At(60.2), Sent: v.At})
	booked(t, s, gpt4, At(61), At(61))
	booked(t, s, mini, At(61), At(61))
}

func limitBlock(t *testing.T, s retry.Store) {
	observe(t, s, gpt4, quota(T0, retry.ScopeLimit))
	refused(t, s, gpt4, At(1), At(60))
	booked(t, s, mini, At(1), At(1))
	// A block with an end lifts by itself.
	observe(t, s, mini, retry.Observation{Now: At(2), Sent: At(2), Class: retry.RateLimited,
		Hold: retry.Hold{By: retry.HeldBlock, Scope: retry.ScopeLimit, Class: retry.RateLimited, Reason: "long hint", Every: time.Minute, For: 10 * time.Second}})
	v := refused(t, s, mini, At(3), At(62))
	assert.True(t, v.Until.Equal(At(12)), "until %v", v.Until.Sub(T0))
	booked(t, s, mini, At(12), At(12))
}

func learnedRate(t *testing.T, s retry.Store) {
	for i := range 30 { // 30 calls succeed in the first second, sent from an hour ago
		observe(t, s, gpt4, retry.Observation{Now: At(float64(i) / 30), Sent: At(float64(i)/30 - 3600)})
	}
	observe(t, s, gpt4, retry.Observation{Now: At(1), Sent: At(1), Class: retry.RateLimited})
	// 0.7 × 30 a minute: one call every 2.86 s, the first one interval
	// after the refusal.
	v := book(t, s, gpt4, ask(At(1.1)))
	require.True(t, v.Booked)
	assert.Equal(t, retry.HeldWindow, v.By)
	assert.InDelta(t, 3.86, v.At.Sub(T0).Seconds(), 0.1)
	w := book(t, s, gpt4, ask(At(1.1)))
	gap := w.At.Sub(v.At).Seconds()
	assert.True(t, gap > 2.5 && gap < 2.9, "spaced at the rate, recovering: %.2fs", gap)
}

// concurrent books 64 calls at once on two limits, from as many goroutines:
// each limit's 30 calls left go now, the other two follow at its interval.
func concurrent(t *testing.T, s retry.Store) {
	ctx := context.Background()
	keys := []retry.Key{gpt4, other}
	for _, k := range keys {
		observe(t, s, k, retry.Observation{Now: T0, Sent: T0, Limits: requests(30, 30)}) // 2s a call
	}
	var mu sync.Mutex
	got := map[retry.Key][]time.Duration{}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			k := keys[i%2]
			v, err := s.Book(ctx, k, ask(T0))
			assert.NoError(t, err)
			assert.True(t, v.Booked)
			assert.NoError(t, s.Observe(ctx, k, retry.Observation{Now: v.At, Sent: v.At}))
			mu.Lock()
			got[k] = append(got[k], v.At.Sub(T0))
			mu.Unlock()
		})
	}
	wg.Wait()
	want := make([]time.Duration, 30, 32)
	want = append(want, 2*time.Second, 4*time.Second)
	for _, k := range keys {
		slices.Sort(got[k])
		assert.Equal(t, want, got[k], "%s", k)
	}
}

// sameAsPaceState drives the store and a MemoryStore (the reference: one
// PaceState per limit and per credential) with the same random sequence of
// asks and observations over four limits, and compares every verdict.
func sameAsPaceState(t *testing.T, s retry.Store) {
	var ref retry.MemoryStore
	ctx := context.Background()
	keys := []retry.Key{gpt4, mini, other, {Provider: retry.Anthropic, Model: "claude", Credential: "c1"}}
	rng := rand.New(rand.NewPCG(1, 2))
	now := T0
	var sent []time.Time // times of calls booked and not yet answered
	classes := []retry.Class{"", "", "", retry.RateLimited, retry.Overloaded, retry.ServerError, retry.Canceled}
	for i := range 400 {
		now = now.Add(time.Duration(rng.IntN(800)) * time.Millisecond)
		k := keys[rng.IntN(len(keys))]
		if rng.IntN(2) == 0 || len(sent) == 0 {
			a := ask(now)
			if rng.IntN(4) == 0 {
				a.Deadline, a.MinAttemptTime = now.Add(time.Duration(rng.IntN(10))*time.Second), 100*time.Millisecond
			}
			want, err := ref.Book(ctx, k, a)
			require.NoError(t, err)
			got := book(t, s, k, a)
			require.Equal(t, verdictString(want), verdictString(got), "op %d: Book(%s) at %v", i, k, now.Sub(T0))
			if got.Booked {
				sent = append(sent, got.At)
			}
			continue
		}
		j := rng.IntN(len(sent))
		o := retry.Observation{Now: later(now, sent[j]), Sent: sent[j], Class: classes[rng.IntN(len(classes))]}
		sent = slices.Delete(sent, j, j+1)
		switch o.Class {
		case "":
			if rng.IntN(2) == 0 {
				o.Limits = requests(60, int64(rng.IntN(61)))
			}
		case retry.RateLimited:
			switch rng.IntN(3) {
			case 0:
				o.Hold = retry.Hold{By: retry.HeldHint, For: time.Duration(rng.IntN(5000)) * time.Millisecond}
			case 1:
				o.Hold = retry.Hold{By: retry.HeldBlock, Scope: retry.Scope([]string{string(retry.ScopeLimit), string(retry.ScopeCredential)}[rng.IntN(2)]),
					Class: retry.RateLimited, Reason: "blocked", Every: 20 * time.Second, For: time.Duration(rng.IntN(90)) * time.Second}
			}
		case retry.Overloaded:
			o.Hold = retry.Hold{By: retry.HeldOverload, For: 2 * time.Second}
		}
		require.NoError(t, ref.Observe(ctx, k, o))
		observe(t, s, k, o)
	}
}

// verdictString renders a verdict with its instants relative to T0, so
// that equal verdicts compare equal whatever the times' locations.
func verdictString(v retry.Verdict) string {
	rel := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Sub(T0).String()
	}
	return fmt.Sprintf("at=%s booked=%t confirmed=%t by=%q probe=%t class=%q reason=%q until=%s window=%v latency=%v cost=%+v",
		rel(v.At), v.Booked, v.Confirmed, v.By, v.Probe, v.Class, v.Reason, rel(v.Until), v.Window, v.Latency, v.Cost)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// idleForgotten uses 50 limits once, each call answered, and has the
// harness check that the store forgets them once idle.
func idleForgotten(t *testing.T, h Harness) {
	s := h.New(t)
	var keys []retry.Key
	for i := range 50 {
		k := retry.Key{Provider: retry.OpenAI, Model: "gpt-4o", Credential: "rotated-" + strconv.Itoa(i)}
		keys = append(keys, k)
		v := booked(t, s, k, T0, T0)
		observe(t, s, k, retry.Observation{Now: At(0.2), Sent: v.At, Limits: requests(60, 59)})
	}
	h.Forgets(t, s, keys, At(61))
}
