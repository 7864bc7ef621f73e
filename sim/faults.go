package sim

import (
	"context"
	"time"
)

// faults are the random draws for one request.
type faults struct {
	reset       bool // ResetRate
	slow        bool // SlowRate
	serverError bool // ErrorRate
	cut         bool // StreamErrorRate
}

// draw decides the faults of one request. It always consumes the same four
// numbers from the generator, whatever the request's fate, so one request's
// outcome does not shift the schedule of the next. p.mu must be held.
func (p *Provider) draw() faults {
	reset, slow, serverError, cut := p.rng.Float64(), p.rng.Float64(), p.rng.Float64(), p.rng.Float64()
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
