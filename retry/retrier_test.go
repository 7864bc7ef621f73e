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
)

var testKey = Key{Provider: OpenAI, Model: "gpt-4o", Credential: CredentialID("sk-test")}

// newRetrier returns a Retrier whose delays sit in the middle of their
// ranges, failing the test on a config error.
func newRetrier(t *testing.T, cfg Config, opts ...Option) *Retrier {
	t.Helper()
	r, err := New(cfg, append([]Option{WithRand(func() float64 { return 0.5 })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
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
		if err := r.Do(t.Context(), testKey, s.op); err != nil {
			t.Fatalf("Do = %v, want nil", err)
		}
		if got := s.calls(); got != 3 {
			t.Fatalf("attempts = %d, want 3", got)
		}
		for i := 1; i < 3; i++ {
			// the hint is 3s and its spread 300ms; Rand 0.5 puts it at 3.15s
			if gap := s.times[i].Sub(s.times[i-1]); gap != 3150*time.Millisecond {
				t.Errorf("gap before attempt %d = %v, want 3.15s (≥ the 3s hint)", i+1, gap)
			}
		}
		if elapsed := time.Since(start); elapsed < 6*time.Second {
			t.Errorf("elapsed = %v, want at least the two 3s hints", elapsed)
		}
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
		if elapsed := time.Since(start); elapsed != 0 {
			t.Errorf("slept %v, want 0", elapsed)
		}
		if got := s.calls(); got != 1 {
			t.Errorf("attempts = %d, want 1", got)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Do = %v (%T), want an *Error", err, err)
		}
		if !e.Decision.Deadline || e.Decision.Action != GiveUp || e.Attempts != 1 || e.Waited != 0 {
			t.Errorf("Error = deadline %v, action %q, attempts %d, waited %v; want true, give_up, 1, 0", e.Decision.Deadline, e.Decision.Action, e.Attempts, e.Waited)
		}
		if !errors.Is(err, last) {
			t.Error("errors.Is(err, the last provider error) = false, want true")
		}
		var re *ResponseError
		if !errors.As(err, &re) || re.Status != 429 {
			t.Errorf("errors.As(err, *ResponseError) = %v, want the 429", re)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Error("errors.Is(err, context.DeadlineExceeded) = false, want true")
		}
		if !errors.Is(err, ErrDeadline) {
			t.Error("errors.Is(err, ErrDeadline) = false, want true")
		}
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
		if elapsed := time.Since(start); elapsed != 4*time.Second {
			t.Errorf("returned after %v, want 4s (when the context was canceled)", elapsed)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Do = %v, want it to wrap context.Canceled", err)
		}
		var e *Error
		if !errors.As(err, &e) || e.Attempts != 1 || e.Waited != 4*time.Second || e.Decision.Action != GiveUp {
			t.Fatalf("Do = %+v, want an *Error after 1 attempt that waited 4s", e)
		}
		var re *ResponseError
		if !errors.As(err, &re) || re.Status != 429 {
			t.Errorf("errors.As(err, *ResponseError) = %v, want the last 429", re)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Error("errors.Is(err, DeadlineExceeded) = true for a cancellation")
		}
		if got := s.calls(); got != 1 {
			t.Errorf("attempts = %d, want 1", got)
		}
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
		if !errors.As(err, &e) || e.Attempts != 0 || e.Err != nil || !errors.Is(err, context.Canceled) {
			t.Errorf("Do = %v, want an *Error after 0 attempts wrapping context.Canceled", err)
		}
		if s.calls() != 0 {
			t.Errorf("op called %d times, want 0", s.calls())
		}
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
		if !errors.As(err, &e) || e.Decision.Class != Canceled || calls != 1 {
			t.Fatalf("Do = %v after %d calls, want a canceled *Error after 1", err, calls)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("errors.Is(%v, context.Canceled) = false, want true", err)
		}
	})
}

func TestDoGivesUpOnANonRetryableFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(t, Config{})
		s := &script{errs: []error{&ResponseError{Status: 401, Body: []byte(`{"error":{"message":"Incorrect API key provided"}}`)}}}
		err := r.Do(t.Context(), testKey, s.op)
		var e *Error
		if !errors.As(err, &e) || e.Attempts != 1 || e.Decision.Class != Auth || e.Cause != nil {
			t.Fatalf("Do = %v, want an auth *Error after 1 attempt without a cause", err)
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Errorf("Do = %v wraps a context error, want none", err)
		}
		if e.Decision.Message != "Incorrect API key provided" {
			t.Errorf("Message = %q, want the provider's", e.Decision.Message)
		}
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
		if !errors.As(err, &e) || e.Attempts != 4 || s.calls() != 4 {
			t.Fatalf("Do = %v after %d calls, want an *Error after 4 attempts", err, s.calls())
		}
		// 500ms doubling, equal jitter at 0.5: 375ms, 750ms, 1.5s.
		if want := 2625 * time.Millisecond; e.Waited != want || time.Since(start) != want {
			t.Errorf("waited %v (elapsed %v), want %v", e.Waited, time.Since(start), want)
		}
		if !errors.Is(err, boom) {
			t.Error("errors.Is(err, the last 500) = false, want true")
		}
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
		if !errors.As(err, &e) || e.Attempts != 3 {
			t.Fatalf("Do = %v, want an *Error after 3 attempts", err)
		}
		if got := r.budget.peek(testKey.String()); got != 3 {
			t.Errorf("budget = %v tokens, want 3", got)
		}
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
			if err := r.Do(t.Context(), testKey, a.op); err != nil {
				t.Errorf("A: %v", err)
			}
		})
		wg.Go(func() {
			time.Sleep(time.Second) // after A's 429
			if err := r.Do(t.Context(), testKey, b.op); err != nil {
				t.Errorf("B: %v", err)
			}
		})
		wg.Go(func() {
			time.Sleep(time.Second)
			other := testKey
			other.Model = "gpt-4o-mini"
			if err := r.Do(t.Context(), other, c.op); err != nil {
				t.Errorf("C: %v", err)
			}
		})
		wg.Wait()
		if got := b.times[0].Sub(start); got < 5*time.Second {
			t.Errorf("B sent at %v, want not before A's 5s hint", got)
		}
		if got := c.times[0].Sub(start); got != time.Second {
			t.Errorf("C (another key) sent at %v, want 1s: not held", got)
		}
		if got := a.times[1].Sub(start); got < 5*time.Second {
			t.Errorf("A retried at %v, want not before 5s", got)
		}
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
			if err := r.Do(t.Context(), testKey, opA); err != nil {
				t.Errorf("A: %v", err)
			}
		})
		for _, s := range []struct {
			at time.Duration
			sc *script
		}{{1100 * time.Millisecond, b}, {1600 * time.Millisecond, c}} {
			wg.Go(func() {
				time.Sleep(s.at)
				if err := r.Do(t.Context(), testKey, s.sc.op); err != nil {
					t.Errorf("%v: %v", s.at, err)
				}
			})
		}
		wg.Wait()
		if len(a) != 2 || a[1] != 1050*time.Millisecond {
			t.Errorf("A sent at %v, want its probe at 1.05s (the end of the hold)", a)
		}
		// B and C, held behind the probe, look again every 500ms: the
		// probe's success at 1.95s released the key at once, and they go
		// at their next look, 2.1s.
		for name, sc := range map[string]*script{"B": b, "C": c} {
			if got := sc.times[0].Sub(start); got != 2100*time.Millisecond {
				t.Errorf("%s sent at %v, want 2.1s (at its first look after the probe succeeded)", name, got)
			}
		}
	})
}

func TestDoHoldPastTheDeadlineStopsBeforeSending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &events{}
		r := newRetrier(t, Config{}, WithObserver(ev))
		a := &script{errs: []error{status429("10")}}
		if err := r.Do(t.Context(), testKey, a.op); err != nil {
			t.Fatal(err)
		}
		// A waited out the 10s hint; a 429 now holds the key for 30s.
		r.store.(*MemoryStore).with(testKey, func(s *PaceState) { s.Hold = time.Now().Add(30 * time.Second) })
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		b := &script{}
		start := time.Now()
		err := r.Do(ctx, testKey, b.op)
		if time.Since(start) != 0 || b.calls() != 0 {
			t.Errorf("B waited %v and sent %d times, want 0 and 0", time.Since(start), b.calls())
		}
		var e *Error
		if !errors.As(err, &e) || e.Attempts != 0 || !e.Decision.Deadline || !errors.Is(err, ErrDeadline) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Do = %v, want an *Error after 0 attempts wrapping ErrDeadline", err)
		}
		last := ev.es[len(ev.es)-1]
		if last.Decision.Class != RateLimited || !strings.HasPrefix(last.Decision.Reason, "rate_limited: calls to this limit are held") {
			t.Errorf("unsent give-up: class %q, reason %q; want rate_limited, the limit being held", last.Decision.Class, last.Decision.Reason)
		}
		if last.Sent || last.Decision.Action != GiveUp || last.Decision.Attempt != 1 || last.Decision.Provider != OpenAI || !last.Decision.Deadline {
			t.Errorf("last event = %+v, want an unsent give-up of attempt 1 for the deadline", last)
		}
	})
}

func TestDoObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &events{}
		r := newRetrier(t, Config{}, WithObserver(ObserverFunc(ev.Observe)))
		start := time.Now()
		s := &script{errs: []error{status429("2"), &ResponseError{Status: 500}}}
		if err := r.Do(t.Context(), testKey, s.op); err != nil {
			t.Fatal(err)
		}
		if len(ev.es) != 3 {
			t.Fatalf("%d events, want 3 (one per attempt)", len(ev.es))
		}
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
			if e.Key != testKey || !e.Sent || e.Decision.Attempt != i+1 {
				t.Errorf("event %d: key %v sent %v attempt %d; want %v true %d", i, e.Key, e.Sent, e.Decision.Attempt, testKey, i+1)
			}
			if e.Decision.Action != w.action || e.Decision.Class != w.class || (w.source != "" && e.Decision.HintSource != w.source) {
				t.Errorf("event %d: %q %q %q, want %q %q %q", i, e.Decision.Action, e.Decision.Class, e.Decision.HintSource, w.action, w.class, w.source)
			}
			if e.Start.Sub(start) != w.start || e.End != e.Start || e.Queued != w.queued || e.Waited != w.waited {
				t.Errorf("event %d: start %v end %v queued %v waited %v; want %v, %v, %v, %v", i, e.Start.Sub(start), e.End.Sub(start), e.Queued, e.Waited, w.start, w.start, w.queued, w.waited)
			}
			if e.Budget < w.budget-1e-9 || e.Budget > w.budget+1e-9 {
				t.Errorf("event %d: budget %v, want %v", i, e.Budget, w.budget)
			}
			if e.Decision.Provider != OpenAI {
				t.Errorf("event %d: provider %q, want the key's %q", i, e.Decision.Provider, OpenAI)
			}
		}
		if ev.es[0].Decision.Hint.Wait != 2*time.Second || ev.es[0].Decision.Status != 429 {
			t.Errorf("event 0: hint %v status %d, want 2s 429", ev.es[0].Decision.Hint.Wait, ev.es[0].Decision.Status)
		}
	})
}

func TestDoObserverBudgetDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &events{}
		r := newRetrier(t, Config{Budget: BudgetConfig{MaxTokens: -1}}, WithObserver(ev))
		if err := r.Do(t.Context(), testKey, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if len(ev.es) != 1 || ev.es[0].Budget != -1 {
			t.Errorf("events = %+v, want one with Budget -1", ev.es)
		}
	})
}

func TestWithClockAndStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := new(MemoryStore)
		fixed := t0
		r1 := newRetrier(t, Config{}, WithStore(store), WithClock(func() time.Time { return fixed }))
		r2 := newRetrier(t, Config{}, WithStore(store), WithClock(func() time.Time { return fixed }))
		if err := r1.Do(t.Context(), testKey, (&script{errs: []error{status429("0")}}).op); err != nil {
			t.Fatal(err)
		}
		var hold time.Time
		store.with(testKey, func(s *PaceState) { hold = s.Hold })
		if !hold.Equal(t0) {
			t.Errorf("shared store hold = %v, want t0 from the given clock", hold)
		}
		// r2 shares the store: a hold set there holds its calls.
		store.with(testKey, func(s *PaceState) { s.Hold = t0.Add(2 * time.Second) })
		start := time.Now()
		if err := r2.Do(t.Context(), testKey, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("r2 waited %v, want the shared 2s hold", got)
		}
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
		if err := r.Do(t.Context(), testKey, s.op); err != nil {
			t.Fatalf("Do = %v, want nil", err)
		}
		if s.calls() != 2 {
			t.Errorf("attempts = %d, want 2", s.calls())
		}
	})
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := sleep(t.Context(), -time.Second); err != nil || time.Since(start) != 0 {
			t.Errorf("sleep(-1s) = %v after %v, want nil at once", err, time.Since(start))
		}
		if err := sleep(t.Context(), time.Second); err != nil || time.Since(start) != time.Second {
			t.Errorf("sleep(1s) = %v after %v, want nil after 1s", err, time.Since(start))
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := sleep(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Errorf("sleep(canceled, 0) = %v, want context.Canceled", err)
		}
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
		if err := r.Do(t.Context(), testKey, func(context.Context) error { sent = time.Since(start); return nil }); err != nil {
			t.Fatal(err)
		}
		if sent != 5*time.Second {
			t.Errorf("sent at %v, want 5s: after the hold that began while it slept, not at its 1s booking", sent)
		}
	})
}
