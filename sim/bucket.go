package sim

import (
	"math"
	"time"
)

// dimension names one rate limit of a (credential, model) pair.
type dimension int

const (
	dimRequests     dimension = iota // Config.RPM
	dimTokens                        // Config.TPM (OpenAI, Gemini)
	dimInputTokens                   // Config.ITPM (Anthropic)
	dimOutputTokens                  // Config.OTPM (Anthropic)
	numDims
)

// slack is how much early refill the buckets tolerate: a request that would
// fit within this much time counts as fitting. It absorbs floating-point
// error so that a client sleeping exactly the stated wait is admitted.
const slack = time.Microsecond

// schedule scales per-minute limits into bucket rates and capacities over
// time, following Config.Capacity and Config.Burst.
type schedule struct {
	start time.Time
	burst float64
	steps []Step
}

// factor returns the capacity factor in effect at t.
func (s schedule) factor(t time.Time) float64 {
	f := 1.0
	for _, st := range s.steps {
		if s.start.Add(st.At).After(t) {
			break
		}
		f = st.Factor
	}
	return f
}

// next returns the first step boundary strictly after t.
func (s schedule) next(t time.Time) (time.Time, bool) {
	for _, st := range s.steps {
		if at := s.start.Add(st.At); at.After(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

// perMinute returns limit scaled by the factor in effect at t.
func (s schedule) perMinute(limit int, t time.Time) float64 {
	return float64(limit) * s.factor(t)
}

// rate returns the refill rate in units per second at t.
func (s schedule) rate(limit int, t time.Time) float64 {
	return s.perMinute(limit, t) / 60
}

// capacity returns the bucket capacity in units at t.
func (s schedule) capacity(limit int, t time.Time) float64 {
	return s.perMinute(limit, t) * s.burst
}

// bucket is a token bucket for one dimension of one (credential, model) pair.
// It refills lazily: advance brings it up to date from the elapsed time.
type bucket struct {
	level float64   // units available at last
	last  time.Time // when level was last brought up to date
}

// newBucket returns a full bucket at now.
func newBucket(s schedule, limit int, now time.Time) bucket {
	return bucket{level: s.capacity(limit, now), last: now}
}

// advance refills b from b.last to now, segment by segment between capacity
// steps, never above the capacity in effect. A step down shrinks the level
// to the new capacity.
func (b *bucket) advance(s schedule, limit int, now time.Time) {
	for b.last.Before(now) {
		end := now
		if n, ok := s.next(b.last); ok && n.Before(now) {
			end = n
		}
		b.level = min(b.level+s.rate(limit, b.last)*end.Sub(b.last).Seconds(), s.capacity(limit, b.last))
		b.last = end
	}
	b.level = min(b.level, s.capacity(limit, now))
}

// tolerance returns the units refilled during slack at now.
func (b *bucket) tolerance(s schedule, limit int, now time.Time) float64 {
	return s.rate(limit, now) * slack.Seconds()
}

// fits reports whether b holds need units at now (b must be advanced).
func (b *bucket) fits(s schedule, limit int, need float64, now time.Time) bool {
	return b.level+b.tolerance(s, limit, now) >= need
}

// wait returns the time until b holds need units at the rate in effect at
// now, rounded up to a millisecond; zero if it holds them already. Future
// capacity steps are not anticipated.
func (b *bucket) wait(s schedule, limit int, need float64, now time.Time) time.Duration {
	if b.fits(s, limit, need, now) {
		return 0
	}
	return ceilMillis((need - b.level) / s.rate(limit, now))
}

// untilFull returns the time until b is full again at the rate in effect at
// now, rounded up to a millisecond.
func (b *bucket) untilFull(s schedule, limit int, now time.Time) time.Duration {
	return b.wait(s, limit, s.capacity(limit, now), now)
}

// remaining returns the whole units available at now.
func (b *bucket) remaining(s schedule, limit int, now time.Time) int {
	return int(math.Floor(b.level + b.tolerance(s, limit, now)))
}

// ceilMillis converts seconds to a duration rounded up to a whole
// millisecond, ignoring excess below slack.
func ceilMillis(seconds float64) time.Duration {
	ms := math.Ceil(seconds*1e3 - float64(slack)/float64(time.Millisecond))
	return time.Duration(max(ms, 0)) * time.Millisecond
}
