package retry

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
	require.NoError(t, cfg.Validate(), "drew an invalid config")
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
		require.GreaterOrEqual(t, d.Delay, time.Duration(0), "negative delay in [%v, %v]", d.DelayMin, d.DelayMax)
		require.GreaterOrEqual(t, d.DelayMin, time.Duration(0), "negative delay min")
		if d.Action != Retry {
			require.Zero(t, d.Delay, "%s with a delay", d.Action)
			return
		}
		require.GreaterOrEqual(t, d.Delay, d.DelayMin, "delay below its range [%v, %v]", d.DelayMin, d.DelayMax)
		require.LessOrEqual(t, d.Delay, d.DelayMax, "delay above its range [%v, %v]", d.DelayMin, d.DelayMax)
		if d.Hold.By == HeldCheck {
			require.GreaterOrEqual(t, d.Delay, cfg.Probe.Soon, "delay before the check's probe")
			require.Greater(t, in.Hint.Wait, cfg.knownWindow(in), "hint checked though within the known window")
		} else if in.Hint.Valid() {
			require.GreaterOrEqual(t, d.Delay, in.Hint.Wait, "delay below the hint")
		}
		need := max(cfg.MinAttemptTime, in.Pace.Latency)
		if !in.Deadline.IsZero() {
			require.LessOrEqual(t, in.Now.Add(d.Delay+need), in.Deadline, "delay %v and an attempt of %v pass the deadline %v away", d.Delay, need, in.Deadline.Sub(in.Now))
		}
		require.NotEmpty(t, in.Class, "retried a success")
		require.NotEqual(t, Canceled, in.Class, "retried a canceled call")
		require.NotEqual(t, "false", in.ShouldRetry, "retried a %q despite x-should-retry false", in.Class)
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
		require.Contains(t, []Action{Wait, GiveUp}, d.Action, "action before an attempt")
		if in.Ended != nil {
			require.Equal(t, GiveUp, d.Action, "action after the context ended")
			require.Equal(t, Canceled, d.Class, "class after the context ended")
		}
		if in.Pace.By == HeldBlock && !in.Pace.Booked {
			require.Equal(t, GiveUp, d.Action, "a blocked call not booked as the probe went on")
		}
		switch d.Action {
		case GiveUp:
			require.Zero(t, d.Delay, "give-up with a delay")
			require.NotEmpty(t, d.Class, "give-up without a class")
			require.True(t, strings.HasPrefix(d.Reason, string(d.Class)), "give-up reason %q, want it to start with the class %q", d.Reason, d.Class)
		case Wait:
			if !in.Deadline.IsZero() {
				require.LessOrEqual(t, in.Pace.At.Add(max(cfg.MinAttemptTime, in.Pace.Latency)), in.Deadline, "waits for a time too late for an attempt to finish")
			}
			require.Equal(t, in.Pace.At.Sub(in.Now), d.Delay, "wait, want the pacer's")
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
			if v.By != HeldBlock {
				require.GreaterOrEqual(t, v.At, a.Now, "Book(t0+%v) = t0+%v: before now", a.Now.Sub(t0), v.At.Sub(t0))
			}
			if v.Booked {
				require.GreaterOrEqual(t, v.At, hold, "Book(t0+%v) = t0+%v: before the hold t0+%v", a.Now.Sub(t0), v.At.Sub(t0), hold.Sub(t0))
				if !a.Deadline.IsZero() {
					require.LessOrEqual(t, v.At, a.Deadline, "booked at t0+%v, after the deadline t0+%v", v.At.Sub(t0), a.Deadline.Sub(t0))
				}
				if blocked {
					require.True(t, v.Probe, "booked a call to a blocked limit that is not its probe")
				}
			} else {
				require.Len(t, s.Bookings, bookings, "a refused Book booked")
			}
			for i := range tats {
				require.GreaterOrEqual(t, s.Windows[i].TAT, tats[i], "Book moved window %d's TAT back from t0+%v to t0+%v", i, tats[i].Sub(t0), s.Windows[i].TAT.Sub(t0))
			}
		}
	})
}
