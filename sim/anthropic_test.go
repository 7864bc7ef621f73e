package sim

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAnthropicMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 50, ITPM: 10_000, OTPM: 2_000})
		client := anthropicClient(p)
		msg, err := client.Messages.New(context.Background(), messageParams("hello there", 64))
		require.NoError(t, err, "New")
		require.Len(t, msg.Content, 1, "content")
		require.Equal(t, ReplyText, msg.Content[0].Text, "content")
		assert.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason, "stop reason")
		assert.Equal(t, anthropic.Model("claude-sim"), msg.Model, "model")
		assert.Equal(t, int64(3), msg.Usage.InputTokens, "input tokens")
		assert.Equal(t, int64(64), msg.Usage.OutputTokens, "output tokens")
	})
}

func TestAnthropicStreamingAccumulate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{})
		client := anthropicClient(p)
		stream := client.Messages.NewStreaming(context.Background(), messageParams("hi", 100))
		var acc anthropic.Message
		var types []string
		for stream.Next() {
			ev := stream.Current()
			types = append(types, ev.Type)
			require.NoError(t, acc.Accumulate(ev), "Accumulate(%s)", ev.Type)
		}
		require.NoError(t, stream.Err(), "stream")
		require.Len(t, acc.Content, 1, "accumulated content")
		require.Equal(t, ReplyText, acc.Content[0].Text, "accumulated content")
		assert.Equal(t, anthropic.StopReasonEndTurn, acc.StopReason, "stop reason")
		assert.Equal(t, int64(100), acc.Usage.OutputTokens, "output tokens")
		assert.Equal(t, int64(1), acc.Usage.InputTokens, "input tokens")
		want := []string{"message_start", "content_block_start"}
		for range replyPieces {
			want = append(want, "content_block_delta")
		}
		want = append(want, "content_block_stop", "message_delta", "message_stop")
		assert.Equal(t, want, types, "events")
	})
}

func TestAnthropicRateLimitHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 50, ITPM: 1000, OTPM: 500, Latency: -1})
		// 400 characters: 100 input tokens; 100 output tokens.
		prompt := strings.Repeat("a", 400)
		r := message(t, p, prompt, 100)
		require.Equal(t, 200, r.status, "status: %s", r.body)
		// Refill: requests 50/60 per s (1 in 1.2s), input 1000/60 (100 in 6s),
		// output 500/60 (100 in 12s). Resets round up to the second.
		wantHeaders(t, r.header,
			"anthropic-ratelimit-requests-limit", "50",
			"anthropic-ratelimit-requests-remaining", "49",
			"anthropic-ratelimit-requests-reset", "2000-01-01T00:00:02Z",
			"anthropic-ratelimit-input-tokens-limit", "1000",
			"anthropic-ratelimit-input-tokens-remaining", "900",
			"anthropic-ratelimit-input-tokens-reset", "2000-01-01T00:00:06Z",
			"anthropic-ratelimit-output-tokens-limit", "500",
			"anthropic-ratelimit-output-tokens-remaining", "400",
			"anthropic-ratelimit-output-tokens-reset", "2000-01-01T00:00:12Z",
			"request-id", "req_sim00000001",
		)
		// 450 output tokens do not fit in 400: 50 more take 6s.
		r = message(t, p, "hi", 450)
		require.Equal(t, 429, r.status, "status: %s", r.body)
		wantHeaders(t, r.header, "retry-after", "6", "retry-after-ms", "", "anthropic-ratelimit-output-tokens-remaining", "400")
		assert.Equal(t, `{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 500 output tokens per minute."},"request_id":"req_sim00000002"}`, r.body, "body")

		// The SDK sees the same as an *anthropic.Error.
		client := anthropicClient(p)
		_, err := client.Messages.New(context.Background(), messageParams("hi", 450))
		var apiErr *anthropic.Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, 429, apiErr.StatusCode, "the *anthropic.Error's status")
	})
}

func TestAnthropicTooLarge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{ITPM: 1000, Latency: -1})
		r := message(t, p, strings.Repeat("a", 4004), 10) // 1001 tokens
		require.Equal(t, 413, r.status, "status: %s", r.body)
		assert.Equal(t, "request_too_large", r.jsonField(t, "error.type"), "error.type")
		wantHeaders(t, r.header, "anthropic-ratelimit-input-tokens-remaining", "1000", "retry-after", "")
		s := p.Stats()
		assert.Equal(t, 1, s.Rejected[ReasonTooLarge], "rejected too large; stats %+v", s.Counts)
		assert.Zero(t, s.Admitted, "admitted; stats %+v", s.Counts)
	})
}
