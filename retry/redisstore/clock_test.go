package redisstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/autopack/dynretry/internal/redistest"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/sim"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two processes whose clocks disagree by minutes read and write the shared
// states in Redis's time: each is told its place in its own clock, and the
// places are one limit's.
func TestSkewedClocks(t *testing.T) {
	srv := redistest.New(t)
	a := newStore(t, srv, Options{})
	b := newStore(t, srv, Options{Prefix: a.prefix})
	skew := 7 * time.Minute
	ctx := context.Background()
	aNow := func() time.Time { return time.Now().Add(skew) }

	// a learns the window: 60 a minute, none left for a minute.
	now := aNow()
	require.NoError(t, a.Observe(ctx, key, window60(now, now)))
	require.Eventually(t, func() bool {
		v, err := b.Book(ctx, key, retry.Ask{Now: time.Now(), Deadline: time.Now().Add(-time.Second), Cost: retry.Cost{Requests: 1}}) // books nothing
		return err == nil && v.By == retry.HeldWindow
	}, time.Second, time.Millisecond, "b sees the window")

	// The window is full again a minute after a's observation; each call
	// then costs a second: call i goes i+1 seconds after the observation,
	// in either clock.
	base := map[*Store]time.Time{a: now, b: now.Add(-skew)}
	clock := map[*Store]func() time.Time{a: aNow, b: time.Now}
	for i := range 6 {
		s := []*Store{a, b}[i%2]
		v, err := s.Book(ctx, key, retry.Ask{Now: clock[s](), Cost: retry.Cost{Requests: 1}})
		require.NoError(t, err)
		require.True(t, v.Booked)
		assert.InDelta(t, float64(i+1), v.At.Sub(base[s]).Seconds(), 0.02, "call %d", i)
	}
}

// Two Retriers, one with its clock 7 minutes ahead, each with its own Redis
// store (two processes), send 40 calls to a simulated provider allowing 10
// a second: sharing Redis they pace as one client, with no more than a
// couple of refusals; each with a MemoryStore of its own they collide.
func TestRetriersWithSkewedClocksPaceAsOne(t *testing.T) {
	srv := redistest.New(t)
	shared := func(t *testing.T) [2]retry.Store {
		p := newStore(t, srv, Options{})
		return [2]retry.Store{p, newStore(t, srv, Options{Prefix: p.prefix})}
	}
	alone := func(*testing.T) [2]retry.Store { return [2]retry.Store{new(retry.MemoryStore), new(retry.MemoryStore)} }

	var mu sync.Mutex
	run := func(t *testing.T, stores [2]retry.Store) (refused, failed int) {
		p, err := sim.New(sim.Config{RPM: 600, Burst: 0.01, Latency: 20 * time.Millisecond})
		require.NoError(t, err)
		api := httptest.NewServer(p)
		defer api.Close()
		creds, err := retry.NewCredentials([]byte("the fleet's shared secret"))
		require.NoError(t, err)
		clocks := [2]func() time.Time{func() time.Time { return time.Now().Add(7 * time.Minute) }, time.Now}
		var clients [2]openai.Client
		for i := range 2 {
			r, err := retry.New(retry.Config{}, retry.WithStore(stores[i]), retry.WithClock(clocks[i]), retry.WithCredentials(creds))
			require.NoError(t, err)
			clients[i] = openai.NewClient(option.WithBaseURL(api.URL+"/v1"), option.WithAPIKey("sk-fleet-key"), option.WithMaxRetries(0),
				option.WithHTTPClient(&http.Client{Transport: &retry.Transport{Retrier: r}}))
		}
		params := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
		// No deadline: the skewed Retrier would read it in its own clock.
		ctx := context.Background()
		// One call teaches the limit's windows; then 40 at once.
		_, err = clients[0].Chat.Completions.New(ctx, params)
		require.NoError(t, err)
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				if _, err := clients[i%2].Chat.Completions.New(ctx, params); err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return p.Stats().Rejected[sim.ReasonRateLimited], failed
	}
	sharing, failed := run(t, shared(t))
	apart, _ := run(t, alone(t))
	t.Logf("refusals: %d sharing Redis, %d with a store each", sharing, apart)
	assert.Zero(t, failed, "sharing, every call succeeds")
	assert.LessOrEqual(t, sharing, 2, "one client")
	assert.Greater(t, apart, sharing+2, "two clients that do not know of each other collide")
}
