package redisstore

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autopack/dynretry/internal/redistest"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/retry/storetest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quiet is a logger that drops everything.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// prefixes makes each test store's key prefix unique on a shared server.
var prefixes atomic.Int64

// newStore returns a store on srv with a prefix of its own, closed when t
// ends. Unless o says otherwise, its round trips may take a second: a
// test machine's stalls (the race detector, other builds) must not open the
// breaker of a test that is not about it.
func newStore(t *testing.T, srv *redistest.Server, o Options) *Store {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	if o.Prefix == "" {
		o.Prefix = "test" + strconv.FormatInt(prefixes.Add(1), 10) + ":"
	}
	if o.Logger == nil {
		o.Logger = quiet
	}
	s, err := Open(srv.URL(), o)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

// fixed returns a store that takes the askers' times as they are: the
// conformance suite asks at fixed instants.
func fixed(t *testing.T, srv *redistest.Server, o Options) *Store {
	s := newStore(t, srv, o)
	s.clock.fixed = true
	return s
}

// client returns a plain client of srv, closed when t ends.
func client(t *testing.T, srv *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// keys returns every key of srv with its time to live.
func keys(t *testing.T, c *redis.Client, pattern string) map[string]time.Duration {
	ctx := context.Background()
	out := map[string]time.Duration{}
	ks, err := c.Keys(ctx, pattern).Result()
	require.NoError(t, err)
	for _, k := range ks {
		out[k], err = c.PTTL(ctx, k).Result()
		require.NoError(t, err)
	}
	return out
}

func TestConformance(t *testing.T) { storetest.Run(t, harness(redistest.New(t))) }

// harness is the conformance suite's harness for stores on srv (one
// server or a cluster) that take the askers' times as they are.
func harness(srv *redistest.Server) storetest.Harness {
	return storetest.Harness{
		New: func(t *testing.T) retry.Store { return fixed(t, srv, Options{}) },
		Forgets: func(t *testing.T, s retry.Store, ks []retry.Key, idle time.Time) {
			// Redis forgets a state at its time to live: the idle time to
			// live past the last instant the state names (idle, at the
			// latest). The expiry itself: TestStatesExpire.
			st := s.(*Store)
			for _, k := range ks {
				ttl, err := st.client.PTTL(context.Background(), st.limitKey(k)).Result()
				require.NoError(t, err)
				assert.Positive(t, ttl, "%s has a time to live", k)
				assert.LessOrEqual(t, ttl, idleTTL+idle.Sub(storetest.At(0.2)), "%s outlives its idle time to live", k)
			}
		},
	}
}

// Many processes on one limit: each store is a process; they take turns,
// and every verdict is what one shared state gives (a MemoryStore).
func TestStoresShareOneState(t *testing.T) {
	srv := redistest.New(t)
	a := fixed(t, srv, Options{})
	b := fixed(t, srv, Options{Prefix: a.prefix})
	var ref retry.MemoryStore
	ctx := context.Background()
	key := retry.Key{Provider: retry.OpenAI, Model: "gpt-4o", Credential: "c1"}
	obs := retry.Observation{Now: storetest.T0, Sent: storetest.T0, Limits: retry.Limits{{Reset: retry.SourceResetRequests, Limit: 60, Remaining: 3, Until: 57 * time.Second}}}
	require.NoError(t, ref.Observe(ctx, key, obs))
	require.NoError(t, a.Observe(ctx, key, obs))
	for i := range 10 {
		s := []*Store{a, b}[i%2]
		ask := retry.Ask{Now: storetest.At(float64(i) / 10), Cost: retry.Cost{Requests: 1}}
		want, _ := ref.Book(ctx, key, ask)
		got, err := s.Book(ctx, key, ask)
		require.NoError(t, err)
		assert.True(t, want.At.Equal(got.At), "call %d: at %v, want %v", i, got.At.Sub(storetest.T0), want.At.Sub(storetest.T0))
		assert.False(t, got.Local)
	}
	// Each turn found the other process's booking: a conflict, then the
	// booking on the current state.
	assert.Positive(t, b.Stats().Conflicts)
	assert.Positive(t, a.Stats().Conflicts)
}

// Every key the store writes carries the credential's hash tag and a time
// to live; the states expire once idle.
func TestStatesExpire(t *testing.T) {
	srv := redistest.New(t)
	s := newStore(t, srv, Options{})
	s.ttls = ttls{idle: 300 * time.Millisecond, max: time.Second, present: 400 * time.Millisecond}
	c := client(t, srv)
	ctx := context.Background()
	for _, model := range []string{"gpt-4o", "gpt-4o-mini"} {
		key := retry.Key{Provider: retry.OpenAI, Model: model, Credential: "0123456789abcdef"}
		v, err := s.Book(ctx, key, retry.Ask{Now: time.Now(), Cost: retry.Cost{Requests: 1}})
		require.NoError(t, err)
		require.NoError(t, s.Observe(ctx, key, retry.Observation{Now: time.Now(), Sent: v.At}))
	}
	// The limits and the fleet's processes; the credential's state is
	// written only once it holds something (a block).
	require.Eventually(t, func() bool { return len(keys(t, c, s.prefix+"*")) == 3 }, 2*time.Second, 10*time.Millisecond)
	got := keys(t, c, s.prefix+"*")
	tag := s.prefix + "{openai/0123456789abcdef}:"
	for _, k := range []string{tag + "m:gpt-4o", tag + "m:gpt-4o-mini", tag + "p"} {
		assert.Contains(t, got, k)
		assert.Positive(t, got[k], "%s has a time to live", k)
		assert.LessOrEqual(t, got[k], time.Second)
	}
	assert.Eventually(t, func() bool { return len(keys(t, c, s.prefix+"*")) == 0 }, 5*time.Second, 50*time.Millisecond, "idle states expire")
}

// A state's time to live runs to the last instant it names, plus the idle
// time to live, within the maximum.
func TestTTL(t *testing.T) {
	l := ttls{idle: 10 * time.Minute, max: 48 * time.Hour}
	now := storetest.T0
	assert.Equal(t, 10*time.Minute, l.of(&retry.PaceState{}, now))
	assert.Equal(t, 10*time.Minute, l.of(&retry.PaceState{Hold: storetest.At(-5)}, now), "a hold that ended")
	assert.Equal(t, 10*time.Minute+30*time.Second, l.of(&retry.PaceState{Hold: storetest.At(30)}, now))
	assert.Equal(t, 11*time.Minute, l.of(&retry.PaceState{Bookings: []retry.Booking{{At: now}}}, now), "a booking counts for a window")
	assert.Equal(t, 10*time.Minute+20*time.Second, l.of(&retry.PaceState{Windows: []retry.PaceWindow{{TAT: storetest.At(20)}}}, now))
	blocked := &retry.PaceState{Block: &retry.Block{Next: storetest.At(60), Every: time.Minute}}
	assert.Equal(t, 12*time.Minute, l.of(blocked, now), "a block lives past its next probe")
	blocked.Block.Until = storetest.At(5 * 3600)
	assert.Equal(t, 5*time.Hour+10*time.Minute, l.of(blocked, now))
	blocked.Block.Until = storetest.At(100 * 3600)
	assert.Equal(t, 48*time.Hour, l.of(blocked, now), "capped")
}

func TestNewRefusesABraceInThePrefix(t *testing.T) {
	c := redis.NewClient(&redis.Options{})
	defer c.Close()
	for _, p := range []string{"a{", "b}", "{x}"} {
		_, err := New(c, Options{Prefix: p})
		assert.ErrorContains(t, err, "brace")
	}
	_, err := New(c, Options{Timeout: -time.Second})
	assert.Error(t, err)
}

// A URL that cannot be used is refused without its password.
func TestOpenBadURL(t *testing.T) {
	for _, u := range []string{
		"http://user:hunter2secret@localhost:6379",
		"redis://user:hunter2secret@localhost:notaport",
		"redis://user:hunter2secret@localhost:6379/notadb",
		"redis://user:hunter2secret@localhost:6379?bogus=1",
		"redis://user:hunter2secret@host:1?addr=other:2&bogus=1",
		"redis://user:hunter2secret@host:1?master_name=m&bogus=1",
		"redis://user:hunter2secret@[::1",
		"::::",
	} {
		_, err := Open(u, Options{})
		require.Error(t, err, u)
		assert.NotContains(t, err.Error(), "hunter2secret", u)
		assert.True(t, strings.HasPrefix(err.Error(), "redisstore: invalid Redis URL"), err.Error())
	}
	for _, u := range []string{"redis://localhost:1", "rediss://h:2/3", "unix:///tmp/redis.sock", "redis://a:1?addr=b:2", "redis://a:1?master_name=m&addr=b:2"} {
		s, err := Open(u, Options{})
		require.NoError(t, err, u)
		require.NoError(t, s.Close())
	}
}

// After Close, Book and Observe fail; Close writes what is pending first.
func TestClose(t *testing.T) {
	srv := redistest.New(t)
	s, err := Open(srv.URL(), Options{Prefix: "close:", Logger: quiet, Timeout: time.Second})
	require.NoError(t, err)
	ctx := context.Background()
	key := retry.Key{Provider: retry.OpenAI, Model: "gpt-4o", Credential: "c1"}
	require.NoError(t, s.Observe(ctx, key, retry.Observation{Now: time.Now(), Sent: time.Now(), Class: retry.RateLimited, Hold: retry.Hold{By: retry.HeldHint, For: time.Minute}}))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "twice")
	_, err = s.Book(ctx, key, retry.Ask{Now: time.Now()})
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, s.Observe(ctx, key, retry.Observation{Now: time.Now()}), ErrClosed)

	// The hold was written on the way out: another process sees it.
	o := newStore(t, srv, Options{Prefix: "close:"})
	v, err := o.Book(ctx, key, retry.Ask{Now: time.Now(), Cost: retry.Cost{Requests: 1}})
	require.NoError(t, err)
	assert.Equal(t, retry.HeldHint, v.By)
	assert.Greater(t, time.Until(v.At), 50*time.Second)
}

// An observation no booking follows reaches Redis on its own: a failure at
// once, a success within the flush delay.
func TestObservationFlushedAlone(t *testing.T) {
	srv := redistest.New(t)
	a := newStore(t, srv, Options{})
	ctx := context.Background()
	c := client(t, srv)
	for _, o := range []retry.Observation{
		{Now: time.Now(), Sent: time.Now(), Class: retry.RateLimited, Hold: retry.Hold{By: retry.HeldHint, For: time.Minute}},
		{Now: time.Now(), Sent: time.Now(), Limits: retry.Limits{{Reset: retry.SourceResetRequests, Limit: 60, Remaining: 59, Until: time.Second}}},
	} {
		key := retry.Key{Provider: retry.OpenAI, Model: "model-" + string(o.Class), Credential: "c1"}
		require.NoError(t, a.Observe(ctx, key, o))
		require.Eventually(t, func() bool {
			n, _ := c.Exists(ctx, a.limitKey(key)).Result()
			return n == 1
		}, 2*time.Second, 5*time.Millisecond, "%s reaches Redis", key)
	}
	require.Eventually(t, func() bool { return a.Stats().Observations == 2 }, time.Second, time.Millisecond)
	assert.Zero(t, a.Stats().Bookings)
}
