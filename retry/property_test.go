package retry

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// duration draws a non-negative duration, mostly of realistic size and at
// times anywhere up to the int64 limit.
func duration(max time.Duration) *rapid.Generator[time.Duration] {
	return rapid.Custom(func(t *rapid.T) time.Duration {
		if rapid.IntRange(0, 9).Draw(t, "huge") == 0 {
			return time.Duration(rapid.Int64Range(0, math.MaxInt64).Draw(t, "ns"))
		}
		return time.Duration(rapid.Int64Range(0, int64(max)).Draw(t, "ns"))
	})
}

// config draws a valid Config.
func config(t *rapid.T) Config {
	policies := map[Class]Policy{}
	for _, c := range Classes {
		if !rapid.Bool().Draw(t, "custom "+string(c)) {
			continue
		}
		base := duration(time.Minute).Draw(t, "base")
		policies[c] = Policy{
			MaxAttempts: rapid.IntRange(0, 10).Draw(t, "max attempts"),
			Base:        base,
			Max:         base + upTo(duration(time.Hour).Draw(t, "max"), math.MaxInt64-base),
			Multiplier:  rapid.Float64Range(1, 10).Draw(t, "multiplier"),
			Jitter:      rapid.SampledFrom([]Jitter{JitterEqual, JitterFull, JitterNone}).Draw(t, "jitter"),
		}
	}
	spreadMin := duration(time.Second).Draw(t, "spread min")
	atLeast := spreadMin
	if atLeast == 0 {
		atLeast = 50 * time.Millisecond // the default it will take
	}
	cfg := Config{
		Policies:  policies,
		MaxHint:   duration(time.Hour).Draw(t, "max hint"),
		Spread:    rapid.Float64Range(0, 1).Draw(t, "spread"),
		SpreadMin: spreadMin,
		SpreadMax: atLeast + upTo(duration(10*time.Second).Draw(t, "spread max"), math.MaxInt64-atLeast),
		Budget:    BudgetConfig{MaxTokens: rapid.SampledFrom([]float64{-1, 1, 10, 100}).Draw(t, "max tokens")},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("drew an invalid config: %v", err)
	}
	return cfg
}

// upTo returns d, at most m: it keeps sums of drawn durations from
// overflowing.
func upTo(d time.Duration, m time.Duration) time.Duration { return min(d, m) }

func TestPropertyDecide(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := config(t)
		in := Input{
			Assessment: Assessment{
				Class:       rapid.SampledFrom(append([]Class{""}, Classes...)).Draw(t, "class"),
				Status:      rapid.SampledFrom([]int{0, 400, 429, 500, 503, 529}).Draw(t, "status"),
				ShouldRetry: rapid.SampledFrom([]string{"", "true", "false"}).Draw(t, "should retry"),
			},
			Attempt: rapid.IntRange(0, 12).Draw(t, "attempt"),
			Streak:  rapid.IntRange(0, 100).Draw(t, "streak"),
			Now:     t0,
			Budget:  rapid.Float64Range(-1, 100).Draw(t, "budget"),
			Rand:    rapid.Float64Range(0, 1).Filter(func(f float64) bool { return f < 1 }).Draw(t, "rand"),
		}
		if rapid.Bool().Draw(t, "hint") {
			in.Hint = Hint{Wait: time.Duration(rapid.Int64Range(0, int64(maxWait)).Draw(t, "wait")), Source: SourceRetryAfter}
		}
		if rapid.Bool().Draw(t, "deadline") {
			in.Deadline = t0.Add(time.Duration(rapid.Int64Range(int64(-time.Hour), int64(3*time.Hour)).Draw(t, "left")))
		}
		in.Pace = Verdict{
			Probe:   rapid.Bool().Draw(t, "probe"),
			By:      rapid.SampledFrom([]HoldKind{"", HeldHint, HeldWindow, HeldOverload, HeldCheck, HeldBlock}).Draw(t, "by"),
			Window:  duration(2*time.Minute).Draw(t, "window"),
			Latency: duration(10*time.Second).Draw(t, "latency"),
		}
		in.Window = rapid.SampledFrom([]time.Duration{0, time.Second, time.Minute}).Draw(t, "stated window")
		d := cfg.Decide(in)
		if d.Delay < 0 || d.DelayMin < 0 {
			t.Fatalf("negative delay: %v in [%v, %v]", d.Delay, d.DelayMin, d.DelayMax)
		}
		if d.Action != Retry {
			if d.Delay != 0 {
				t.Fatalf("%s with a delay of %v", d.Action, d.Delay)
			}
			return
		}
		if d.Delay < d.DelayMin || d.Delay > d.DelayMax {
			t.Fatalf("delay %v outside [%v, %v]", d.Delay, d.DelayMin, d.DelayMax)
		}
		switch {
		case d.Hold.By == HeldCheck && d.Delay < cfg.Probe.Soon:
			t.Fatalf("delay %v before the check's probe at %v", d.Delay, cfg.Probe.Soon)
		case d.Hold.By != HeldCheck && in.Hint.Valid() && d.Delay < in.Hint.Wait:
			t.Fatalf("delay %v below the hint %v", d.Delay, in.Hint.Wait)
		case d.Hold.By == HeldCheck && in.Hint.Wait <= cfg.knownWindow(in):
			t.Fatalf("hint %v checked though within the known window %v", in.Hint.Wait, cfg.knownWindow(in))
		}
		need := max(cfg.MinAttemptTime, in.Pace.Latency)
		if !in.Deadline.IsZero() && in.Now.Add(d.Delay+need).After(in.Deadline) {
			t.Fatalf("delay %v and an attempt of %v pass the deadline %v away", d.Delay, need, in.Deadline.Sub(in.Now))
		}
		if in.Class == "" || in.Class == Canceled || in.ShouldRetry == "false" {
			t.Fatalf("retried a %q (x-should-retry %q)", in.Class, in.ShouldRetry)
		}
	})
}

func TestPropertyDecideBeforeAttempt(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := config(t)
		in := Input{
			Point:   BeforeAttempt,
			Attempt: rapid.IntRange(0, 12).Draw(t, "attempt"),
			Now:     t0,
			Pace: Verdict{
				At:      t0.Add(duration(time.Hour).Draw(t, "at")),
				Booked:  rapid.Bool().Draw(t, "booked"),
				By:      rapid.SampledFrom([]HoldKind{"", HeldHint, HeldWindow, HeldOverload, HeldCheck, HeldBlock}).Draw(t, "by"),
				Class:   QuotaExhausted,
				Reason:  "quota_exhausted: blocked",
				Latency: duration(10*time.Second).Draw(t, "latency"),
			},
		}
		if in.Attempt > 0 {
			in.Class = rapid.SampledFrom(Classes).Draw(t, "class")
		}
		if rapid.Bool().Draw(t, "deadline") {
			in.Deadline = t0.Add(time.Duration(rapid.Int64Range(int64(-time.Hour), int64(3*time.Hour)).Draw(t, "left")))
		}
		if rapid.Bool().Draw(t, "ended") {
			in.Ended = context.Canceled
		}
		d := cfg.Decide(in)
		switch {
		case d.Action != Wait && d.Action != GiveUp:
			t.Fatalf("action %s before an attempt", d.Action)
		case in.Ended != nil && (d.Action != GiveUp || d.Class != Canceled):
			t.Fatalf("%s %s after the context ended", d.Action, d.Class)
		case in.Pace.By == HeldBlock && !in.Pace.Booked && d.Action != GiveUp:
			t.Fatal("a blocked call not booked as the probe went on")
		case d.Action == GiveUp && (d.Delay != 0 || !strings.HasPrefix(d.Reason, string(d.Class)) || d.Class == ""):
			t.Fatalf("give-up with delay %v, class %q, reason %q", d.Delay, d.Class, d.Reason)
		case d.Action == Wait && !in.Deadline.IsZero() && in.Pace.At.Add(max(cfg.MinAttemptTime, in.Pace.Latency)).After(in.Deadline):
			t.Fatal("waits for a time too late for an attempt to finish")
		case d.Action == Wait && d.Delay != in.Pace.At.Sub(in.Now):
			t.Fatalf("waits %v, want the pacer's %v", d.Delay, in.Pace.At.Sub(in.Now))
		}
	})
}

func TestPropertyBook(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		instant := func(label string) time.Time {
			return t0.Add(time.Duration(rapid.Int64Range(0, int64(10*time.Minute)).Draw(t, label)))
		}
		var s, cred PaceState
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for range steps {
			if rapid.Bool().Draw(t, "observe") {
				o := Observation{
					Now:   instant("now"),
					Sent:  instant("sent"),
					Class: rapid.SampledFrom([]Class{"", Overloaded, RateLimited, ServerError, Canceled, QuotaExhausted}).Draw(t, "class"),
				}
				if rapid.Bool().Draw(t, "hold") {
					o.Hold = Hold{
						By:    rapid.SampledFrom([]HoldKind{HeldHint, HeldCheck, HeldOverload, HeldBlock}).Draw(t, "hold kind"),
						For:   duration(time.Hour).Draw(t, "hold for"),
						Scope: rapid.SampledFrom([]Scope{ScopeLimit, ScopeCredential}).Draw(t, "scope"),
						Every: duration(time.Minute).Draw(t, "every"),
					}
				}
				if rapid.Bool().Draw(t, "limits") {
					limit := rapid.Int64Range(0, 1_000_000).Draw(t, "limit")
					o.Limits = Limits{{
						Reset:     rapid.SampledFrom([]Source{SourceResetRequests, SourceResetTokens}).Draw(t, "window"),
						Limit:     limit,
						Remaining: rapid.Int64Range(-1, limit).Draw(t, "remaining"),
					}}
					o.Limits[0].Tokens = o.Limits[0].Reset == SourceResetTokens
				}
				s.Observe(&cred, o)
				continue
			}
			a := Ask{Now: instant("now"), ProbeTimeout: duration(time.Minute).Draw(t, "probe timeout")}
			if rapid.Bool().Draw(t, "deadline") {
				a.Deadline = instant("deadline")
			}
			a.Cost = Cost{Requests: rapid.Int64Range(0, 3).Draw(t, "requests")}
			if rapid.Bool().Draw(t, "tokens") {
				a.Cost.Tokens = rapid.Int64Range(0, math.MaxInt64).Draw(t, "token count")
			}
			hold := s.Hold
			blocked := s.Block != nil && (s.Block.Until.IsZero() || a.Now.Before(s.Block.Until)) && a.Now.Before(s.Block.Next)
			tats := make([]time.Time, len(s.Windows))
			for i, w := range s.Windows {
				tats[i] = w.TAT
			}
			bookings := len(s.Bookings)
			v := s.Book(&cred, a)
			if v.At.Before(a.Now) && v.By != HeldBlock {
				t.Fatalf("Book(%v) = %v: before now", a.Now.Sub(t0), v.At.Sub(t0))
			}
			if v.Booked && v.At.Before(hold) {
				t.Fatalf("Book(%v) = %v: before the hold %v", a.Now.Sub(t0), v.At.Sub(t0), hold.Sub(t0))
			}
			if v.Booked && !a.Deadline.IsZero() && v.At.After(a.Deadline) {
				t.Fatalf("booked at %v, after the deadline %v", v.At.Sub(t0), a.Deadline.Sub(t0))
			}
			if v.Booked && blocked && !v.Probe {
				t.Fatal("booked a call to a blocked limit that is not its probe")
			}
			if !v.Booked && len(s.Bookings) != bookings {
				t.Fatal("a refused Book booked")
			}
			for i := range tats {
				if s.Windows[i].TAT.Before(tats[i]) {
					t.Fatalf("Book moved window %d's TAT back from %v to %v", i, tats[i].Sub(t0), s.Windows[i].TAT.Sub(t0))
				}
			}
		}
	})
}
