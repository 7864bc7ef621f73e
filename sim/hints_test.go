package sim

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
				require.Equal(t, 429, r.status, "status")
				wantHeaders(t, r.header,
					"retry-after-ms", c.ms,
					"x-ratelimit-remaining-requests", "0",
					"x-ratelimit-reset-requests", "1m0s",
				)
				after := r.header.Get("retry-after")
				if c.after == "past" {
					at, err := http.ParseTime(after)
					date, _ := http.ParseTime(r.header.Get("Date"))
					if assert.NoError(t, err, "retry-after = %q, want an HTTP-date", after) {
						assert.Less(t, at, date, "retry-after = %q, want an HTTP-date before the Date", after)
					}
				} else {
					assert.Equal(t, c.after, after, "retry-after")
				}
				assert.Equal(t, base+c.msgSuffix, r.jsonField(t, "error.message"), "message")
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
				assert.Equal(t, c.retryDelay, delay, "retryDelay")
				msg, _ := r.jsonField(t, "error.message").(string)
				if c.retryDelay != "" {
					assert.Contains(t, msg, "retry in", "message: want the wait with the retryDelay")
				} else {
					assert.NotContains(t, msg, "retry in", "message: want no wait without a retryDelay")
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
		assert.Equal(t, c.wait, formatWait(c.d), "formatWait(%v)", c.d)
		assert.Equal(t, c.proto, protoDuration(c.d), "protoDuration(%v)", c.d)
		assert.Equal(t, c.secs, ceilSeconds(c.d), "ceilSeconds(%v)", c.d)
	}
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	assert.Equal(t, "2026-11-27T08:00:02Z", resetTime(now, 1200*time.Millisecond), "resetTime(1.2s)")
	assert.Equal(t, "2026-11-27T08:00:14Z", resetTime(now, 14*time.Second), "resetTime(14s)")
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 80000: "80,000", 1234567: "1,234,567"} {
		assert.Equal(t, want, thousands(n), "thousands(%d)", n)
	}
}
