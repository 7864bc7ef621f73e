package sim

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// CallHeader is the request header that names the call a request is an
// attempt of. A request that carries it draws its faults from Seed, the
// call's name and the attempt's number (the requests naming that call the
// provider received before it, plus one), not from the shared stream: the
// n-th attempt of a call meets the same faults whatever other calls do,
// and whenever they arrive. Any name will do (the bench harness sends the
// workload's call index); the provider remembers every name it was sent.
const CallHeader = "X-Sim-Call"

// faults are the random draws for one request.
type faults struct {
	reset       bool // ResetRate
	slow        bool // SlowRate
	serverError bool // ErrorRate
	cut         bool // StreamErrorRate
}

// draw decides the faults of request c: from the call's own generator when
// c names its call (see CallHeader), else from the provider's stream. It
// always consumes four numbers, whatever the request's fate, so one
// request's outcome does not shift the draws of the next. p.mu must be held.
func (p *Provider) draw(c *call) faults {
	rng := p.rng
	if c.name != "" {
		p.attempts[c.name]++
		h := fnv.New64a()
		var n [16]byte
		binary.LittleEndian.PutUint64(n[:8], p.cfg.Seed)
		binary.LittleEndian.PutUint64(n[8:], uint64(p.attempts[c.name]))
		h.Write(n[:])
		h.Write([]byte(c.name))
		rng = rand.New(rand.NewPCG(h.Sum64(), p.cfg.Seed^0x9e3779b97f4a7c15))
	}
	reset, slow, serverError, cut := rng.Float64(), rng.Float64(), rng.Float64(), rng.Float64()
	return faults{
		reset:       reset < p.cfg.ResetRate,
		slow:        slow < p.cfg.SlowRate,
		serverError: serverError < p.cfg.ErrorRate,
		cut:         cut < p.cfg.StreamErrorRate,
	}
}

// sleep waits for d or until ctx is done, whichever comes first, and returns
// ctx.Err() in the second case.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
