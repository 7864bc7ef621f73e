package retry

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A Window is one rate limit a provider reported in its headers: a number
// of requests or tokens that refills over time.
type Window struct {
	// Reset names the header that gave the reset; it doubles as the hint
	// source when the window's reset becomes a wait.
	Reset Source
	// Tokens reports whether the window counts tokens rather than requests.
	Tokens bool
	// Limit is the window's capacity, or -1 when not sent.
	Limit int64
	// Remaining is what is left of it now, or -1 when not sent.
	Remaining int64
	// Until is how long until the window is full again, or -1 when not sent.
	Until time.Duration
}

// Limits is every window a response reported.
type Limits []Window

// windowHeaders lists the windows and their headers: limit, remaining, reset.
var windowHeaders = []struct {
	reset                   Source
	tokens                  bool
	limit, remaining, until string
	epoch                   bool // the reset is a point in time, not a delay
}{
	{SourceResetRequests, false, "X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests", false},
	{SourceResetTokens, true, "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens", false},
	{SourceAnthropicRequestsReset, false, "Anthropic-Ratelimit-Requests-Limit", "Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset", true},
	{SourceAnthropicTokensReset, true, "Anthropic-Ratelimit-Tokens-Limit", "Anthropic-Ratelimit-Tokens-Remaining", "Anthropic-Ratelimit-Tokens-Reset", true},
	{SourceAnthropicInputTokens, true, "Anthropic-Ratelimit-Input-Tokens-Limit", "Anthropic-Ratelimit-Input-Tokens-Remaining", "Anthropic-Ratelimit-Input-Tokens-Reset", true},
	{SourceAnthropicOutputTokens, true, "Anthropic-Ratelimit-Output-Tokens-Limit", "Anthropic-Ratelimit-Output-Tokens-Remaining", "Anthropic-Ratelimit-Output-Tokens-Reset", true},
	{SourceResetEpoch, false, "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", true},
}

// hasLimits reports whether h may hold a window: it has a header named like
// one. Most responses have none, and this is cheaper than looking each up.
func hasLimits(h http.Header) bool {
	for k := range h {
		if len(k) > 12 && (k[0] == 'X' || k[0] == 'x' || k[0] == 'A' || k[0] == 'a') &&
			(strings.HasPrefix(http.CanonicalHeaderKey(k), "X-Ratelimit-") || strings.HasPrefix(http.CanonicalHeaderKey(k), "Anthropic-Ratelimit-")) {
			return true
		}
	}
	return false
}

// get is h.Get for a canonical key, without canonicalizing it again.
func get(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// ParseLimits reads the rate-limit windows in h: OpenAI-style
// x-ratelimit-{limit,remaining,reset}-{requests,tokens} (resets as Go
// durations such as "6m0s", "59.998s", "12ms", or integer seconds),
// anthropic-ratelimit-* (RFC 3339 resets), and x-ratelimit-{limit,remaining,
// reset} with the reset as epoch seconds, epoch milliseconds, or (below
// 10⁹) seconds from now. Times are measured from the Date header when
// valid, else from now. A window appears when any of its headers is valid;
// invalid values read as "not sent".
func ParseLimits(h http.Header, now time.Time) Limits {
	if !hasLimits(h) {
		return nil
	}
	base := responseTime(h, now)
	var ls Limits
	for _, wh := range windowHeaders {
		w := Window{Reset: wh.reset, Tokens: wh.tokens, Limit: parseCount(get(h, wh.limit)), Remaining: parseCount(get(h, wh.remaining)), Until: -1}
		if v := get(h, wh.until); v != "" {
			var d time.Duration
			var ok bool
			if wh.epoch {
				d, ok = parseResetTime(v, base)
			} else {
				d, ok = parseResetDuration(v)
			}
			if ok {
				w.Until = d
			}
		}
		if w.Limit >= 0 || w.Remaining >= 0 || w.Until >= 0 {
			ls = append(ls, w)
		}
	}
	return ls
}

// parseCount parses a non-negative integer count, or returns -1.
func parseCount(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// parseResetDuration parses a Go duration ("6m0s", "1.146s", "12ms") or a
// number of seconds ("20", "1e3"), saturating at 24h.
func parseResetDuration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if v, ok := parseNumber(s); ok {
		return seconds(v, time.Second)
	}
	return parseGoDuration(s)
}

// parseResetTime parses an RFC 3339 time or an epoch (seconds, or
// milliseconds from 10¹² on; values below 10⁹ are seconds from base).
func parseResetTime(s string, base time.Time) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if v, ok := parseNumber(s); ok {
		switch {
		case v < 1e9:
			return seconds(v, time.Second)
		case v < 1e12:
			return until(time.UnixMilli(int64(v*1000)), base), true
		case v < 1e15:
			return until(time.UnixMilli(int64(v)), base), true
		}
		return maxWait, true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, false
	}
	return until(t, base), true
}

// exhaustedWait estimates how long until the exhausted windows (remaining 0
// or not sent) admit the request, assuming linear refill: a window refills
// Limit in Until, so one request needs Until/Limit, and a request of N
// tokens (the error text's "Requested N") N·Until/Limit; without N or the
// limit it waits for the full reset. The longest wait wins.
func (ls Limits) exhaustedWait(eb *errorBody) Hint {
	var best Hint
	requested := int64(-1)
	if m := limitRequested.FindStringSubmatch(eb.message); m != nil {
		requested = parseCount(strings.ReplaceAll(m[2], ",", ""))
	}
	for _, w := range ls {
		if w.Until < 0 || w.Remaining > 0 {
			continue
		}
		need := int64(1)
		if w.Tokens {
			need = requested
		}
		d := w.Until
		if need > 0 && w.Limit > 0 && need < w.Limit {
			d = time.Duration(float64(w.Until) * float64(need) / float64(w.Limit))
		}
		if !best.Valid() || d > best.Wait {
			best = Hint{d, w.Reset}
		}
	}
	return best
}
