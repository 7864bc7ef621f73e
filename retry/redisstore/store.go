package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autopack/dynretry/retry"
	"github.com/redis/go-redis/v9"
)

// Options configure a Store. The zero value takes every default.
type Options struct {
	// Prefix begins every key the store writes (default "dynretry:"). It
	// must not contain "{" or "}": the keys' hash tag is the store's.
	Prefix string
	// Timeout bounds each round trip to Redis (default 50ms). A round trip
	// that takes longer fails: the store answers from local state and opens
	// its breaker.
	Timeout time.Duration
	// Logger receives the breaker's transitions (Warn when the store turns
	// to local state, Info when it resumes); nil means slog.Default().
	Logger *slog.Logger
}

// DefaultPrefix and DefaultTimeout are the defaults of Options.
const (
	DefaultPrefix  = "dynretry:"
	DefaultTimeout = 50 * time.Millisecond
)

// The store's other constants.
const (
	// idleTTL is how long a state outlives the last instant it names (a
	// hold, a window refilled, a block's end): a limit nobody calls is
	// forgotten that long after its state became idle, as MemoryStore
	// forgets idle states.
	idleTTL = 10 * time.Minute
	// maxTTL caps a state's time to live.
	maxTTL = 48 * time.Hour
	// flushDelay is how long observations wait for a booking to carry
	// them before they are written on their own.
	flushDelay = 100 * time.Millisecond
	// probeEvery is how often an open breaker checks the server.
	probeEvery = 250 * time.Millisecond
	// present is how long a process counts toward a credential's fleet
	// after its last heartbeat; heartbeat is how often it sends one.
	present   = time.Minute
	heartbeat = 5 * time.Second
	// groupIdle is how long a credential's worker waits for work before it
	// ends and its cache is dropped.
	groupIdle = time.Minute
)

// ttls are a store's times to live: the constants, but in tests.
type ttls struct {
	idle, max, present time.Duration
}

// ErrClosed is returned by Book and Observe after Close.
var ErrClosed = errors.New("redisstore: the store is closed")

// Store is a retry.Store on Redis, shared by every process that uses the
// same server and Prefix: see the package documentation. Its methods are
// safe for concurrent use.
type Store struct {
	client  redis.UniversalClient
	owned   bool // Close closes client
	prefix  string
	timeout time.Duration
	log     *slog.Logger
	id      string // the process's id in the credentials' fleets
	ttls    ttls

	clock clock
	down  atomic.Bool // the breaker: open while Redis is unavailable

	mu      sync.Mutex
	groups  map[retry.Key]*group // by credential scope
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup // workers and the prober

	stats counters
}

// New returns a Store on client. The client should bound each command by
// its context's deadline (ContextTimeoutEnabled) and not retry on its own
// (MaxRetries −1), as Open's does: otherwise a slow server costs callers
// more than Options.Timeout. Close does not close client.
func New(client redis.UniversalClient, o Options) (*Store, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: the key prefix %q contains a brace: the store's keys carry their own hash tag", o.Prefix)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("redisstore: negative timeout %v", o.Timeout)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	id := make([]byte, 8)
	rand.Read(id)
	return &Store{
		client: client, prefix: o.Prefix, timeout: o.Timeout, log: o.Logger, id: hex.EncodeToString(id),
		ttls:   ttls{idle: idleTTL, max: maxTTL, present: present},
		groups: make(map[retry.Key]*group), closing: make(chan struct{}),
	}, nil
}

// Open returns a Store on the Redis named by rawURL, with a client of its
// own that Close closes:
//
//	redis://[user:password@]host:port[/db][?options]     one server
//	rediss://…                                           the same over TLS
//	unix://[user:password@]/path/to/socket[?db=N]        a Unix socket
//	redis://host1:port?addr=host2:port&addr=host3:port   a Redis Cluster
//	redis://sentinel:port?master_name=NAME&addr=…        a Sentinel set
//
// The options are go-redis's (dial_timeout, pool_size, …). The client
// bounds each command by Options.Timeout and neither retries a command nor
// dials twice: the store's breaker does. Open does not contact the server; a URL it cannot parse is
// an error that never shows the URL's password.
func Open(rawURL string, o Options) (*Store, error) {
	client, err := newClient(rawURL)
	if err != nil {
		return nil, err
	}
	s, err := New(client, o)
	if err != nil {
		client.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// newClient builds the client of a URL (see Open).
func newClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message would repeat the URL, password included
		}
		return nil, fmt.Errorf("redisstore: invalid Redis URL: %v", err)
	}
	fail := func(err error) (redis.UniversalClient, error) {
		msg := err.Error()
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
		return nil, fmt.Errorf("redisstore: invalid Redis URL: %s", strings.TrimPrefix(msg, "redis: "))
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		fo, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return fail(err)
		}
		fo.ContextTimeoutEnabled, fo.MaxRetries, fo.DialerRetries = true, -1, 1
		return redis.NewFailoverClient(fo), nil
	case q.Has("addr"):
		co, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return fail(err)
		}
		co.ContextTimeoutEnabled, co.MaxRetries, co.DialerRetries = true, -1, 1
		return redis.NewClusterClient(co), nil
	}
	so, err := redis.ParseURL(rawURL)
	if err != nil {
		return fail(err)
	}
	so.ContextTimeoutEnabled, so.MaxRetries, so.DialerRetries = true, -1, 1
	return redis.NewClient(so), nil
}

// Book implements retry.Store: PaceState.Book on the states of key and its
// credential as the fleet shares them, in one round trip in the common
// case (see the package documentation). It never fails for Redis: when
// Redis is unavailable it answers from local state, and the verdict is
// Local. It fails only after Close.
func (s *Store) Book(_ context.Context, key retry.Key, a retry.Ask) (retry.Verdict, error) {
	g, err := s.group(key)
	if err != nil {
		return retry.Verdict{}, err
	}
	estimate := a.Tokens
	a.Tokens = nil
	if a.Cost.Tokens == 0 && estimate != nil && g.countsTokens(key.Model) {
		a.Cost.Tokens, estimate = estimate(), nil // outside the worker: it may read a large body
	}
	for {
		o := &op{model: key.Model, ask: &a, estimate: estimate != nil, shift: shift(s.clock.offset(a.Now)), done: make(chan answer, 1)}
		g.ops <- o
		r := <-o.done
		if !r.estimate {
			return r.v, nil
		}
		// The limit has a token window this process did not know of.
		a.Cost.Tokens, estimate = estimate(), nil
		if g, err = s.group(key); err != nil {
			return retry.Verdict{}, err
		}
	}
}

// Observe implements retry.Store: PaceState.Observe on the states of key
// and its credential. It returns at once: the observation reaches Redis
// with the next booking of the credential, or within flushDelay (20ms) on
// its own. It fails only after Close.
func (s *Store) Observe(_ context.Context, key retry.Key, ob retry.Observation) error {
	g, err := s.group(key)
	if err != nil {
		return err
	}
	g.ops <- &op{model: key.Model, obs: ob, shift: shift(s.clock.offset(ob.Now))}
	return nil
}

// group returns the worker of key's credential, starting it, with one more
// op announced (see group.pending).
func (s *Store) group(key retry.Key) (*group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	scope := key.CredentialScope()
	g := s.groups[scope]
	if g == nil {
		g = newGroup(s, scope)
		s.groups[scope] = g
		s.wg.Go(g.run)
	}
	g.pending.Add(1)
	return g, nil
}

// Degraded reports whether the store answers from local state because Redis
// is unavailable (its breaker is open).
func (s *Store) Degraded() bool { return s.down.Load() }

// Close writes what is pending, stops the store's goroutines and, for a
// Store from Open, closes its client. Book and Observe fail after it.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.wg.Wait()
	if s.owned {
		return s.client.Close()
	}
	return nil
}

// fail opens the breaker after a failed round trip, and starts the probe
// that closes it.
func (s *Store) fail(err error) {
	s.stats.failures.Add(1)
	if !s.down.CompareAndSwap(false, true) {
		return
	}
	s.log.Warn("dynretry: the shared pacing store (Redis) is unavailable: pacing on local state, a share of each limit, until it answers again",
		"error", redact(err))
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.wg.Go(s.probe)
	}
}

// probe checks the server every probeEvery until it answers (PING, then
// the script loaded again, since a restarted server has lost it), then
// closes the breaker: the workers resync from Redis's states at their next
// round trip.
func (s *Store) probe() {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(s.timeout, probeEvery/2))
		err := s.client.Ping(ctx).Err()
		if err == nil {
			err = casScript.Load(ctx, s.client).Err()
		}
		cancel()
		if err == nil {
			s.down.Store(false)
			s.log.Info("dynretry: the shared pacing store (Redis) answers again: pacing with the fleet")
			return
		}
	}
}

// redact returns err's message without anything that may be a secret: the
// store's errors name no key, but a server's error text is not ours.
func redact(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// Stats are counts of what a Store did since it was made.
type Stats struct {
	// RoundTrips counts compare-and-set scripts and clock readings sent to
	// Redis (the breaker's probes excluded).
	RoundTrips int64
	// Conflicts counts compare-and-sets refused because another process
	// had changed a state since this one read it.
	Conflicts int64
	// Bookings and Observations count the calls to Book and Observe
	// answered; Local counts the verdicts answered from local state.
	Bookings, Observations, Local int64
	// Failures counts round trips that failed or took too long.
	Failures int64
}

type counters struct {
	roundTrips, conflicts, bookings, observations, local, failures atomic.Int64
}

// Stats returns the store's counts.
func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{
		RoundTrips: c.roundTrips.Load(), Conflicts: c.conflicts.Load(), Bookings: c.bookings.Load(),
		Observations: c.observations.Load(), Local: c.local.Load(), Failures: c.failures.Load(),
	}
}
