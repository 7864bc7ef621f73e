package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/autopack/dynretry/internal/redistest"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/retry/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var key = retry.Key{Provider: retry.OpenAI, Model: "gpt-4o", Credential: "c1"}

// window60 is a response's window of 60 requests a minute, with none left.
func window60(now, sent time.Time) retry.Observation {
	return retry.Observation{Now: now, Sent: sent, Limits: retry.Limits{{Reset: retry.SourceResetRequests, Limit: 60, Remaining: 0, Until: time.Minute}}}
}

func bookNow(t *testing.T, s *Store) retry.Verdict {
	t.Helper()
	v, err := s.Book(context.Background(), key, retry.Ask{Now: time.Now(), Cost: retry.Cost{Requests: 1}, ProbeTimeout: time.Minute})
	require.NoError(t, err)
	return v
}

// A paused server (SIGSTOP) costs one round trip's timeout, once: then the
// store answers from local state without asking it, until a probe finds
// it back.
func TestPausedServer(t *testing.T) {
	srv := redistest.New(t)
	s := newStore(t, srv, Options{Timeout: 200 * time.Millisecond})
	require.False(t, bookNow(t, s).Local)
	require.False(t, s.Degraded())

	require.NoError(t, srv.Pause())
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	v := bookNow(t, s)
	assert.True(t, v.Local, "answered from local state")
	assert.True(t, v.Booked)
	assert.True(t, s.Degraded())
	st := s.Stats()
	assert.Equal(t, int64(1), st.Failures)
	for range 100 {
		require.True(t, bookNow(t, s).Local)
	}
	after := s.Stats()
	assert.Equal(t, st.RoundTrips, after.RoundTrips, "no round trip while the breaker is open")
	assert.Equal(t, st.Failures, after.Failures)
	assert.Equal(t, int64(101), after.Local-st.Local+1)

	require.NoError(t, srv.Resume())
	resumed = true
	require.Eventually(t, func() bool { return !s.Degraded() }, 5*time.Second, 10*time.Millisecond, "the probe closes the breaker")
	assert.False(t, bookNow(t, s).Local, "shared again")
}

// A killed server is noticed at once (connection refused); a restarted one,
// empty and without the script, is found by the probe, and what this
// process knew is written back: another process sees the credential's
// block that Redis lost.
func TestKilledAndRestartedServer(t *testing.T) {
	srv := redistest.New(t)
	a := newStore(t, srv, Options{})
	b := newStore(t, srv, Options{Prefix: a.prefix})
	ctx := context.Background()
	now := time.Now()
	block := retry.Observation{Now: now, Sent: now, Class: retry.QuotaExhausted,
		Hold: retry.Hold{By: retry.HeldBlock, Scope: retry.ScopeCredential, Class: retry.QuotaExhausted, Reason: "quota_exhausted: billing", Every: time.Hour}}
	require.NoError(t, a.Observe(ctx, key, block))
	require.Eventually(t, func() bool { return bookNow(t, b).By == retry.HeldBlock }, time.Second, 5*time.Millisecond,
		"the other process sees the block")

	srv.Kill()
	v := bookNow(t, a)
	assert.True(t, v.Local)
	assert.Equal(t, retry.HeldBlock, v.By, "the local state keeps what the fleet knew")
	assert.True(t, a.Degraded())

	require.NoError(t, srv.Restart())
	require.Eventually(t, func() bool { return !a.Degraded() }, 5*time.Second, 10*time.Millisecond)
	v = bookNow(t, a)
	assert.False(t, v.Local)
	assert.Equal(t, retry.HeldBlock, v.By)

	c := newStore(t, srv, Options{Prefix: a.prefix})
	v = bookNow(t, c)
	assert.False(t, v.Local)
	assert.Equal(t, retry.HeldBlock, v.By, "a new process finds the block Redis had lost")
}

// While Redis is down, a process paces on its share of each limit: the
// windows refill at 1/(1.25·N) of their rate, N the processes of the
// credential seen last; the provider's counts, the fleet's, do not reset
// the share.
func TestLocalShare(t *testing.T) {
	srv := redistest.New(t)
	s := [3]*Store{}
	for i := range s {
		s[i] = newStore(t, srv, Options{Prefix: "share:"})
		s[i].clock.fixed = true
	}
	ctx := context.Background()
	for _, st := range []*Store{s[1], s[2], s[2], s[0]} { // each sends its heartbeat; s[0] last counts 3
		_, err := st.Book(ctx, key, retry.Ask{Now: storetest.T0, Cost: retry.Cost{Requests: 1}})
		require.NoError(t, err)
	}
	require.NoError(t, s[0].Observe(ctx, key, window60(storetest.T0, storetest.At(-1))))
	v, err := s[0].Book(ctx, key, retry.Ask{Now: storetest.T0, Cost: retry.Cost{Requests: 1}})
	require.NoError(t, err)
	require.False(t, v.Local)
	require.True(t, v.At.Equal(storetest.At(5)), "after the 4 calls booked: %v", v.At.Sub(storetest.T0))

	srv.Kill()
	var last time.Time
	for i := range 3 {
		v, err := s[0].Book(ctx, key, retry.Ask{Now: storetest.T0, Cost: retry.Cost{Requests: 1}})
		require.NoError(t, err)
		require.True(t, v.Local)
		if i > 0 {
			assert.Equal(t, 3750*time.Millisecond, v.At.Sub(last), "one call a second, over 1.25 × 3")
		}
		last = v.At
	}
	// A response saying the window is full (the fleet's count) does not
	// give the process the whole of it: the line goes on at its share.
	full := retry.Observation{Now: storetest.At(1), Sent: storetest.At(1), Limits: retry.Limits{{Reset: retry.SourceResetRequests, Limit: 60, Remaining: 60, Until: 0}}}
	require.NoError(t, s[0].Observe(ctx, key, full))
	v1, _ := s[0].Book(ctx, key, retry.Ask{Now: storetest.At(1), Cost: retry.Cost{Requests: 1}})
	assert.Equal(t, 3750*time.Millisecond, v1.At.Sub(last))
}

// The store works against a Redis Cluster: every key of a credential is in
// one slot (no CROSSSLOT).
func TestCluster(t *testing.T) {
	srv := redistest.NewCluster(t)
	storetest.Run(t, harness(srv))
	s := newStore(t, srv, Options{})
	assert.False(t, bookNow(t, s).Local)
	assert.Zero(t, s.Stats().Failures)
}
