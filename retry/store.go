package retry

import (
	"context"
	"sync"
	"time"
)

// A Store keeps the PaceState of every limit, and of every credential (the
// scope of a block that names the credential, see Key.CredentialScope).
// Implementations must be safe for concurrent use.
//
// Each method is one atomic step on two states: the limit's and its
// credential's. A store shared by processes keeps the states where it can
// run that step in one place and one round trip (for Redis: a script over
// two keys that share a hash tag, the credential, so that a Cluster keeps
// them in one slot), reads every time relative to the Ask's or
// Observation's Now, and may use its own clock instead.
type Store interface {
	// Book answers a call asking to send to key's limit: PaceState.Book on
	// the states of key and of key.CredentialScope().
	Book(ctx context.Context, key Key, a Ask) (Verdict, error)
	// Observe folds what a response taught into the states of key and of
	// key.CredentialScope(): PaceState.Observe.
	Observe(ctx context.Context, key Key, o Observation) error
}

// MemoryStore is a Store in process memory. The zero value is ready to use.
//
// Its memory is bounded by the limits in use, not by every limit ever seen:
// whenever the number of states doubles since the last sweep (and is at
// least 1,024), it forgets the idle ones (PaceState.Idle at the latest time
// it was told), so keys that come and go — rotated API keys, arbitrary
// model names — are forgotten once their state has expired.
type MemoryStore struct {
	mu     sync.Mutex
	limits map[Key]*PaceState
	creds  map[Key]*PaceState
	now    time.Time // the latest time of an Ask or Observation
	swept  int       // the number of states after the last sweep
}

// minSweep is the fewest states a MemoryStore keeps before it sweeps.
const minSweep = 1024

// states returns the states of key and its credential, creating them.
// m.mu must be held.
func (m *MemoryStore) states(key Key, now time.Time) (limit, cred *PaceState) {
	if m.limits == nil {
		m.limits, m.creds = make(map[Key]*PaceState), make(map[Key]*PaceState)
	}
	m.now = later(m.now, now)
	limit = m.limits[key]
	if limit == nil {
		m.sweep()
		limit = new(PaceState)
		m.limits[key] = limit
	}
	ck := key.CredentialScope()
	cred = m.creds[ck]
	if cred == nil {
		cred = new(PaceState)
		m.creds[ck] = cred
	}
	return limit, cred
}

// sweep forgets idle states when their number doubled since the last sweep.
func (m *MemoryStore) sweep() {
	n := len(m.limits) + len(m.creds)
	if n < max(2*m.swept, minSweep) {
		return
	}
	m.limits, m.creds = m.keep(m.limits), m.keep(m.creds)
	m.swept = len(m.limits) + len(m.creds)
}

// keep returns a new map of the states in states that are not idle: a new
// map, since a Go map never gives back the memory of deleted entries.
func (m *MemoryStore) keep(states map[Key]*PaceState) map[Key]*PaceState {
	kept := make(map[Key]*PaceState)
	for k, s := range states {
		if !s.Idle(m.now) {
			kept[k] = s
		}
	}
	return kept
}

// Book implements Store. It never fails. When the limit has a token window
// and the call's token cost is unknown, it estimates it with a.Tokens
// outside its lock.
func (m *MemoryStore) Book(_ context.Context, key Key, a Ask) (Verdict, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, cred := m.states(key, a.Now)
	if a.Cost.Tokens == 0 && a.Tokens != nil && s.countsTokens() {
		m.mu.Unlock()
		a.Cost.Tokens = a.Tokens()
		m.mu.Lock()
		s, cred = m.states(key, a.Now) // they may have been swept meanwhile
	}
	return s.Book(cred, a), nil
}

// Observe implements Store. It never fails.
func (m *MemoryStore) Observe(_ context.Context, key Key, o Observation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, cred := m.states(key, o.Now)
	s.Observe(cred, o)
	return nil
}

// Len returns the number of states the store holds: limits and
// credentials.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.limits) + len(m.creds)
}
