package sim

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

func TestOpenAIChatCompletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 60, TPM: 10_000})
		client := openAIClient(p)
		start := time.Now()
		params := chatParams("hello, simulated world")
		params.MaxTokens = openai.Int(32)
		got, err := client.Chat.Completions.New(context.Background(), params)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if d := time.Since(start); d != DefaultLatency {
			t.Errorf("took %v, want %v", d, DefaultLatency)
		}
		if len(got.Choices) != 1 || got.Choices[0].Message.Content != ReplyText {
			t.Fatalf("choices = %+v, want one with %q", got.Choices, ReplyText)
		}
		if got.Model != "gpt-4o-mini" || got.Choices[0].FinishReason != "stop" {
			t.Errorf("model %q finish %q", got.Model, got.Choices[0].FinishReason)
		}
		// "hello, simulated world" has 22 characters: 6 tokens.
		if got.Usage.PromptTokens != 6 || got.Usage.CompletionTokens != 32 || got.Usage.TotalTokens != 38 {
			t.Errorf("usage = %+v, want 6 + 32 = 38", got.Usage)
		}
		s := p.Stats()
		if s.Received != 1 || s.Admitted != 1 || s.Succeeded != 1 || len(s.Rejected) != 0 {
			t.Errorf("stats = %+v", s.Counts)
		}
		if len(s.SuccessTimes) != 1 || s.SuccessTimes[0] != DefaultLatency {
			t.Errorf("SuccessTimes = %v", s.SuccessTimes)
		}
	})
}

func TestOpenAIStreaming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{})
		client := openAIClient(p)
		stream := client.Chat.Completions.NewStreaming(context.Background(), chatParams("hi"))
		var acc openai.ChatCompletionAccumulator
		chunks := 0
		for stream.Next() {
			chunks++
			if !acc.AddChunk(stream.Current()) {
				t.Fatalf("chunk %d not accumulated", chunks)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		// role, 6 pieces, finish, usage.
		if want := len(replyPieces) + 3; chunks != want {
			t.Errorf("got %d chunks, want %d", chunks, want)
		}
		if got := acc.Choices[0].Message.Content; got != ReplyText {
			t.Errorf("accumulated %q, want %q", got, ReplyText)
		}
		if acc.Usage.PromptTokens != 1 || acc.Usage.CompletionTokens != DefaultOutputTokens {
			t.Errorf("usage = %+v", acc.Usage)
		}
		if s := p.Stats(); s.Succeeded != 1 {
			t.Errorf("Succeeded = %d", s.Succeeded)
		}
	})
}

func TestOpenAIRateLimitError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 2, Latency: -1})
		client := openAIClient(p)
		ctx := context.Background()
		for i := range 2 {
			if _, err := client.Chat.Completions.New(ctx, chatParams("hi")); err != nil {
				t.Fatalf("request %d: %v", i+1, err)
			}
		}
		_, err := client.Chat.Completions.New(ctx, chatParams("hi"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("err = %v, want *openai.Error", err)
		}
		if apiErr.StatusCode != 429 || apiErr.Code != "rate_limit_exceeded" || apiErr.Type != "requests" {
			t.Errorf("got %d %s %s", apiErr.StatusCode, apiErr.Code, apiErr.Type)
		}
		// One request refills every 30s.
		wantHeaders(t, apiErr.Response.Header,
			"retry-after-ms", "30000",
			"retry-after", "30",
			"x-ratelimit-limit-requests", "2",
			"x-ratelimit-remaining-requests", "0",
			"x-ratelimit-reset-requests", "1m0s",
			"x-ratelimit-limit-tokens", "",
			"Date", "Sat, 01 Jan 2000 00:00:00 GMT",
		)
		want := "Rate limit reached for gpt-4o-mini in organization org-sim on requests per min (RPM): " +
			"Limit 2, Used 2, Requested 1. Please try again in 30s."
		if apiErr.Message != want {
			t.Errorf("message = %q, want %q", apiErr.Message, want)
		}
	})
}

// TestOpenAISDKRetriesHonorHint checks that the SDK's own retry loop, reading
// retry-after-ms, gets the 61st request of a minute through after exactly
// the stated wait.
func TestOpenAISDKRetriesHonorHint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 60, Latency: -1})
		client := openai.NewClient(
			option.WithBaseURL("http://sim.local/v1"),
			option.WithHTTPClient(&http.Client{Transport: Transport{Handler: p}}),
			option.WithAPIKey("sk-test"),
		)
		for range 60 {
			if _, err := client.Chat.Completions.New(context.Background(), chatParams("hi")); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		if _, err := client.Chat.Completions.New(context.Background(), chatParams("hi")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("61st request took %v, want 1s", d)
		}
		if s := p.Stats(); s.Rejected[ReasonRateLimited] != 1 || s.Succeeded != 61 {
			t.Errorf("stats = %+v", s.Counts)
		}
	})
}
