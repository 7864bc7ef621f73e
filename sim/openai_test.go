package sim

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenAIChatCompletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 60, TPM: 10_000})
		client := openAIClient(p)
		start := time.Now()
		params := chatParams("hello, simulated world")
		params.MaxTokens = openai.Int(32)
		got, err := client.Chat.Completions.New(context.Background(), params)
		require.NoError(t, err, "New")
		assert.Equal(t, DefaultLatency, time.Since(start), "took")
		require.Len(t, got.Choices, 1, "choices")
		require.Equal(t, ReplyText, got.Choices[0].Message.Content, "the choice's content")
		assert.Equal(t, "gpt-4o-mini", got.Model, "model")
		assert.Equal(t, "stop", got.Choices[0].FinishReason, "finish reason")
		// "hello, simulated world" has 22 characters: 6 tokens.
		assert.Equal(t, int64(6), got.Usage.PromptTokens, "prompt tokens")
		assert.Equal(t, int64(32), got.Usage.CompletionTokens, "completion tokens")
		assert.Equal(t, int64(38), got.Usage.TotalTokens, "total tokens")
		s := p.Stats()
		assert.Equal(t, 1, s.Received, "received; stats %+v", s.Counts)
		assert.Equal(t, 1, s.Admitted, "admitted; stats %+v", s.Counts)
		assert.Equal(t, 1, s.Succeeded, "succeeded; stats %+v", s.Counts)
		assert.Empty(t, s.Rejected, "rejected; stats %+v", s.Counts)
		assert.Equal(t, []time.Duration{DefaultLatency}, s.SuccessTimes, "SuccessTimes")
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
			require.True(t, acc.AddChunk(stream.Current()), "chunk %d not accumulated", chunks)
		}
		require.NoError(t, stream.Err(), "stream")
		// role, 6 pieces, finish, usage.
		assert.Equal(t, len(replyPieces)+3, chunks, "chunks")
		assert.Equal(t, ReplyText, acc.Choices[0].Message.Content, "accumulated")
		assert.Equal(t, int64(1), acc.Usage.PromptTokens, "prompt tokens")
		assert.Equal(t, int64(DefaultOutputTokens), acc.Usage.CompletionTokens, "completion tokens")
		assert.Equal(t, 1, p.Stats().Succeeded, "Succeeded")
	})
}

func TestOpenAIRateLimitError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 2, Latency: -1})
		client := openAIClient(p)
		ctx := context.Background()
		for i := range 2 {
			_, err := client.Chat.Completions.New(ctx, chatParams("hi"))
			require.NoError(t, err, "request %d", i+1)
		}
		_, err := client.Chat.Completions.New(ctx, chatParams("hi"))
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 429, apiErr.StatusCode, "status")
		assert.Equal(t, "rate_limit_exceeded", apiErr.Code, "code")
		assert.Equal(t, "requests", apiErr.Type, "type")
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
		assert.Equal(t, want, apiErr.Message, "message")
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
			_, err := client.Chat.Completions.New(context.Background(), chatParams("hi"))
			require.NoError(t, err)
		}
		start := time.Now()
		_, err := client.Chat.Completions.New(context.Background(), chatParams("hi"))
		require.NoError(t, err)
		assert.Equal(t, time.Second, time.Since(start), "61st request took")
		s := p.Stats()
		assert.Equal(t, 1, s.Rejected[ReasonRateLimited], "rejected rate limited; stats %+v", s.Counts)
		assert.Equal(t, 61, s.Succeeded, "succeeded; stats %+v", s.Counts)
	})
}
