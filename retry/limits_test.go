package retry

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParseResetDuration(t *testing.T) {
	tests := map[string]struct {
		in   string
		want time.Duration
		ok   bool
	}{
		"6m0s":          {"6m0s", 6 * time.Minute, true},
		"59.998s":       {"59.998s", 59998 * time.Millisecond, true},
		"12ms":          {"12ms", 12 * time.Millisecond, true},
		"1h2m3s":        {"1h2m3s", time.Hour + 2*time.Minute + 3*time.Second, true},
		"0s":            {"0s", 0, true},
		"integer":       {"20", 20 * time.Second, true},
		"fraction":      {"1.5", 1500 * time.Millisecond, true},
		"padded":        {" 7s ", 7 * time.Second, true},
		"saturates":     {"100000h", 24 * time.Hour, true},
		"huge seconds":  {"99999999999", 24 * time.Hour, true},
		"negative":      {"-1s", 0, false},
		"negative int":  {"-5", 0, false},
		"plus":          {"+5s", 0, false},
		"exponent":      {"1e3", 1000 * time.Second, true},
		"huge exponent": {"1e30", 24 * time.Hour, true},
		"exponent unit": {"1e3ms", time.Second, true},
		"space inside":  {"1 s", 0, false},
		"unknown unit":  {"5d", 0, false},
		"trailing junk": {"5sx", 0, false},
		"garbage":       {"soon", 0, false},
		"empty":         {"", 0, false},
		"overflow":      {"9999999999999999999h", 24 * time.Hour, true},
		"unit only":     {"s", 0, false},
		"negative zero": {"-0s", 0, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := parseResetDuration(tt.in)
			assert.Equal(t, tt.want, got, "parseResetDuration(%q)", tt.in)
			assert.Equal(t, tt.ok, ok, "parseResetDuration(%q) ok", tt.in)
		})
	}
}

func TestParseResetTime(t *testing.T) {
	epoch := func(d time.Duration) string { return strconv.FormatInt(t0.Add(d).Unix(), 10) }
	tests := map[string]struct {
		in   string
		want time.Duration
		ok   bool
	}{
		"rfc3339":            {"2026-11-27T08:00:30Z", 30 * time.Second, true},
		"rfc3339 fraction":   {"2026-11-27T08:00:30.5Z", 30500 * time.Millisecond, true},
		"rfc3339 offset":     {"2026-11-27T09:00:30+01:00", 30 * time.Second, true},
		"rfc3339 past":       {"2026-11-27T07:00:00Z", 0, true},
		"rfc3339 far":        {"2027-11-27T07:00:00Z", 24 * time.Hour, true},
		"epoch seconds":      {epoch(10 * time.Second), 10 * time.Second, true},
		"epoch seconds past": {epoch(-10 * time.Second), 0, true},
		"epoch fraction":     {fmt.Sprintf("%d.5", t0.Unix()+2), 2500 * time.Millisecond, true},
		"epoch millis":       {strconv.FormatInt(t0.Add(750*time.Millisecond).UnixMilli(), 10), 750 * time.Millisecond, true},
		"epoch millis past":  {strconv.FormatInt(t0.Add(-time.Hour).UnixMilli(), 10), 0, true},
		"delta":              {"30", 30 * time.Second, true},
		"delta fraction":     {"0.5", 500 * time.Millisecond, true},
		"delta zero":         {"0", 0, true},
		"beyond millis":      {"1" + zeros(15), 24 * time.Hour, true},
		"negative":           {"-5", 0, false},
		"garbage":            {"tomorrow", 0, false},
		"space separated":    {"2026-11-27 08:00:30", 0, false},
		"empty":              {"", 0, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := parseResetTime(tt.in, t0)
			assert.Equal(t, tt.want, got, "parseResetTime(%q)", tt.in)
			assert.Equal(t, tt.ok, ok, "parseResetTime(%q) ok", tt.in)
		})
	}
}

func TestParseCount(t *testing.T) {
	tests := map[string]int64{"60": 60, " 0 ": 0, "-1": -1, "x": -1, "": -1, "1.5": -1, "99999999999999999999": -1}
	for in, want := range tests {
		assert.Equal(t, want, parseCount(in), "parseCount(%q)", in)
	}
}

func TestParseLimits(t *testing.T) {
	tests := map[string]struct {
		h    []string
		now  time.Time
		want Limits
	}{
		"openai both windows": {[]string{
			"x-ratelimit-limit-requests", "500", "x-ratelimit-remaining-requests", "499", "x-ratelimit-reset-requests", "120ms",
			"x-ratelimit-limit-tokens", "50000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "1.146s",
		}, t0, Limits{
			{Reset: SourceResetRequests, Limit: 500, Remaining: 499, Until: 120 * time.Millisecond},
			{Reset: SourceResetTokens, Tokens: true, Limit: 50000, Remaining: 0, Until: 1146 * time.Millisecond},
		}},
		"openai integer seconds": {[]string{"x-ratelimit-reset-requests", "7"}, t0, Limits{
			{Reset: SourceResetRequests, Limit: -1, Remaining: -1, Until: 7 * time.Second},
		}},
		"invalid values read as not sent": {[]string{
			"x-ratelimit-limit-requests", "lots", "x-ratelimit-remaining-requests", "-3", "x-ratelimit-reset-requests", "-1s",
		}, t0, nil},
		"only remaining": {[]string{"x-ratelimit-remaining-tokens", "12"}, t0, Limits{
			{Reset: SourceResetTokens, Tokens: true, Limit: -1, Remaining: 12, Until: -1},
		}},
		"anthropic against Date": {[]string{
			"Date", date,
			"anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "49", "anthropic-ratelimit-requests-reset", "2026-11-27T08:00:01Z",
			"anthropic-ratelimit-tokens-reset", "2026-11-27T08:00:02Z",
			"anthropic-ratelimit-input-tokens-reset", "2026-11-27T08:00:03Z",
			"anthropic-ratelimit-output-tokens-reset", "2026-11-27T08:00:04Z",
		}, ts(100), Limits{
			{Reset: SourceAnthropicRequestsReset, Limit: 50, Remaining: 49, Until: time.Second},
			{Reset: SourceAnthropicTokensReset, Tokens: true, Limit: -1, Remaining: -1, Until: 2 * time.Second},
			{Reset: SourceAnthropicInputTokens, Tokens: true, Limit: -1, Remaining: -1, Until: 3 * time.Second},
			{Reset: SourceAnthropicOutputTokens, Tokens: true, Limit: -1, Remaining: -1, Until: 4 * time.Second},
		}},
		"anthropic against now without Date": {[]string{"anthropic-ratelimit-requests-reset", "2026-11-27T08:00:10Z"}, ts(4), Limits{
			{Reset: SourceAnthropicRequestsReset, Limit: -1, Remaining: -1, Until: 6 * time.Second},
		}},
		"epoch reset": {[]string{"x-ratelimit-limit", "100", "x-ratelimit-remaining", "3", "x-ratelimit-reset", strconv.FormatInt(t0.Unix()+30, 10)}, t0, Limits{
			{Reset: SourceResetEpoch, Limit: 100, Remaining: 3, Until: 30 * time.Second},
		}},
		"absurd Date ignored": {[]string{"Date", "Sat, 27 Nov 1971 08:00:00 GMT", "anthropic-ratelimit-requests-reset", "2026-11-27T08:00:10Z"}, ts(4), Limits{
			{Reset: SourceAnthropicRequestsReset, Limit: -1, Remaining: -1, Until: 6 * time.Second},
		}},
		"none": {[]string{"Content-Type", "application/json"}, t0, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := ParseLimits(hdr(tt.h...), tt.now)
			assert.Equal(t, tt.want, got, "ParseLimits")
		})
	}
}
