package bench

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing/synctest"
	"time"
)

// turns makes a cell's result a function of its seed.
//
// synctest fixes time, not which of the goroutines woken at one virtual
// instant runs first. Calls that wake together would book their places
// with the pacer, reach the provider and draw their jitter in whatever
// order the scheduler picks, and that order moved the figures (outage-60s's
// makespan from 1.050 to 1.061 × the bound over a few runs). So a call waits
// for its turn before each step on what calls share: a booking or an
// observation in dynretry's store, a booking with the oracle, and the
// tracker's sending of an attempt and taking of its answer. A sequencer
// lets one waiting call go at a time, and only once every goroutine of the
// cell is blocked (synctest.Wait), so that every call that will wait at
// this instant is waiting. The call let go runs alone until it blocks
// again, its decision after an answer (retry budget, jitter) included;
// between turns a call touches only its own state. The provider does its
// part: it admits the requests it has in transit at one instant in the
// order they were sent, and draws each attempt's faults from its call and
// attempt number (sim.CallHeader).
//
// The order of the turns at an instant is a shuffle of the waiting calls
// drawn from the seed and the instant, not the call index: a fixed order
// would make the same call go first at every instant (and probe every
// outage, until it ran out of attempts), where the scheduler spreads such
// roles over the calls.
type turns struct {
	seed    uint64
	mu      sync.Mutex
	waiting map[int]waiter // by call index
	arrived chan struct{}  // wakes the sequencer; capacity 1
	done    chan struct{}
}

// A waiter is a call waiting for its turn.
type waiter struct {
	rank uint64        // its place in this instant's shuffle
	turn chan struct{} // closed when its turn comes
}

// startTurns starts the sequencer of a cell; stop ends it. Call it inside
// the cell's synctest bubble.
func startTurns(seed uint64) (t *turns, stop func()) {
	t = &turns{seed: seed, waiting: make(map[int]waiter), arrived: make(chan struct{}, 1), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(t.run)
	return t, func() { close(t.done); wg.Wait() }
}

// wait blocks until it is the turn of the call whose record ctx carries.
// A context without a record (none in the suite) goes at once.
func (t *turns) wait(ctx context.Context) {
	rec, _ := ctx.Value(recordKey{}).(*record)
	if t == nil || rec == nil {
		return
	}
	i := rec.req.Index
	w := waiter{
		rank: rand.NewPCG(t.seed, uint64(time.Now().UnixNano())^uint64(i)<<40).Uint64(),
		turn: make(chan struct{}),
	}
	t.mu.Lock()
	if _, dup := t.waiting[i]; dup {
		t.mu.Unlock()
		panic("bench: one call waits for two turns at once")
	}
	t.waiting[i] = w
	t.mu.Unlock()
	select {
	case t.arrived <- struct{}{}:
	default:
	}
	<-w.turn
}

// run lets the waiting calls go one at a time, lowest rank first (then
// lowest index), each once every other goroutine of the bubble is blocked.
func (t *turns) run() {
	for {
		select {
		case <-t.arrived:
		case <-t.done:
			return
		}
		for {
			synctest.Wait()
			t.mu.Lock()
			next, found := 0, false
			for i, w := range t.waiting {
				if n := t.waiting[next]; !found || w.rank < n.rank || w.rank == n.rank && i < next {
					next, found = i, true
				}
			}
			w := t.waiting[next]
			delete(t.waiting, next)
			t.mu.Unlock()
			if !found {
				break
			}
			close(w.turn)
		}
	}
}
