package bench

import (
	"math"
	"sync"
	"time"

	"github.com/autopack/dynretry/sim"
)

// oracle paces calls with exact knowledge of the provider: it keeps a copy
// of the provider's buckets, refilled with sim's arithmetic on the same
// schedule (capacity steps, overload windows) and charged with each call's
// exact cost, and books every call, first come first served, at the first
// instant all of its buckets hold its cost, sending it the network's delay
// earlier. It also knows the latency, so it drops a call whose reply could
// not arrive before its deadline, and the
// quota and the block, so it drops calls they would refuse. It is the physical
// limit a policy can approach, not a policy a client could run: no client
// knows the bucket's level or the outage's end.
type oracle struct {
	sched   schedule
	dims    []dim
	latency time.Duration
	transit time.Duration // the network's one-way delay
	quota   int
	start   time.Time

	mu      sync.Mutex
	buckets []bucket
	last    time.Duration // the latest booking, since start
	booked  int           // calls sent: the provider admits them all
}

func newOracle(c sim.Config, start time.Time) *oracle {
	quota := c.QuotaAfter
	if c.BlockAfter > 0 && (quota == 0 || c.BlockAfter < quota) {
		quota = c.BlockAfter // the scenarios' blocks outlast them
	}
	o := &oracle{sched: scheduleOf(c), dims: dims(c), latency: latency(c), transit: max(c.Transit, 0), quota: quota, start: start}
	o.buckets = make([]bucket, len(o.dims))
	for i, d := range o.dims {
		o.buckets[i] = bucket{level: o.sched.capacity(d.limit, 0)}
	}
	return o
}

// book returns when to send r and true, having charged the buckets; or
// false when the call cannot succeed: its reply would come after deadline,
// or the quota (or the block) is used up.
func (o *oracle) book(now time.Time, r Request, deadline time.Time) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.quota > 0 && o.booked >= o.quota {
		return time.Time{}, false
	}
	t := max(now.Sub(o.start)+o.transit, o.last) // when the call arrives
	var bs []bucket
	for range 100_000 {
		if end, over := o.sched.overloaded(t); over {
			t = end
			continue
		}
		bs = append(bs[:0], o.buckets...)
		var wait float64 // seconds
		for i, d := range o.dims {
			bs[i].advance(o.sched, d.limit, t)
			if need := d.cost(r); bs[i].level < need {
				wait = max(wait, (need-bs[i].level)/o.sched.rate(d.limit, t))
			}
		}
		if wait == 0 {
			break
		}
		// Round up to the microsecond: never earlier than the bucket fills.
		next := t + time.Duration(math.Ceil(wait*1e6))*time.Microsecond
		if n, ok := o.sched.next(t); ok && n < next {
			next = n // the rate changes there: look again
		}
		t = next
	}
	at := o.start.Add(t - o.transit)
	if !deadline.IsZero() && !at.Add(o.latency+2*o.transit).Before(deadline) {
		return time.Time{}, false
	}
	for i, d := range o.dims {
		bs[i].level -= d.cost(r)
	}
	copy(o.buckets, bs)
	o.last = t
	o.booked++
	return at, true
}
