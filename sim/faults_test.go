package sim

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServerError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 10, ErrorRate: 1})
		start := time.Now()
		r := chat(t, p, "hi", 0)
		require.Equal(t, 500, r.status, "status")
		assert.Equal(t, DefaultLatency, time.Since(start), "the 500 came after")
		want := `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`
		assert.Equal(t, want, r.body, "body")
		// Charged at admission.
		wantHeaders(t, r.header, "x-ratelimit-remaining-requests", "9")
		wantReply(t, "anthropic", message(t, p, "hi", 10), 500, "error.type", "api_error")
		wantReply(t, "gemini", generate(t, p, "hi", 0), 500, "error.status", "INTERNAL")
		s := p.Stats()
		assert.Equal(t, 3, s.Admitted, "admitted; stats %+v", s.Counts)
		assert.Zero(t, s.Succeeded, "succeeded; stats %+v", s.Counts)
		assert.Equal(t, 3, s.Rejected[ReasonServerError], "rejected server error; stats %+v", s.Counts)
	})
}

func TestOverloadWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{
			RPM:       10,
			Latency:   -1,
			Overloads: []Window{{Start: time.Second, End: 2 * time.Second}, {Start: 3 * time.Second, End: 4 * time.Second, Status: 503}},
		})
		require.Equal(t, 200, chat(t, p, "hi", 0).status, "before: status")
		time.Sleep(time.Second)
		r := chat(t, p, "hi", 0)
		wantReply(t, "openai", r, 503, "error.message", "The engine is currently overloaded, please try again later.")
		wantHeaders(t, r.header, "x-ratelimit-remaining-requests", "9", "retry-after", "") // not charged
		wantReply(t, "anthropic", message(t, p, "hi", 10), 529, "error.type", "overloaded_error")
		wantReply(t, "gemini", generate(t, p, "hi", 0), 503, "error.status", "UNAVAILABLE")
		time.Sleep(time.Second) // [2s, 3s): open
		assert.Equal(t, 200, message(t, p, "hi", 10).status, "between windows: status")
		time.Sleep(time.Second) // second window, status 503
		wantReply(t, "anthropic 503", message(t, p, "hi", 10), 503, "error.type", "overloaded_error")
		time.Sleep(time.Second)
		assert.Equal(t, 200, chat(t, p, "hi", 0).status, "after: status")
		s := p.Stats()
		assert.Equal(t, 4, s.Rejected[ReasonOverloaded], "rejected overloaded; stats %+v", s.Counts)
		assert.Equal(t, 3, s.Admitted, "admitted; stats %+v", s.Counts)
	})
}

func TestQuotaAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{QuotaAfter: 2, Latency: -1})
		for i := range 2 {
			require.Equal(t, 200, chat(t, p, "hi", 0).status, "request %d: status", i+1)
		}
		r := chat(t, p, "hi", 0)
		wantReply(t, "openai", r, 429, "error.code", "insufficient_quota", "error.type", "insufficient_quota")
		wantHeaders(t, r.header, "retry-after", "", "retry-after-ms", "")

		// Other credentials have their own quota.
		message(t, p, "hi", 10)
		message(t, p, "hi", 10)
		wantReply(t, "anthropic", message(t, p, "hi", 10), 429, "error.details.error_code", "enforced_spend_limit_reached", "error.type", "rate_limit_error")
		generate(t, p, "hi", 0)
		generate(t, p, "hi", 0)
		r = generate(t, p, "hi", 0)
		assert.Equal(t, 429, r.status, "gemini: status: %s", r.body)
		assert.Contains(t, r.body, `"quotaId":"GenerateRequestsPerDayPerProjectPerModel"`, "gemini: body")
		assert.NotContains(t, r.body, "RetryInfo", "gemini: body")
		s := p.Stats()
		assert.Equal(t, 3, s.Rejected[ReasonQuota], "rejected quota; stats %+v", s)
		assert.Equal(t, 1, s.ByCredential[CredentialID("sk-test")].Rejected[ReasonQuota], "sk-test rejected quota; stats %+v", s)
	})
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{Latency: time.Second, SlowRate: 1, SlowLatency: 30 * time.Second})
		start := time.Now()
		chat(t, p, "hi", 0)
		assert.Equal(t, 30*time.Second, time.Since(start), "slow request took")

		p = newProvider(t, Config{Latency: time.Second, SlowRate: 1})
		start = time.Now()
		chat(t, p, "hi", 0)
		assert.Equal(t, 10*time.Second, time.Since(start), "slow request took: want 10 × Latency")

		// A canceled request ends the handler's sleep.
		p = newProvider(t, Config{Latency: time.Minute})
		client := openAIClient(p)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		_, err := client.Chat.Completions.New(ctx, chatParams("hi"))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		synctest.Wait()
		assert.Equal(t, time.Second, time.Since(start), "canceled after")
		s := p.Stats()
		assert.Equal(t, 1, s.Rejected[ReasonCanceled], "rejected canceled; stats %+v", s.Counts)
		assert.Equal(t, 1, s.Admitted, "admitted; stats %+v", s.Counts)
	})
}

func TestReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 10, ResetRate: 1})
		client := openAIClient(p)
		_, err := client.Chat.Completions.New(context.Background(), chatParams("hi"))
		var opErr *net.OpError
		require.ErrorIs(t, err, syscall.ECONNRESET, "want a connection reset")
		require.ErrorAs(t, err, &opErr, "want a connection reset")
		aclient := anthropicClient(p)
		_, err = aclient.Messages.New(context.Background(), messageParams("hi", 10))
		require.ErrorIs(t, err, syscall.ECONNRESET, "anthropic: want a connection reset")
		s := p.Stats()
		assert.Equal(t, 2, s.Rejected[ReasonReset], "rejected reset; stats %+v", s.Counts)
		assert.Zero(t, s.Admitted, "admitted; stats %+v", s.Counts)
	})
}

func TestStreamCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{StreamErrorRate: 1})
		client := openAIClient(p)
		stream := client.Chat.Completions.NewStreaming(context.Background(), chatParams("hi"))
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		assert.ErrorIs(t, stream.Err(), io.ErrUnexpectedEOF, "openai stream")
		assert.Equal(t, strings.Join(replyPieces[:len(replyPieces)/2], ""), acc.Choices[0].Message.Content, "openai accumulated before the cut")

		aclient := anthropicClient(p)
		astream := aclient.Messages.NewStreaming(context.Background(), messageParams("hi", 10))
		var msg anthropic.Message
		for astream.Next() {
			require.NoError(t, msg.Accumulate(astream.Current()))
		}
		assert.ErrorIs(t, astream.Err(), io.ErrUnexpectedEOF, "anthropic stream")
		if assert.Len(t, msg.Content, 1, "anthropic accumulated") {
			assert.Equal(t, "ok, this is", msg.Content[0].Text, "anthropic accumulated")
		}

		// Non-streaming responses are not cut.
		_, err := client.Chat.Completions.New(context.Background(), chatParams("hi"))
		assert.NoError(t, err, "non-streaming")
		s := p.Stats()
		assert.Equal(t, 2, s.Rejected[ReasonStreamCut], "rejected stream cut; stats %+v", s.Counts)
		assert.Equal(t, 3, s.Admitted, "admitted; stats %+v", s.Counts)
		assert.Equal(t, 1, s.Succeeded, "succeeded; stats %+v", s.Counts)
	})
}

func TestCapacityStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{
			RPM:      60,
			Latency:  -1,
			Capacity: []Step{{At: 10 * time.Second, Factor: 0.5}, {At: time.Minute, Factor: 2}},
		})
		for range 60 {
			chat(t, p, "hi", 0)
		}
		// 10 refilled by the step; then limit 30, capacity 30, 0.5 per second.
		time.Sleep(10 * time.Second)
		r := chat(t, p, "hi", 0)
		wantHeaders(t, r.header,
			"x-ratelimit-limit-requests", "30",
			"x-ratelimit-remaining-requests", "9",
			"x-ratelimit-reset-requests", "42s",
		)
		for range 9 {
			chat(t, p, "hi", 0)
		}
		r = chat(t, p, "hi", 0)
		require.Equal(t, 429, r.status, "status")
		wantHeaders(t, r.header, "retry-after-ms", "2000")
		assert.Contains(t, r.jsonField(t, "error.message").(string), "Limit 30, Used 30,", "message")
		time.Sleep(time.Minute - 10*time.Second)
		r = chat(t, p, "hi", 0)
		wantHeaders(t, r.header, "x-ratelimit-limit-requests", "120", "x-ratelimit-remaining-requests", "24")
	})
}

// TestDeterministic checks that a seed fixes the fault schedule.
func TestDeterministic(t *testing.T) {
	statuses := func(seed uint64) []int {
		var out []int
		synctest.Test(t, func(t *testing.T) {
			p := newProvider(t, Config{Seed: seed, ErrorRate: 0.5, Latency: -1})
			for range 40 {
				out = append(out, chat(t, p, "hi", 0).status)
			}
		})
		return out
	}
	a, b, c := statuses(1), statuses(1), statuses(2)
	assert.Equal(t, a, b, "seed 1 twice")
	assert.NotEqual(t, a, c, "seeds 1 and 2 gave the same schedule")
	errs := 0
	for _, s := range a {
		if s == 500 {
			errs++
		}
	}
	assert.GreaterOrEqual(t, errs, 10, "of 40 failed at ErrorRate 0.5")
	assert.LessOrEqual(t, errs, 30, "of 40 failed at ErrorRate 0.5")
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"negative RPM":    {RPM: -1},
		"rate above 1":    {ErrorRate: 1.5},
		"unknown hint":    {HintMode: "maybe"},
		"empty window":    {Overloads: []Window{{Start: time.Second, End: time.Second}}},
		"window status":   {Overloads: []Window{{End: time.Second, Status: 200}}},
		"zero factor":     {Capacity: []Step{{At: time.Second}}},
		"unordered steps": {Capacity: []Step{{At: 2 * time.Second, Factor: 1}, {At: time.Second, Factor: 1}}},
		"negative quota":  {QuotaAfter: -1},
		"negative burst":  {Burst: -1},
		"negative slow":   {SlowLatency: -time.Second},
	} {
		_, err := New(cfg)
		assert.ErrorIs(t, err, ErrInvalidConfig, name)
	}
}

// TestNoRateHeaders: a provider behind a gateway that strips the rate-limit
// headers sends none, on successes and refusals alike; with HintOmit its
// 429 says nothing of when to come back.
func TestNoRateHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 1, TPM: 1_000_000, ITPM: 1_000_000, OTPM: 1_000_000, HintMode: HintOmit, NoRateHeaders: true, Latency: -1})
		ok, refused := chat(t, p, "hi", 0), chat(t, p, "hi", 0)
		require.Equal(t, 200, ok.status, "first status")
		require.Equal(t, 429, refused.status, "second status")
		for _, r := range []result{ok, refused, message(t, p, "hi", 10), message(t, p, "hi", 10)} {
			for k := range r.header {
				l := strings.ToLower(k)
				assert.NotContains(t, l, "ratelimit", "header %s sent: %v", k, r.header[k])
				assert.False(t, strings.HasPrefix(l, "retry-after"), "header %s sent: %v", k, r.header[k])
			}
		}
		assert.NotContains(t, refused.body, "try again", "the 429 states a wait")
	})
}

// TestBlockAfter: once BlockAfter requests were admitted, the credential is
// refused with a rate-limit 429 for BlockFor, its hints truthful whatever
// HintMode says, and admitted again after.
func TestBlockAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 600, BlockAfter: 2, BlockFor: time.Hour, HintMode: HintLieZero, Latency: -1})
		for range 2 {
			require.Equal(t, 200, chat(t, p, "hi", 0).status, "before the block: status")
		}
		r := chat(t, p, "hi", 0)
		require.Equal(t, 429, r.status, "blocked: status: %s", r.body)
		require.Equal(t, "3600", r.header.Get("retry-after"), "blocked: retry-after")
		require.Equal(t, "3600000", r.header.Get("retry-after-ms"), "blocked: retry-after-ms")
		require.Contains(t, r.body, "Please try again in 1h0m0s.", "blocked: body")
		require.Equal(t, "rate_limit_exceeded", r.jsonField(t, "error.code"), "blocked: error.code")
		time.Sleep(30 * time.Minute)
		r = chat(t, p, "hi", 0)
		assert.Equal(t, 429, r.status, "half way: status")
		assert.Equal(t, "1800", r.header.Get("retry-after"), "half way: retry-after")
		time.Sleep(30 * time.Minute)
		r = chat(t, p, "hi", 0)
		assert.Equal(t, 200, r.status, "after the block: status: %s", r.body)
		s := p.Stats()
		assert.Equal(t, 2, s.Rejected[ReasonRateLimited], "rejected rate limited; stats %+v", s.Counts)
		assert.Equal(t, 3, s.Admitted, "admitted; stats %+v", s.Counts)
	})
	_, err := New(Config{BlockAfter: 1})
	assert.ErrorIs(t, err, ErrInvalidConfig, "BlockAfter without BlockFor")
}

func TestTransit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 60, Burst: 1.0 / 60, Transit: 50 * time.Millisecond})
		start := time.Now()
		ok := chat(t, p, "hi", 0)
		require.Equal(t, 200, ok.status, "the first call fits the bucket of one")
		assert.Equal(t, 2*50*time.Millisecond+DefaultLatency, time.Since(start), "a reply takes the latency and the way there and back")
		// The second call arrives 300 ms after the first was admitted: the
		// bucket holds 0.3 of the request it needs, and the refusal takes
		// the way back.
		start = time.Now()
		r := chat(t, p, "hi", 0)
		require.Equal(t, 429, r.status, "status")
		assert.Equal(t, 2*50*time.Millisecond, time.Since(start), "a refusal takes the way there and back")
		// Its hint and headers are as of its arrival, 50 ms before they reach the client.
		wantHeaders(t, r.header, "retry-after-ms", "700", "x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "700ms")

		// A client that gives up before its request arrives is not counted.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		client := openAIClient(p)
		_, err := client.Chat.Completions.New(ctx, chatParams("hi"))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		time.Sleep(time.Second)
		s := p.Stats()
		assert.Equal(t, 2, s.Received, "received; stats %+v", s.Counts)
	})
}

// TestCallFaults: a request that names its call draws its faults from the
// seed, the call and the attempt, whatever else arrived before it: the
// same calls sent in opposite orders meet the same faults, attempt by
// attempt; another seed gives others.
func TestCallFaults(t *testing.T) {
	const calls, attempts = 20, 3
	statuses := func(seed uint64, reverse bool) map[string][]int {
		out := make(map[string][]int)
		synctest.Test(t, func(t *testing.T) {
			p := newProvider(t, Config{Seed: seed, ErrorRate: 0.5, Latency: -1})
			body := map[string]any{"model": "gpt-4o-mini", "messages": []map[string]any{{"role": "user", "content": "hi"}}}
			for range attempts {
				for i := range calls {
					if reverse {
						i = calls - 1 - i
					}
					name := fmt.Sprintf("call-%d", i)
					r := post(t, p, "/v1/chat/completions", body, "Authorization", "Bearer sk-test", CallHeader, name)
					out[name] = append(out[name], r.status)
				}
			}
		})
		return out
	}
	forward, backward, other := statuses(1, false), statuses(1, true), statuses(2, false)
	assert.Equal(t, forward, backward, "seed 1: the calls' faults depend on the order of arrival")
	assert.NotEqual(t, forward, other, "seeds 1 and 2 gave the calls the same faults")
	errs := 0
	for _, ss := range forward {
		require.Len(t, ss, attempts)
		for _, s := range ss {
			if s == 500 {
				errs++
			}
		}
	}
	assert.InDelta(t, calls*attempts/2, errs, 15, "server errors of %d attempts at ErrorRate 0.5", calls*attempts)
}

// TestTransitInOrder: requests that arrive at one instant are admitted in
// the order they were sent, not in the order the scheduler wakes them: of
// ten requests sent one after another at one instant into a bucket that
// holds one, the first one sent is admitted, every time.
func TestTransitInOrder(t *testing.T) {
	for round := range 20 {
		synctest.Test(t, func(t *testing.T) {
			p := newProvider(t, Config{RPM: 1, Latency: -1, Transit: 50 * time.Millisecond})
			status := make([]int, 10)
			var wg sync.WaitGroup
			for i := range status {
				wg.Go(func() { status[i] = chat(t, p, "hi", 0).status })
				synctest.Wait() // request i is in transit before i+1 is sent
			}
			wg.Wait()
			assert.Equal(t, 200, status[0], "round %d: the first request sent: %v", round, status)
			for i, s := range status[1:] {
				assert.Equal(t, 429, s, "round %d: request %d: %v", round, i+1, status)
			}
		})
	}
}
