package redisstore

import (
	"sync"
	"time"
)

// clock relates the askers' clocks to the server's, so that every process
// reads and writes the shared states in the server's time (Redis TIME),
// whatever its own clock says.
//
// Two offsets make the translation: the server's clock minus the store's
// own (time.Now), measured from every reply as the server's TIME minus the
// midpoint of the round trip, so within half a round trip; and the store's
// clock minus the asker's (a Retrier may have its own, retry.WithClock),
// measured when the asker calls. Both are kept while new measures agree
// with them (within the round trip, at least 1 ms, for the first; within
// maxJitter for the second), so that a time translated there and back is
// the same instant: the pacer compares some instants for equality.
type clock struct {
	// fixed makes the store take the askers' times as they are, without
	// reading the server's clock: for tests in fixed instants.
	fixed bool

	mu    sync.Mutex
	known bool          // whether off was measured
	off   time.Duration // server − store
	skew  time.Duration // store − the last asker
}

// maxJitter is how far a new measure of an offset may differ from the
// offset kept before it replaces it.
const maxJitter = time.Millisecond

// offset returns d such that an instant t of an asker whose clock reads
// askNow now is the server's instant t+d.
func (c *clock) offset(askNow time.Time) time.Duration {
	if c.fixed {
		return 0
	}
	skew := time.Since(askNow)
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := skew - c.skew; d > maxJitter || d < -maxJitter {
		c.skew = skew
	}
	return c.off + c.skew
}

// measured reports whether the server's clock was read.
func (c *clock) measured() bool {
	if c.fixed {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.known
}

// sample takes a reading of the server's clock, server, got in a round
// trip from sent to received (store's clock).
func (c *clock) sample(sent, received, server time.Time) {
	if c.fixed {
		return
	}
	rtt := received.Sub(sent)
	off := server.Sub(sent.Add(rtt / 2))
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := off - c.off; !c.known || d > max(rtt, maxJitter) || d < -max(rtt, maxJitter) {
		c.off, c.known = off, true
	}
}

// A shift moves an Ask, a Verdict or an Observation between an asker's
// clock and the server's: by +d into the server's, by −d back. The zero
// time stays zero (it means "none").
type shift time.Duration

func (d shift) in(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(time.Duration(d)).Round(0)
}

func (d shift) out(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(-time.Duration(d))
}
