package sim

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRPMBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 60, Latency: -1})
		var r result
		for i := range 60 {
			r = chat(t, p, "hi", 0)
			require.Equal(t, 200, r.status, "request %d: status", i+1)
		}
		wantHeaders(t, r.header,
			"x-ratelimit-limit-requests", "60",
			"x-ratelimit-remaining-requests", "0",
			"x-ratelimit-reset-requests", "1m0s",
		)

		r = chat(t, p, "hi", 0)
		require.Equal(t, 429, r.status, "61st: status")
		wantHeaders(t, r.header,
			"retry-after-ms", "1000",
			"retry-after", "1",
			"x-ratelimit-remaining-requests", "0",
			"x-ratelimit-reset-requests", "1m0s",
		)
		wantBody := `{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-sim on requests per min (RPM): ` +
			`Limit 60, Used 60, Requested 1. Please try again in 1s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
		assert.Equal(t, wantBody, r.body, "body")

		time.Sleep(time.Second)
		r = chat(t, p, "hi", 0)
		require.Equal(t, 200, r.status, "after 1s: status")
		wantHeaders(t, r.header, "x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "1m0s")

		time.Sleep(400 * time.Millisecond)
		r = chat(t, p, "hi", 0)
		wantHeaders(t, r.header, "retry-after-ms", "600", "retry-after", "1", "x-ratelimit-reset-requests", "59.6s")

		s := p.Stats()
		assert.Equal(t, 63, s.Received, "received; stats %+v", s.Counts)
		assert.Equal(t, 61, s.Admitted, "admitted; stats %+v", s.Counts)
		assert.Equal(t, 61, s.Succeeded, "succeeded; stats %+v", s.Counts)
		assert.Equal(t, 2, s.Rejected[ReasonRateLimited], "rejected rate limited; stats %+v", s.Counts)
		assert.Equal(t, time.Second, s.AdmitTimes[len(s.AdmitTimes)-1], "last admission")
	})
}

func TestTPMBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{TPM: 1000, Latency: -1})
		prompt := strings.Repeat("a", 400) // 100 tokens, +100 output: 200 per request
		for i := range 5 {
			require.Equal(t, 200, chat(t, p, prompt, 100).status, "request %d: status", i+1)
		}
		r := chat(t, p, prompt, 100)
		require.Equal(t, 429, r.status, "6th: status")
		// 200 tokens at 1000/60 per second: 12s.
		wantHeaders(t, r.header,
			"retry-after-ms", "12000",
			"retry-after", "12",
			"x-ratelimit-limit-tokens", "1000",
			"x-ratelimit-remaining-tokens", "0",
			"x-ratelimit-reset-tokens", "1m0s",
			"x-ratelimit-limit-requests", "",
		)
		assert.Equal(t, "Rate limit reached for gpt-4o-mini in organization org-sim on tokens per min (TPM): Limit 1000, Used 1000, Requested 200. Please try again in 12s.",
			r.jsonField(t, "error.message"), "message")
		assert.Equal(t, "tokens", r.jsonField(t, "error.type"), "type")

		// Too large: 1 + 2000 tokens never fit in 1000.
		time.Sleep(time.Minute)
		r = chat(t, p, "hi", 2000)
		require.Equal(t, 429, r.status, "too large: status")
		want := "Request too large for gpt-4o-mini in organization org-sim on tokens per min (TPM): Limit 1000, Requested 2001. " +
			"The input or output tokens must be reduced in order to run successfully."
		assert.Equal(t, want, r.jsonField(t, "error.message"), "message")
		wantHeaders(t, r.header, "x-ratelimit-remaining-tokens", "1000", "retry-after", "", "retry-after-ms", "")
		assert.Equal(t, 1, p.Stats().Rejected[ReasonTooLarge], "too_large")
	})
}

func TestBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 60, Burst: 0.1, Latency: -1})
		for i := range 6 {
			require.Equal(t, 200, chat(t, p, "hi", 0).status, "request %d: status", i+1)
		}
		r := chat(t, p, "hi", 0)
		wantHeaders(t, r.header, "retry-after-ms", "1000", "x-ratelimit-limit-requests", "60", "x-ratelimit-reset-requests", "6s")
	})
}

func TestBucketsPerCredentialAndModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 1, Latency: -1})
		send := func(key, model string) int {
			body := map[string]any{"model": model, "messages": []map[string]any{{"role": "user", "content": "hi"}}}
			return post(t, p, "/v1/chat/completions", body, "Authorization", "Bearer "+key).status
		}
		for _, c := range []struct {
			key, model string
			want       int
		}{
			{"k1", "m1", 200}, {"k1", "m1", 429}, {"k1", "m2", 200}, {"k2", "m1", 200}, {"k2", "m1", 429},
		} {
			assert.Equal(t, c.want, send(c.key, c.model), "%s/%s: status", c.key, c.model)
		}
		k1 := p.Stats().ByCredential[CredentialID("k1")]
		assert.Equal(t, 3, k1.Received, "k1 received: %+v", k1)
		assert.Equal(t, 2, k1.Admitted, "k1 admitted: %+v", k1)
		assert.Equal(t, 1, k1.Rejected[ReasonRateLimited], "k1 rejected rate limited: %+v", k1)
	})
}

// TestBucketAdvanceAcrossSteps checks the refill arithmetic at fixed instants.
func TestBucketAdvanceAcrossSteps(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	s := schedule{start: t0, burst: 1, steps: []Step{{At: 10 * time.Second, Factor: 0.5}, {At: 20 * time.Second, Factor: 2}}}
	const limit = 60 // 1 per second, capacity 60
	b := newBucket(s, limit, t0)
	b.level = 0
	for _, c := range []struct {
		at        time.Duration
		level     float64
		remaining int
		full      time.Duration
	}{
		{5 * time.Second, 5, 5, 55 * time.Second},            // 1/s
		{15 * time.Second, 12.5, 12, 35 * time.Second},       // 10 by the step, then 0.5/s; capacity 30
		{20 * time.Second, 15, 15, 52500 * time.Millisecond}, // capacity 120, 2/s
		{21 * time.Second, 17, 17, 51500 * time.Millisecond},
	} {
		now := t0.Add(c.at)
		b.advance(s, limit, now)
		assert.InDelta(t, c.level, b.level, 1e-9, "at %v: level", c.at)
		assert.Equal(t, c.remaining, b.remaining(s, limit, now), "at %v: remaining", c.at)
		assert.Equal(t, c.full, b.untilFull(s, limit, now), "at %v: until full", c.at)
	}
	// A step down clamps the level to the new capacity.
	b = newBucket(s, limit, t0)
	b.advance(s, limit, t0.Add(10*time.Second))
	assert.Equal(t, 30.0, b.level, "level after step down")
}

func TestWaitRounding(t *testing.T) {
	for _, c := range []struct {
		seconds float64
		want    time.Duration
	}{
		{1, time.Second},
		{1.0000000001, time.Second}, // within slack
		{1.0001, 1001 * time.Millisecond},
		{0.0004, time.Millisecond},
		{1.146, 1146 * time.Millisecond},
	} {
		assert.Equal(t, c.want, ceilMillis(c.seconds), "ceilMillis(%v)", c.seconds)
	}
}

func TestEstimateInputTokens(t *testing.T) {
	for _, c := range []struct {
		texts []string
		want  int
	}{
		{nil, 1}, {[]string{""}, 1}, {[]string{"abcd"}, 1}, {[]string{"abcde"}, 2},
		{[]string{"ab", "cd", "e"}, 2}, {[]string{"héllo"}, 2}, {[]string{strings.Repeat("x", 400)}, 100},
	} {
		assert.Equal(t, c.want, EstimateInputTokens(c.texts...), "EstimateInputTokens(%q)", c.texts)
	}
}
