package bench

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing/synctest"
	"time"
)

// turns puts in a fixed order what the calls of a cell do at one virtual
// instant, so that a cell's result is a function of its seed.
//
// synctest fixes time, not which of the goroutines woken at one instant runs
// first: calls that wake together would book their places, reach the
// provider and draw their jitter in whatever order the scheduler picks, and
// that order moves the figures. So every step of a call that reads or
// changes what other calls share (the pacing store, the provider, the
// oracle, the Retrier's budget and jitter) first waits for its turn: a
// sequencer goroutine lets one waiting call go at a time, and only once
// every goroutine of the bubble is blocked (synctest.Wait), so that all the
// calls that will wait at this instant do. The call let go runs alone until
// it blocks again. What calls do between their turns touches only their own
// state.
//
// The order is a shuffle of the calls drawn from the seed and the instant,
// not the call index: a fixed order would make the same call first at
// every instant (the one that probes an outage every time, say), where the
// scheduler spreads such roles over the calls.
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
	go_  chan struct{} // closed when its turn comes
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
		go_:  make(chan struct{}),
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
	<-w.go_
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
			close(w.go_)
		}
	}
}
