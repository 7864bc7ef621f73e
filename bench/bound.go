package bench

import (
	"math"
	"slices"
	"time"

	"github.com/autopack/dynretry/sim"
)

// LowerBound returns the shortest possible makespan of reqs against a
// provider configured as c, whatever the policy: a lower bound, not an
// estimate.
//
// For each limited dimension d (requests, tokens, input or output tokens)
// with per-minute limit ℓ, the provider's bucket holds C(t) = ℓ·f(t)·Burst,
// refills at r(t) = ℓ·f(t)/60 per second (f is the capacity step in effect,
// 1 without steps) and starts full. The calls' total cost in d is D. Relax
// the calls into a fluid that the provider admits as soon as the bucket
// holds any: no policy admits more by any time T than
//
//	A(T) = C(0) + ∫₀ᵀ r(t) dt − lost(T)
//
// where lost(T) is refill that overflowed the capacity while nothing could
// be admitted (inside an overload window), or that a step down cut off. T_d
// is the first time outside every overload window with A(T_d) ≥ D. Then
//
//	bound = max( max_d T_d + L + τ, ⌈n / W⌉ · (L + 2τ) )
//
// where L is the response latency (the last admitted call still takes L to
// answer), τ the network's one-way delay (sim.Config.Transit: no call
// arrives before τ, so the fluid starts then, with a full bucket, and every
// answer takes τ back), n the number of calls and W the number of workers
// (W workers finish at most W calls per L + 2τ). Without steps and overloads T_d reduces to
// max(0, (D − C)/r). Server errors, slow responses and hints do not enter:
// they can only lengthen the makespan. With quota (or a block), only the
// calls that can succeed count: the quota's number of calls, the cheapest in each
// dimension. With arrivals spread (Workload.Every), the bound is also at
// least the last arrival plus L + 2τ.
func LowerBound(c sim.Config, w Workload, reqs []Request, quota bool) time.Duration {
	n := len(reqs)
	if quota && c.QuotaAfter > 0 {
		n = min(n, c.QuotaAfter)
	}
	if quota && c.BlockAfter > 0 {
		n = min(n, c.BlockAfter)
	}
	L, tau := latency(c), max(c.Transit, 0)
	s := scheduleOf(c)
	var bound time.Duration
	for _, d := range dims(c) {
		costs := make([]float64, len(reqs))
		for i, r := range reqs {
			costs[i] = d.cost(r)
		}
		slices.Sort(costs)
		demand := 0.0
		for _, x := range costs[:n] {
			demand += x
		}
		bound = max(bound, fluidTime(s, d.limit, demand, tau)+L+tau)
	}
	if W := w.workers(); W > 0 {
		bound = max(bound, time.Duration((n+W-1)/W)*(L+2*tau))
	}
	if len(reqs) > 0 && w.Every > 0 {
		bound = max(bound, reqs[len(reqs)-1].Arrival+L+2*tau) // the last call cannot start before it arrives
	}
	return bound
}

// fluidTime returns the first time, outside every overload window, by which
// a bucket of limit on schedule s can have admitted demand units, admitting
// greedily from the time from, when the bucket is full (the most any policy
// admits by any time).
func fluidTime(s schedule, limit int, demand float64, from time.Duration) time.Duration {
	const eps = 1e-9
	t := from
	level := s.capacity(limit, from)
	left := demand
	for range 10_000 {
		end, over := s.overloaded(t)
		if !over {
			admit := min(level, left)
			left -= admit
			level -= admit
			if left <= eps {
				return t
			}
		}
		next := time.Duration(math.MaxInt64)
		if n, ok := s.next(t); ok {
			next = n
		}
		if over {
			next = min(next, end)
		} else {
			for _, w := range s.overloads {
				if w.Start > t {
					next = min(next, w.Start)
				}
			}
		}
		r := s.rate(limit, t)
		if over {
			level = min(s.capacity(limit, t), level+r*(next-t).Seconds())
		} else {
			need := time.Duration(math.Ceil(left / r * float64(time.Second)))
			if t+need <= next {
				return t + need
			}
			left -= r * (next - t).Seconds()
		}
		t = next
		level = min(level, s.capacity(limit, t))
	}
	return t
}
