package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/anthropics/anthropic-sdk-go/v2"
)

func TestAnthropicMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 50, ITPM: 10_000, OTPM: 2_000})
		client := anthropicClient(p)
		msg, err := client.Messages.New(context.Background(), messageParams("hello there", 64))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if len(msg.Content) != 1 || msg.Content[0].Text != ReplyText {
			t.Fatalf("content = %+v, want %q", msg.Content, ReplyText)
		}
		if msg.StopReason != anthropic.StopReasonEndTurn || msg.Model != "claude-sim" {
			t.Errorf("stop reason %q model %q", msg.StopReason, msg.Model)
		}
		if msg.Usage.InputTokens != 3 || msg.Usage.OutputTokens != 64 {
			t.Errorf("usage = %d in, %d out; want 3, 64", msg.Usage.InputTokens, msg.Usage.OutputTokens)
		}
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
			if err := acc.Accumulate(ev); err != nil {
				t.Fatalf("Accumulate(%s): %v", ev.Type, err)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if len(acc.Content) != 1 || acc.Content[0].Text != ReplyText {
			t.Fatalf("accumulated %+v, want %q", acc.Content, ReplyText)
		}
		if acc.StopReason != anthropic.StopReasonEndTurn || acc.Usage.OutputTokens != 100 || acc.Usage.InputTokens != 1 {
			t.Errorf("stop %q usage %+v", acc.StopReason, acc.Usage)
		}
		want := []string{"message_start", "content_block_start"}
		for range replyPieces {
			want = append(want, "content_block_delta")
		}
		want = append(want, "content_block_stop", "message_delta", "message_stop")
		if len(types) != len(want) {
			t.Fatalf("events %v, want %v", types, want)
		}
		for i := range want {
			if types[i] != want[i] {
				t.Errorf("event %d = %s, want %s", i, types[i], want[i])
			}
		}
	})
}

func TestAnthropicRateLimitHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 50, ITPM: 1000, OTPM: 500, Latency: -1})
		// 400 characters: 100 input tokens; 100 output tokens.
		prompt := strings.Repeat("a", 400)
		r := message(t, p, prompt, 100)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
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
		if r.status != 429 {
			t.Fatalf("status %d, want 429: %s", r.status, r.body)
		}
		wantHeaders(t, r.header, "retry-after", "6", "retry-after-ms", "", "anthropic-ratelimit-output-tokens-remaining", "400")
		want := `{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 500 output tokens per minute."},"request_id":"req_sim00000002"}`
		if r.body != want {
			t.Errorf("body = %s\nwant   %s", r.body, want)
		}

		// The SDK sees the same as an *anthropic.Error.
		client := anthropicClient(p)
		_, err := client.Messages.New(context.Background(), messageParams("hi", 450))
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
			t.Fatalf("err = %v, want a 429 *anthropic.Error", err)
		}
	})
}

func TestAnthropicTooLarge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{ITPM: 1000, Latency: -1})
		r := message(t, p, strings.Repeat("a", 4004), 10) // 1001 tokens
		if r.status != 413 {
			t.Fatalf("status %d, want 413: %s", r.status, r.body)
		}
		if got := r.jsonField(t, "error.type"); got != "request_too_large" {
			t.Errorf("error.type = %v", got)
		}
		wantHeaders(t, r.header, "anthropic-ratelimit-input-tokens-remaining", "1000", "retry-after", "")
		if s := p.Stats(); s.Rejected[ReasonTooLarge] != 1 || s.Admitted != 0 {
			t.Errorf("stats = %+v", s.Counts)
		}
	})
}
