package retry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testKey = Key{Provider: OpenAI, Model: "gpt-4o", Credential: CredentialID("sk-test")}

// newRetrier returns a Retrier whose delays sit in the middle of their
// ranges, failing the test on a config error.
func newRetrier(t *testing.T, cfg Config, opts ...Option) *Retrier {
	t.Helper()
	r, err := New(cfg, append([]Option{WithRand(func() float64 { return 0.5 })}, opts...)...)
	require.NoError(t, err)
	return r
}

// status429 is a 429 response asking for a wait of retryAfter.
func status429(retryAfter string) *ResponseError {
	return &ResponseError{Status: 429, Header: hdr("Retry-After", retryAfter), Body: []byte(`{"error":{"message":"Rate limited","code":"rate_limit_exceeded"}}`)}
}

// script is an op that returns errs in turn (nil once they run out) and
// records when each attempt was made.
type script struct {
	mu    sync.Mutex
	errs  []error
	times []time.Time
}

func (s *script) op(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.times = append(s.times, time.Now())
	if len(s.errs) == 0 {
		return nil
	}
	err := s.errs[0]
	s.errs = s.errs[1:]
	return err
}

func (s *script) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.times)
}

// events records every event an Observer is told of.
type events struct {
	mu sync.Mutex
	es []Event
}

func (e *events) Observe(_ context.Context, ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.es = append(e.es, ev)
}

func (e *events) all() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.es)
}

func TestDoRetriesUntilSuccessHonouringTheHint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(t, Config{})
		s := &script{errs: []error{status429("3"), status429("3")}}
		start := time.Now()
		require.NoError(t, r.Do(t.Context(), testKey, s.op), "Do")
		require.Equal(t, 3, s.calls(), "attempts")
		for i := 1; i < 3; i++ {
			// the hint is 3s and its spread 300ms; Rand 0.5 puts it at 3.15s
			assert.Equal(t, 3150*time.Millisecond, s.times[i].Sub(s.times[i-1]), "gap before attempt %d (≥ the 3s hint)", i+1)
		}
		assert.GreaterOrEqual(t, time.Since(start), 6*time.Second, "elapsed: want at least the two 3s hints")
	})
}

func TestDoGivesUpAtOnceWhenTheWaitPassesTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(t, Config{})
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		last := fmt.Errorf("openai: %w", status429("10"))
		s := &script{errs: []error{last}}
		start := time.Now()
		err := r.Do(ctx, testKey, s.op)
		assert.Zero(t, time.Since(start), "slept")
		assert.Equal(t, 1, s.calls(), "attempts")
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.True(t, e.Decision.Deadline, "Error's Decision.Deadline")
		assert.Equal(t, GiveUp, e.Decision.Action, "Error's action")
		assert.Equal(t, 1, e.Attempts, "Error's attempts")
		assert.Zero(t, e.Waited, "Error's waited")
		assert.ErrorIs(t, err, last, "the last provider error")
		var re *ResponseError
		if assert.ErrorAs(t, err, &re) {
			assert.Equal(t, 429, re.Status, "the last response")
		}
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, ErrDeadline)
	})
}

func TestDoContextCanceledWhileSleeping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(t, Config{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		time.AfterFunc(4*time.Second, cancel)
		s := &script{errs: []error{status429("10")}}
		start := time.Now()
		err := r.Do(ctx, testKey, s.op)
		assert.Equal(t, 4*time.Second, time.Since(start), "returned after: want when the context was canceled")
		assert.ErrorIs(t, err, context.Canceled)
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, 1, e.Attempts, "Error's attempts")
		require.Equal(t, 4*time.Second, e.Waited, "Error's waited")
		require.Equal(t, GiveUp, e.Decision.Action, "Error's action")
		var re *ResponseError
		if assert.ErrorAs(t, err, &re) {
			assert.Equal(t, 429, re.Status, "the last response")
		}
		assert.NotErrorIs(t, err, context.DeadlineExceeded, "a cancellation")
		assert.Equal(t, 1, s.calls(), "attempts")
	})
}

func TestDoContextEndedBeforeTheFirstAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(t, Config{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		s := &script{}
		err := r.Do(ctx, testKey, s.op)
		var e *Error
		if assert.ErrorAs(t, err, &e) {
			assert.Zero(t, e.Attempts, "Error's attempts")
			assert.Nil(t, e.Err, "Error's last error")
		}
		assert.ErrorIs(t, err, context.Canceled)
		assert.Zero(t, s.calls(), "op calls")
	})
}

func TestDoContextEndedDuringTheAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(t, Config{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		calls := 0
		err := r.Do(ctx, testKey, func(ctx context.Context) error {
			calls++
			cancel()
			return errors.New("read: connection closed") // not a context error, but the context ended
		})
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, Canceled, e.Decision.Class, "Error's class")
		require.Equal(t, 1, calls, "op calls")
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestDoGivesUpOnANonRetryableFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(t, Config{})
		s := &script{errs: []error{&ResponseError{Status: 401, Body: []byte(`{"error":{"message":"Incorrect API key provided"}}`)}}}
		err := r.Do(t.Context(), testKey, s.op)
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, 1, e.Attempts, "Error's attempts")
		require.Equal(t, Auth, e.Decision.Class, "Error's class")
		require.Nil(t, e.Cause, "Error's cause")
		assert.NotErrorIs(t, err, context.DeadlineExceeded)
		assert.NotErrorIs(t, err, context.Canceled)
		assert.Equal(t, "Incorrect API key provided", e.Decision.Message, "Message: want the provider's")
	})
}

func TestDoAttemptLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(t, Config{Budget: BudgetConfig{MaxTokens: -1}})
		boom := &ResponseError{Status: 500}
		s := &script{errs: []error{boom, boom, boom, boom, boom}}
		start := time.Now()
		err := r.Do(t.Context(), testKey, s.op)
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, 4, e.Attempts, "Error's attempts")
		require.Equal(t, 4, s.calls(), "op calls")
		// 500ms doubling, equal jitter at 0.5: 375ms, 750ms, 1.5s.
		assert.Equal(t, 2625*time.Millisecond, e.Waited, "waited")
		assert.Equal(t, 2625*time.Millisecond, time.Since(start), "elapsed")
		assert.ErrorIs(t, err, boom, "the last 500")
	})
}

func TestDoRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 6 tokens: retries stop at or below 3, so the 3rd failure in a row
		// of a struggling provider ends the call.
		r := newRetrier(t, Config{Budget: BudgetConfig{MaxTokens: 6, Ratio: 1}})
		s := &script{errs: []error{&ResponseError{Status: 500}, &ResponseError{Status: 500}, &ResponseError{Status: 500}, &ResponseError{Status: 500}}}
		err := r.Do(t.Context(), testKey, s.op)
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, 3, e.Attempts, "Error's attempts")
		assert.Equal(t, 3.0, r.budget.peek(testKey), "budget tokens")
	})
}

func TestDoHoldsOtherCallsToTheSameKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(t, Config{})
		start := time.Now()
		a := &script{errs: []error{status429("5")}}
		b, c := &script{}, &script{}
		var wg sync.WaitGroup
		wg.Go(func() {
			assert.NoError(t, r.Do(t.Context(), testKey, a.op), "A")
		})
		wg.Go(func() {
			time.Sleep(time.Second) // after A's 429
			assert.NoError(t, r.Do(t.Context(), testKey, b.op), "B")
		})
		wg.Go(func() {
			time.Sleep(time.Second)
			other := testKey
			other.Model = "gpt-4o-mini"
			assert.NoError(t, r.Do(t.Context(), other, c.op), "C")
		})
		wg.Wait()
		assert.GreaterOrEqual(t, b.times[0].Sub(start), 5*time.Second, "B sent: want not before A's 5s hint")
		assert.Equal(t, time.Second, c.times[0].Sub(start), "C (another key) sent: want 1s, not held")
		assert.GreaterOrEqual(t, a.times[1].Sub(start), 5*time.Second, "A retried: want not before 5s")
	})
}

func TestDoOverloadLetsOneProbeThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A's 529 holds the key for Overload.Base (1s), jittered up by a
		// twentieth at rand 0.5: until 1.05s. A's own delay is that hold,
		// so A probes; its answer takes 900ms.
		r := newRetrier(t, Config{})
		start := time.Now()
		var a []time.Duration
		opA := func(context.Context) error {
			a = append(a, time.Since(start))
			if len(a) == 1 {
				return &ResponseError{Status: 529}
			}
			time.Sleep(900 * time.Millisecond)
			return nil
		}
		b, c := &script{}, &script{}
		var wg sync.WaitGroup
		wg.Go(func() {
			assert.NoError(t, r.Do(t.Context(), testKey, opA), "A")
		})
		for _, s := range []struct {
			at time.Duration
			sc *script
		}{{1100 * time.Millisecond, b}, {1600 * time.Millisecond, c}} {
			wg.Go(func() {
				time.Sleep(s.at)
				assert.NoError(t, r.Do(t.Context(), testKey, s.sc.op), "the call at %v", s.at)
			})
		}
		wg.Wait()
		if assert.Len(t, a, 2, "A's attempts") {
			assert.Equal(t, 1050*time.Millisecond, a[1], "A's probe: want at the end of the hold")
		}
		// B and C, held behind the probe, look again every 500ms: the
		// probe's success at 1.95s released the key at once, and they go
		// at their next look, 2.1s.
		for name, sc := range map[string]*script{"B": b, "C": c} {
			assert.Equal(t, 2100*time.Millisecond, sc.times[0].Sub(start), "%s sent: want at its first look after the probe succeeded", name)
		}
	})
}

func TestDoHoldPastTheDeadlineStopsBeforeSending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &events{}
		r := newRetrier(t, Config{}, WithObserver(ev))
		a := &script{errs: []error{status429("10")}}
		require.NoError(t, r.Do(t.Context(), testKey, a.op))
		// A waited out the 10s hint; a 429 now holds the key for 30s.
		r.store.(*MemoryStore).with(testKey, func(s *PaceState) { s.Hold = time.Now().Add(30 * time.Second) })
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		b := &script{}
		start := time.Now()
		err := r.Do(ctx, testKey, b.op)
		assert.Zero(t, time.Since(start), "B waited")
		assert.Zero(t, b.calls(), "B sent")
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Zero(t, e.Attempts, "Error's attempts")
		require.True(t, e.Decision.Deadline, "Error's Decision.Deadline")
		require.ErrorIs(t, err, ErrDeadline)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		last := ev.es[len(ev.es)-1]
		assert.Equal(t, RateLimited, last.Decision.Class, "unsent give-up's class")
		assert.True(t, strings.HasPrefix(last.Decision.Reason, "rate_limited: calls to this limit are held"), "unsent give-up's reason %q: want the limit being held", last.Decision.Reason)
		assert.False(t, last.Sent, "the last event: want an unsent give-up")
		assert.Equal(t, GiveUp, last.Decision.Action, "the last event's action")
		assert.Equal(t, 1, last.Decision.Attempt, "the last event's attempt")
		assert.Equal(t, OpenAI, last.Decision.Provider, "the last event's provider")
		assert.True(t, last.Decision.Deadline, "the last event: want a give-up for the deadline")
	})
}

func TestDoObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &events{}
		r := newRetrier(t, Config{}, WithObserver(ObserverFunc(ev.Observe)))
		start := time.Now()
		s := &script{errs: []error{status429("2"), &ResponseError{Status: 500}}}
		require.NoError(t, r.Do(t.Context(), testKey, s.op))
		require.Len(t, ev.es, 3, "events: want one per attempt")
		want := []struct {
			action Action
			class  Class
			source Source
			start  time.Duration
			queued time.Duration
			waited time.Duration
			budget float64
		}{
			{Retry, RateLimited, SourceRetryAfter, 0, 0, 0, 100},
			// the 2s hint plus half its 200ms spread: 2.1s
			{Retry, ServerError, SourceBackoff, 2100 * time.Millisecond, 2100 * time.Millisecond, 2100 * time.Millisecond, 99},
			// server_error backoff 500ms, equal jitter at 0.5: 375ms
			{Success, "", "", 2475 * time.Millisecond, 375 * time.Millisecond, 2475 * time.Millisecond, 99.1},
		}
		for i, w := range want {
			e := ev.es[i]
			assert.Equal(t, testKey, e.Key, "event %d: key", i)
			assert.True(t, e.Sent, "event %d: sent", i)
			assert.Equal(t, i+1, e.Decision.Attempt, "event %d: attempt", i)
			assert.Equal(t, w.action, e.Decision.Action, "event %d: action", i)
			assert.Equal(t, w.class, e.Decision.Class, "event %d: class", i)
			if w.source != "" {
				assert.Equal(t, w.source, e.Decision.HintSource, "event %d: hint source", i)
			}
			assert.Equal(t, w.start, e.Start.Sub(start), "event %d: start", i)
			assert.Equal(t, e.Start, e.End, "event %d: end", i)
			assert.Equal(t, w.queued, e.Queued, "event %d: queued", i)
			assert.Equal(t, w.waited, e.Waited, "event %d: waited", i)
			assert.InDelta(t, w.budget, e.Budget, 1e-9, "event %d: budget", i)
			assert.Equal(t, OpenAI, e.Decision.Provider, "event %d: provider, want the key's", i)
		}
		assert.Equal(t, 2*time.Second, ev.es[0].Decision.Hint.Wait, "event 0: hint")
		assert.Equal(t, 429, ev.es[0].Decision.Status, "event 0: status")
	})
}

func TestDoObserverBudgetDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &events{}
		r := newRetrier(t, Config{Budget: BudgetConfig{MaxTokens: -1}}, WithObserver(ev))
		require.NoError(t, r.Do(t.Context(), testKey, func(context.Context) error { return nil }))
		if assert.Len(t, ev.es, 1, "events") {
			assert.Equal(t, -1.0, ev.es[0].Budget, "Budget")
		}
	})
}

func TestWithClockAndStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := new(MemoryStore)
		fixed := t0
		r1 := newRetrier(t, Config{}, WithStore(store), WithClock(func() time.Time { return fixed }))
		r2 := newRetrier(t, Config{}, WithStore(store), WithClock(func() time.Time { return fixed }))
		require.NoError(t, r1.Do(t.Context(), testKey, (&script{errs: []error{status429("0")}}).op))
		var hold time.Time
		store.with(testKey, func(s *PaceState) { hold = s.Hold })
		assert.WithinDuration(t, t0, hold, 0, "shared store hold: want t0 from the given clock")
		// r2 shares the store: a hold set there holds its calls.
		store.with(testKey, func(s *PaceState) { s.Hold = t0.Add(2 * time.Second) })
		start := time.Now()
		require.NoError(t, r2.Do(t.Context(), testKey, func(context.Context) error { return nil }))
		assert.Equal(t, 2*time.Second, time.Since(start), "r2 waited: want the shared hold")
	})
}

// failingStore fails every operation: the call goes unpaced.
type failingStore struct{}

func (failingStore) Book(context.Context, Key, Ask) (Verdict, error) {
	return Verdict{}, errors.New("store down")
}

func (failingStore) Observe(context.Context, Key, Observation) error {
	return errors.New("store down")
}

func TestDoWithAFailingStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(t, Config{}, WithStore(failingStore{}))
		s := &script{errs: []error{status429("1")}}
		require.NoError(t, r.Do(t.Context(), testKey, s.op), "Do")
		assert.Equal(t, 2, s.calls(), "attempts")
	})
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		assert.NoError(t, sleep(t.Context(), -time.Second), "sleep(-1s)")
		assert.Zero(t, time.Since(start), "sleep(-1s) took")
		assert.NoError(t, sleep(t.Context(), time.Second), "sleep(1s)")
		assert.Equal(t, time.Second, time.Since(start), "sleep(1s) took")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		assert.ErrorIs(t, sleep(ctx, 0), context.Canceled, "sleep(canceled, 0)")
	})
}

// A call booked for later is not sent into a hold that began while it
// slept: it books again.
func TestDoRebooksAfterAHoldBeganWhileSleeping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := new(MemoryStore)
		r := newRetrier(t, Config{}, WithStore(store))
		start := time.Now()
		store.with(testKey, func(s *PaceState) {
			// One request a second, none left until start+1s.
			s.Windows = []PaceWindow{{Reset: SourceResetRequests, Interval: time.Second, Span: time.Second, TAT: start.Add(time.Second)}}
		})
		go func() {
			time.Sleep(500 * time.Millisecond)
			store.with(testKey, func(s *PaceState) { s.Hold = start.Add(5 * time.Second) })
		}()
		var sent time.Duration
		require.NoError(t, r.Do(t.Context(), testKey, func(context.Context) error { sent = time.Since(start); return nil }))
		assert.Equal(t, 5*time.Second, sent, "sent: want after the hold that began while it slept, not at its 1s booking")
	})
}
