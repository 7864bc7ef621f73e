package sim

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestHintModesOpenAI(t *testing.T) {
	const base = "Rate limit reached for gpt-4o-mini in organization org-sim on requests per min (RPM): Limit 1, Used 1, Requested 1."
	for _, c := range []struct {
		mode      HintMode
		ms, after string // "" means absent; "past" means an HTTP-date in the past
		msgSuffix string
	}{
		{"", "60000", "60", " Please try again in 1m0s."},
		{HintTruthful, "60000", "60", " Please try again in 1m0s."},
		{HintOmit, "", "", ""},
		{HintLieLong, "3600000", "3600", " Please try again in 1h0m0s."},
		{HintLieZero, "0", "0", " Please try again in 0s."},
		{HintLiePast, "", "past", ""},
	} {
		t.Run(string(c.mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newProvider(t, Config{RPM: 1, HintMode: c.mode, Latency: -1})
				chat(t, p, "hi", 0)
				r := chat(t, p, "hi", 0)
				if r.status != 429 {
					t.Fatalf("status %d, want 429", r.status)
				}
				wantHeaders(t, r.header,
					"retry-after-ms", c.ms,
					"x-ratelimit-remaining-requests", "0",
					"x-ratelimit-reset-requests", "1m0s",
				)
				after := r.header.Get("retry-after")
				if c.after == "past" {
					at, err := http.ParseTime(after)
					if date, _ := http.ParseTime(r.header.Get("Date")); err != nil || !at.Before(date) {
						t.Errorf("retry-after = %q, want an HTTP-date before %v", after, date)
					}
				} else if after != c.after {
					t.Errorf("retry-after = %q, want %q", after, c.after)
				}
				if got := r.jsonField(t, "error.message"); got != base+c.msgSuffix {
					t.Errorf("message = %q, want %q", got, base+c.msgSuffix)
				}
			})
		})
	}
}

func TestHintModesAnthropicAndGemini(t *testing.T) {
	for _, c := range []struct {
		mode              HintMode
		after, retryDelay string
	}{
		{HintTruthful, "60", "60s"},
		{HintOmit, "", ""},
		{HintLieLong, "3600", "3600s"},
		{HintLieZero, "0", "0s"},
	} {
		t.Run(string(c.mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newProvider(t, Config{RPM: 1, HintMode: c.mode, Latency: -1})
				message(t, p, "hi", 10)
				r := message(t, p, "hi", 10)
				wantHeaders(t, r.header,
					"retry-after", c.after,
					"retry-after-ms", "",
					"anthropic-ratelimit-requests-remaining", "0",
					"anthropic-ratelimit-requests-reset", "2000-01-01T00:01:00Z",
				)

				generate(t, p, "hi", 0)
				r = generate(t, p, "hi", 0)
				wantHeaders(t, r.header, "retry-after", c.after)
				delay := ""
				if details, _ := r.jsonField(t, "error.details").([]any); len(details) == 2 {
					delay, _ = details[1].(map[string]any)["retryDelay"].(string)
				}
				if delay != c.retryDelay {
					t.Errorf("retryDelay = %q, want %q", delay, c.retryDelay)
				}
				msg, _ := r.jsonField(t, "error.message").(string)
				if strings.Contains(msg, "retry in") != (c.retryDelay != "") {
					t.Errorf("message = %q", msg)
				}
			})
		})
	}
}

func TestHintFormats(t *testing.T) {
	for _, c := range []struct {
		d           time.Duration
		wait, proto string
		secs        int64
	}{
		{1146 * time.Millisecond, "1.146s", "1.146s", 2},
		{12 * time.Millisecond, "12ms", "0.012s", 1},
		{6 * time.Minute, "6m0s", "360s", 360},
		{1250 * time.Millisecond, "1.25s", "1.250s", 2},
		{0, "0s", "0s", 0},
	} {
		if got := formatWait(c.d); got != c.wait {
			t.Errorf("formatWait(%v) = %q, want %q", c.d, got, c.wait)
		}
		if got := protoDuration(c.d); got != c.proto {
			t.Errorf("protoDuration(%v) = %q, want %q", c.d, got, c.proto)
		}
		if got := ceilSeconds(c.d); got != c.secs {
			t.Errorf("ceilSeconds(%v) = %d, want %d", c.d, got, c.secs)
		}
	}
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	if got := resetTime(now, 1200*time.Millisecond); got != "2026-11-27T08:00:02Z" {
		t.Errorf("resetTime = %s", got)
	}
	if got := resetTime(now, 14*time.Second); got != "2026-11-27T08:00:14Z" {
		t.Errorf("resetTime = %s", got)
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 80000: "80,000", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
