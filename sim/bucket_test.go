package sim

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestRPMBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 60, Latency: -1})
		var r result
		for i := range 60 {
			if r = chat(t, p, "hi", 0); r.status != 200 {
				t.Fatalf("request %d: status %d", i+1, r.status)
			}
		}
		wantHeaders(t, r.header,
			"x-ratelimit-limit-requests", "60",
			"x-ratelimit-remaining-requests", "0",
			"x-ratelimit-reset-requests", "1m0s",
		)

		r = chat(t, p, "hi", 0)
		if r.status != 429 {
			t.Fatalf("61st: status %d, want 429", r.status)
		}
		wantHeaders(t, r.header,
			"retry-after-ms", "1000",
			"retry-after", "1",
			"x-ratelimit-remaining-requests", "0",
			"x-ratelimit-reset-requests", "1m0s",
		)
		wantBody := `{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-sim on requests per min (RPM): ` +
			`Limit 60, Used 60, Requested 1. Please try again in 1s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
		if r.body != wantBody {
			t.Errorf("body = %s\nwant   %s", r.body, wantBody)
		}

		time.Sleep(time.Second)
		if r = chat(t, p, "hi", 0); r.status != 200 {
			t.Fatalf("after 1s: status %d, want 200", r.status)
		}
		wantHeaders(t, r.header, "x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "1m0s")

		time.Sleep(400 * time.Millisecond)
		r = chat(t, p, "hi", 0)
		wantHeaders(t, r.header, "retry-after-ms", "600", "retry-after", "1", "x-ratelimit-reset-requests", "59.6s")

		s := p.Stats()
		if s.Received != 63 || s.Admitted != 61 || s.Succeeded != 61 || s.Rejected[ReasonRateLimited] != 2 {
			t.Errorf("stats = %+v", s.Counts)
		}
		if got := s.AdmitTimes[len(s.AdmitTimes)-1]; got != time.Second {
			t.Errorf("last admission at %v, want 1s", got)
		}
	})
}

func TestTPMBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{TPM: 1000, Latency: -1})
		prompt := strings.Repeat("a", 400) // 100 tokens, +100 output: 200 per request
		for i := range 5 {
			if r := chat(t, p, prompt, 100); r.status != 200 {
				t.Fatalf("request %d: status %d", i+1, r.status)
			}
		}
		r := chat(t, p, prompt, 100)
		if r.status != 429 {
			t.Fatalf("6th: status %d, want 429", r.status)
		}
		// 200 tokens at 1000/60 per second: 12s.
		wantHeaders(t, r.header,
			"retry-after-ms", "12000",
			"retry-after", "12",
			"x-ratelimit-limit-tokens", "1000",
			"x-ratelimit-remaining-tokens", "0",
			"x-ratelimit-reset-tokens", "1m0s",
			"x-ratelimit-limit-requests", "",
		)
		if got := r.jsonField(t, "error.message"); got != "Rate limit reached for gpt-4o-mini in organization org-sim on tokens per min (TPM): Limit 1000, Used 1000, Requested 200. Please try again in 12s." {
			t.Errorf("message = %v", got)
		}
		if got := r.jsonField(t, "error.type"); got != "tokens" {
			t.Errorf("type = %v, want tokens", got)
		}

		// Too large: 1 + 2000 tokens never fit in 1000.
		time.Sleep(time.Minute)
		r = chat(t, p, "hi", 2000)
		if r.status != 429 {
			t.Fatalf("too large: status %d, want 429", r.status)
		}
		want := "Request too large for gpt-4o-mini in organization org-sim on tokens per min (TPM): Limit 1000, Requested 2001. " +
			"The input or output tokens must be reduced in order to run successfully."
		if got := r.jsonField(t, "error.message"); got != want {
			t.Errorf("message = %v\nwant %s", got, want)
		}
		wantHeaders(t, r.header, "x-ratelimit-remaining-tokens", "1000", "retry-after", "", "retry-after-ms", "")
		if s := p.Stats(); s.Rejected[ReasonTooLarge] != 1 {
			t.Errorf("too_large = %d", s.Rejected[ReasonTooLarge])
		}
	})
}

func TestBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 60, Burst: 0.1, Latency: -1})
		for i := range 6 {
			if r := chat(t, p, "hi", 0); r.status != 200 {
				t.Fatalf("request %d: status %d", i+1, r.status)
			}
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
			if got := send(c.key, c.model); got != c.want {
				t.Errorf("%s/%s: status %d, want %d", c.key, c.model, got, c.want)
			}
		}
		s := p.Stats()
		if got := s.ByCredential[CredentialID("k1")]; got.Received != 3 || got.Admitted != 2 || got.Rejected[ReasonRateLimited] != 1 {
			t.Errorf("k1 = %+v", got)
		}
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
		if b.level < c.level-1e-9 || b.level > c.level+1e-9 {
			t.Errorf("at %v: level %v, want %v", c.at, b.level, c.level)
		}
		if got := b.remaining(s, limit, now); got != c.remaining {
			t.Errorf("at %v: remaining %d, want %d", c.at, got, c.remaining)
		}
		if got := b.untilFull(s, limit, now); got != c.full {
			t.Errorf("at %v: until full %v, want %v", c.at, got, c.full)
		}
	}
	// A step down clamps the level to the new capacity.
	b = newBucket(s, limit, t0)
	b.advance(s, limit, t0.Add(10*time.Second))
	if b.level != 30 {
		t.Errorf("after step down: level %v, want 30", b.level)
	}
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
		if got := ceilMillis(c.seconds); got != c.want {
			t.Errorf("ceilMillis(%v) = %v, want %v", c.seconds, got, c.want)
		}
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
		if got := EstimateInputTokens(c.texts...); got != c.want {
			t.Errorf("EstimateInputTokens(%q) = %d, want %d", c.texts, got, c.want)
		}
	}
}
