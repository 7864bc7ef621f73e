package sim

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
)

func TestServerError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 10, ErrorRate: 1})
		start := time.Now()
		r := chat(t, p, "hi", 0)
		if r.status != 500 {
			t.Fatalf("status %d, want 500", r.status)
		}
		if time.Since(start) != DefaultLatency {
			t.Errorf("500 after %v, want %v", time.Since(start), DefaultLatency)
		}
		want := `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`
		if r.body != want {
			t.Errorf("body = %s", r.body)
		}
		// Charged at admission.
		wantHeaders(t, r.header, "x-ratelimit-remaining-requests", "9")
		if r := message(t, p, "hi", 10); r.status != 500 || r.jsonField(t, "error.type") != "api_error" {
			t.Errorf("anthropic: %d %s", r.status, r.body)
		}
		if r := generate(t, p, "hi", 0); r.status != 500 || r.jsonField(t, "error.status") != "INTERNAL" {
			t.Errorf("gemini: %d %s", r.status, r.body)
		}
		s := p.Stats()
		if s.Admitted != 3 || s.Succeeded != 0 || s.Rejected[ReasonServerError] != 3 {
			t.Errorf("stats = %+v", s.Counts)
		}
	})
}

func TestOverloadWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{
			RPM:       10,
			Latency:   -1,
			Overloads: []Window{{Start: time.Second, End: 2 * time.Second}, {Start: 3 * time.Second, End: 4 * time.Second, Status: 503}},
		})
		if r := chat(t, p, "hi", 0); r.status != 200 {
			t.Fatalf("before: status %d", r.status)
		}
		time.Sleep(time.Second)
		r := chat(t, p, "hi", 0)
		if r.status != 503 || r.jsonField(t, "error.message") != "The engine is currently overloaded, please try again later." {
			t.Errorf("openai: %d %s", r.status, r.body)
		}
		wantHeaders(t, r.header, "x-ratelimit-remaining-requests", "9", "retry-after", "") // not charged
		if r := message(t, p, "hi", 10); r.status != 529 || r.jsonField(t, "error.type") != "overloaded_error" {
			t.Errorf("anthropic: %d %s", r.status, r.body)
		}
		if r := generate(t, p, "hi", 0); r.status != 503 || r.jsonField(t, "error.status") != "UNAVAILABLE" {
			t.Errorf("gemini: %d %s", r.status, r.body)
		}
		time.Sleep(time.Second) // [2s, 3s): open
		if r := message(t, p, "hi", 10); r.status != 200 {
			t.Errorf("between windows: %d", r.status)
		}
		time.Sleep(time.Second) // second window, status 503
		if r := message(t, p, "hi", 10); r.status != 503 || r.jsonField(t, "error.type") != "overloaded_error" {
			t.Errorf("anthropic 503: %d %s", r.status, r.body)
		}
		time.Sleep(time.Second)
		if r := chat(t, p, "hi", 0); r.status != 200 {
			t.Errorf("after: %d", r.status)
		}
		if s := p.Stats(); s.Rejected[ReasonOverloaded] != 4 || s.Admitted != 3 {
			t.Errorf("stats = %+v", s.Counts)
		}
	})
}

func TestQuotaAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{QuotaAfter: 2, Latency: -1})
		for i := range 2 {
			if r := chat(t, p, "hi", 0); r.status != 200 {
				t.Fatalf("request %d: %d", i+1, r.status)
			}
		}
		r := chat(t, p, "hi", 0)
		if r.status != 429 || r.jsonField(t, "error.code") != "insufficient_quota" || r.jsonField(t, "error.type") != "insufficient_quota" {
			t.Errorf("openai: %d %s", r.status, r.body)
		}
		wantHeaders(t, r.header, "retry-after", "", "retry-after-ms", "")

		// Other credentials have their own quota.
		message(t, p, "hi", 10)
		message(t, p, "hi", 10)
		r = message(t, p, "hi", 10)
		if r.status != 429 || r.jsonField(t, "error.details.error_code") != "enforced_spend_limit_reached" ||
			r.jsonField(t, "error.type") != "rate_limit_error" {
			t.Errorf("anthropic: %d %s", r.status, r.body)
		}
		generate(t, p, "hi", 0)
		generate(t, p, "hi", 0)
		r = generate(t, p, "hi", 0)
		if r.status != 429 || !strings.Contains(r.body, `"quotaId":"GenerateRequestsPerDayPerProjectPerModel"`) ||
			strings.Contains(r.body, "RetryInfo") {
			t.Errorf("gemini: %d %s", r.status, r.body)
		}
		if s := p.Stats(); s.Rejected[ReasonQuota] != 3 || s.ByCredential[CredentialID("sk-test")].Rejected[ReasonQuota] != 1 {
			t.Errorf("stats = %+v", s)
		}
	})
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{Latency: time.Second, SlowRate: 1, SlowLatency: 30 * time.Second})
		start := time.Now()
		chat(t, p, "hi", 0)
		if d := time.Since(start); d != 30*time.Second {
			t.Errorf("slow request took %v, want 30s", d)
		}

		p = newProvider(t, Config{Latency: time.Second, SlowRate: 1})
		start = time.Now()
		chat(t, p, "hi", 0)
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("slow request took %v, want 10 × Latency", d)
		}

		// A canceled request ends the handler's sleep.
		p = newProvider(t, Config{Latency: time.Minute})
		client := openAIClient(p)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		_, err := client.Chat.Completions.New(ctx, chatParams("hi"))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want deadline exceeded", err)
		}
		synctest.Wait()
		if d := time.Since(start); d != time.Second {
			t.Errorf("canceled after %v, want 1s", d)
		}
		if s := p.Stats(); s.Rejected[ReasonCanceled] != 1 || s.Admitted != 1 {
			t.Errorf("stats = %+v", s.Counts)
		}
	})
}

func TestReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 10, ResetRate: 1})
		client := openAIClient(p)
		_, err := client.Chat.Completions.New(context.Background(), chatParams("hi"))
		var opErr *net.OpError
		if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &opErr) {
			t.Fatalf("err = %v, want a connection reset", err)
		}
		aclient := anthropicClient(p)
		_, err = aclient.Messages.New(context.Background(), messageParams("hi", 10))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("anthropic err = %v, want a connection reset", err)
		}
		s := p.Stats()
		if s.Rejected[ReasonReset] != 2 || s.Admitted != 0 {
			t.Errorf("stats = %+v", s.Counts)
		}
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
		if err := stream.Err(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("openai stream err = %v, want io.ErrUnexpectedEOF", err)
		}
		if got, want := acc.Choices[0].Message.Content, strings.Join(replyPieces[:len(replyPieces)/2], ""); got != want {
			t.Errorf("openai accumulated %q before the cut, want %q", got, want)
		}

		aclient := anthropicClient(p)
		astream := aclient.Messages.NewStreaming(context.Background(), messageParams("hi", 10))
		var msg anthropic.Message
		for astream.Next() {
			if err := msg.Accumulate(astream.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := astream.Err(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("anthropic stream err = %v, want io.ErrUnexpectedEOF", err)
		}
		if len(msg.Content) != 1 || msg.Content[0].Text != "ok, this is" {
			t.Errorf("anthropic accumulated %+v", msg.Content)
		}

		// Non-streaming responses are not cut.
		if _, err := client.Chat.Completions.New(context.Background(), chatParams("hi")); err != nil {
			t.Errorf("non-streaming: %v", err)
		}
		if s := p.Stats(); s.Rejected[ReasonStreamCut] != 2 || s.Admitted != 3 || s.Succeeded != 1 {
			t.Errorf("stats = %+v", s.Counts)
		}
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
		if r.status != 429 {
			t.Fatalf("status %d, want 429", r.status)
		}
		wantHeaders(t, r.header, "retry-after-ms", "2000")
		if got := r.jsonField(t, "error.message").(string); !strings.Contains(got, "Limit 30, Used 30,") {
			t.Errorf("message = %q", got)
		}
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
	if !slices.Equal(a, b) {
		t.Errorf("seed 1 gave %v then %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 1 and 2 gave the same schedule %v", a)
	}
	errs := 0
	for _, s := range a {
		if s == 500 {
			errs++
		}
	}
	if errs < 10 || errs > 30 {
		t.Errorf("%d of 40 failed at ErrorRate 0.5", errs)
	}
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
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestNoRateHeaders: a provider behind a gateway that strips the rate-limit
// headers sends none, on successes and refusals alike; with HintOmit its
// 429 says nothing of when to come back.
func TestNoRateHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 1, TPM: 1_000_000, ITPM: 1_000_000, OTPM: 1_000_000, HintMode: HintOmit, NoRateHeaders: true, Latency: -1})
		ok, refused := chat(t, p, "hi", 0), chat(t, p, "hi", 0)
		if ok.status != 200 || refused.status != 429 {
			t.Fatalf("statuses %d, %d; want 200, 429", ok.status, refused.status)
		}
		for _, r := range []result{ok, refused, message(t, p, "hi", 10), message(t, p, "hi", 10)} {
			for k := range r.header {
				if l := strings.ToLower(k); strings.Contains(l, "ratelimit") || strings.HasPrefix(l, "retry-after") {
					t.Errorf("header %s sent: %v", k, r.header[k])
				}
			}
		}
		if strings.Contains(refused.body, "try again") {
			t.Errorf("the 429 states a wait: %s", refused.body)
		}
	})
}

// TestBlockAfter: once BlockAfter requests were admitted, the credential is
// refused with a rate-limit 429 for BlockFor, its hints truthful whatever
// HintMode says, and admitted again after.
func TestBlockAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 600, BlockAfter: 2, BlockFor: time.Hour, HintMode: HintLieZero, Latency: -1})
		for range 2 {
			if r := chat(t, p, "hi", 0); r.status != 200 {
				t.Fatalf("before the block: %d", r.status)
			}
		}
		r := chat(t, p, "hi", 0)
		if r.status != 429 || r.header.Get("retry-after") != "3600" || r.header.Get("retry-after-ms") != "3600000" ||
			!strings.Contains(r.body, "Please try again in 1h0m0s.") || r.jsonField(t, "error.code") != "rate_limit_exceeded" {
			t.Fatalf("blocked: %d %v %s", r.status, r.header, r.body)
		}
		time.Sleep(30 * time.Minute)
		if r := chat(t, p, "hi", 0); r.status != 429 || r.header.Get("retry-after") != "1800" {
			t.Errorf("half way: %d retry-after %q", r.status, r.header.Get("retry-after"))
		}
		time.Sleep(30 * time.Minute)
		if r := chat(t, p, "hi", 0); r.status != 200 {
			t.Errorf("after the block: %d %s", r.status, r.body)
		}
		if s := p.Stats(); s.Rejected[ReasonRateLimited] != 2 || s.Admitted != 3 {
			t.Errorf("stats = %+v", s.Counts)
		}
	})
	if _, err := New(Config{BlockAfter: 1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("BlockAfter without BlockFor: %v, want ErrInvalidConfig", err)
	}
}
