package sim

import (
	"math"
	"time"
)

// key names the buckets of one (credential, model) pair.
type key struct{ credential, model string }

// dimState is the state of one limited dimension after a decision, as the
// rate-limit headers report it.
type dimState struct {
	dim       dimension
	limit     int           // per-minute limit in effect (after capacity steps)
	remaining int           // whole units left in the bucket
	reset     time.Duration // until the bucket is full again, rounded up to ms
}

// decision is the outcome of admit for one request.
type decision struct {
	now    time.Time
	reason Reason // "" when admitted
	dims   []dimState

	// Rejections.
	status    int       // overload status from the window; 0 for the default
	dim       dimension // the dimension that rejected (rate_limited, too_large)
	limit     int       // per-minute limit (rate_limited), capacity (too_large) or QuotaAfter (quota)
	used      int       // units in use in that dimension (rate_limited)
	requested int       // the request's cost in that dimension
	wait      time.Duration

	// blocked reports a rate-limit refusal of a blocked credential (see
	// Config.BlockAfter): its hints are truthful.
	blocked bool

	// Admitted requests.
	latency     time.Duration
	serverError bool
	cut         bool
}

// limitOf returns the configured per-minute limit of d; zero means unlimited.
func (c Config) limitOf(d dimension) int {
	switch d {
	case dimRequests:
		return c.RPM
	case dimTokens:
		return c.TPM
	case dimInputTokens:
		return c.ITPM
	case dimOutputTokens:
		return c.OTPM
	}
	return 0
}

// admit draws the request's faults, checks it against the overload windows,
// the quota and the rate limits of the dialect's dimensions, and charges it
// when it fits. It records the arrival and any rejection in the stats.
func (p *Provider) admit(d dialect, c *call) decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	dec := decision{now: now}
	f := p.draw(c)
	p.stats.received(c.credential)

	buckets := p.bucketsFor(key{c.credential, c.model}, d.dims(), now)
	switch {
	case f.reset:
		dec.reason = ReasonReset
	default:
		if w, ok := p.cfg.overload(now.Sub(p.sched.start)); ok {
			dec.reason, dec.status = ReasonOverloaded, w.Status
		} else if p.cfg.QuotaAfter > 0 && p.admitted[c.credential] >= p.cfg.QuotaAfter {
			dec.reason, dec.limit = ReasonQuota, p.cfg.QuotaAfter
		} else if until, ok := p.block(c.credential, now); ok {
			dec.reason, dec.blocked, dec.wait = ReasonRateLimited, true, until.Sub(now)
			dec.dim, dec.requested = dimRequests, 1
			dec.limit = int(math.Round(p.sched.perMinute(p.cfg.RPM, now)))
			dec.used = dec.limit
		} else {
			p.charge(&dec, d, c, buckets)
		}
	}
	for _, dim := range d.dims() {
		limit := p.cfg.limitOf(dim)
		if limit == 0 {
			continue
		}
		b := &buckets[dim]
		dec.dims = append(dec.dims, dimState{
			dim:       dim,
			limit:     int(math.Round(p.sched.perMinute(limit, now))),
			remaining: b.remaining(p.sched, limit, now),
			reset:     b.untilFull(p.sched, limit, now),
		})
	}

	if dec.reason != "" {
		p.stats.rejected(c.credential, dec.reason)
		return dec
	}
	p.admitted[c.credential]++
	p.stats.admitted(c.credential, now.Sub(p.sched.start))
	dec.latency = p.cfg.latency()
	if f.slow {
		dec.latency = p.cfg.slowLatency()
	}
	dec.serverError, dec.cut = f.serverError, f.cut
	return dec
}

// block returns when the credential's block ends, if it is blocked at now
// (see Config.BlockAfter); the block begins with the first request after
// BlockAfter were admitted.
func (p *Provider) block(credential string, now time.Time) (time.Time, bool) {
	if p.cfg.BlockAfter == 0 || p.admitted[credential] < p.cfg.BlockAfter {
		return time.Time{}, false
	}
	until, ok := p.blocked[credential]
	if !ok {
		until = now.Add(p.cfg.BlockFor)
		p.blocked[credential] = until
	}
	return until, now.Before(until)
}

// bucketsFor returns the buckets of k, creating full ones on first use, with
// the dimensions in dims advanced to now.
func (p *Provider) bucketsFor(k key, dims []dimension, now time.Time) *[numDims]bucket {
	bs := p.buckets[k]
	if bs == nil {
		bs = new([numDims]bucket)
		for d := range numDims {
			bs[d] = newBucket(p.sched, p.cfg.limitOf(d), now)
		}
		p.buckets[k] = bs
	}
	for _, d := range dims {
		if limit := p.cfg.limitOf(d); limit > 0 {
			bs[d].advance(p.sched, limit, now)
		}
	}
	return bs
}

// charge admits c when every limited dimension holds its cost, and charges
// them all; otherwise it sets dec.reason and charges nothing. A cost above a
// bucket's capacity is too large; otherwise the wait is the longest over the
// dimensions that are short.
func (p *Provider) charge(dec *decision, d dialect, c *call, buckets *[numDims]bucket) {
	now := dec.now
	for _, dim := range d.dims() {
		limit := p.cfg.limitOf(dim)
		if limit == 0 {
			continue
		}
		b, cost := &buckets[dim], c.cost(dim)
		capacity := p.sched.capacity(limit, now)
		if cost > capacity+b.tolerance(p.sched, limit, now) {
			dec.reason, dec.dim = ReasonTooLarge, dim
			dec.limit, dec.requested = int(math.Floor(capacity)), int(cost)
			dec.wait = 0
			return
		}
		if w := b.wait(p.sched, limit, cost, now); w > dec.wait {
			dec.reason, dec.dim, dec.wait = ReasonRateLimited, dim, w
			dec.limit = int(math.Round(p.sched.perMinute(limit, now)))
			dec.used = int(math.Round(capacity)) - b.remaining(p.sched, limit, now)
			dec.requested = int(cost)
		}
	}
	if dec.reason != "" {
		return
	}
	for _, dim := range d.dims() {
		if p.cfg.limitOf(dim) > 0 {
			buckets[dim].level -= c.cost(dim)
		}
	}
}

// failure describes the error response for dec.
func (dec decision) failure(c *call, mode HintMode) failure {
	return failure{
		reason:    dec.reason,
		status:    dec.status,
		model:     c.model,
		id:        c.id,
		now:       dec.now,
		dim:       dec.dim,
		limit:     dec.limit,
		used:      dec.used,
		requested: dec.requested,
		wait:      dec.wait,
		hint:      mode,
	}
}
