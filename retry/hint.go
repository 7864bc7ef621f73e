package retry

import (
	"encoding/json"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A Source names where a wait came from. The names are a fixed vocabulary
// shared with telemetry and the explain command.
type Source string

// The hint sources, in the order ParseHint prefers them.
const (
	SourceRetryAfterMS           Source = "retry-after-ms"
	SourceRetryAfter             Source = "retry-after"
	SourceRetryInfo              Source = "retry-info" // Gemini google.rpc.RetryInfo.retryDelay
	SourceMessage                Source = "message"    // a wait written in the error text
	SourceResetRequests          Source = "x-ratelimit-reset-requests"
	SourceResetTokens            Source = "x-ratelimit-reset-tokens"
	SourceAnthropicRequestsReset Source = "anthropic-ratelimit-requests-reset"
	SourceAnthropicTokensReset   Source = "anthropic-ratelimit-tokens-reset"
	SourceAnthropicInputTokens   Source = "anthropic-ratelimit-input-tokens-reset"
	SourceAnthropicOutputTokens  Source = "anthropic-ratelimit-output-tokens-reset"
	SourceResetEpoch             Source = "x-ratelimit-reset" // epoch seconds or milliseconds
	SourceBackoff                Source = "backoff"           // no usable hint: the policy's backoff
	SourceNone                   Source = ""                  // no hint
)

// maxWait is where stated waits saturate: a day is beyond any retry.
const maxWait = 24 * time.Hour

const (
	retryAfterMSHeader = "Retry-After-Ms"
	retryAfterHeader   = "Retry-After"
	dateHeader         = "Date"
)

// A Hint is a wait a provider asked for. The zero Hint means none.
type Hint struct {
	// Wait is how long to wait from the response's time, at least 0 and at
	// most 24h (longer stated waits saturate at 24h).
	Wait time.Duration
	// Source is where Wait came from; SourceNone when there is no hint.
	Source Source
}

// Valid reports whether h holds a usable wait.
func (h Hint) Valid() bool { return h.Source != SourceNone }

// ParseHint returns the wait o asks for, measured from the response's Date
// header when it has a valid one, else from now. Sources are tried in this
// order and the first usable one wins: retry-after-ms (an explicit 0
// counts), retry-after (delay-seconds, fractions accepted, or an HTTP-date
// in any RFC 9110 form; a past date means 0), Gemini RetryInfo, a wait
// written in the error message, then the rate-limit reset headers of the
// windows that are exhausted (remaining 0). Negative, NaN, infinite and
// unparsable values are ignored; values above 24h saturate at 24h.
func ParseHint(o Outcome, now time.Time) Hint {
	return parseHint(o.Header, parseBody(o.Body), now)
}

func parseHint(h http.Header, eb *errorBody, now time.Time) Hint {
	base := responseTime(h, now)
	if d, ok := parseMillis(h.Get(retryAfterMSHeader)); ok {
		return Hint{d, SourceRetryAfterMS}
	}
	if d, ok := parseRetryAfter(h.Get(retryAfterHeader), base); ok {
		return Hint{d, SourceRetryAfter}
	}
	if d, ok := parseRetryDelay(eb.retryDelay); ok {
		return Hint{d, SourceRetryInfo}
	}
	if d, ok := parseMessageWait(eb.message + " " + eb.upstream); ok {
		return Hint{d, SourceMessage}
	}
	return ParseLimits(h, now).exhaustedWait(eb)
}

// maxDateSkew bounds how far a response's Date header may be from the
// clock and still be trusted: the times in a response are measured from its
// Date, so that a server with a skewed clock is read correctly, but an
// absurd Date (a year off) would turn any HTTP-date hint into 0 or 24h.
const maxDateSkew = 15 * time.Minute

// responseTime is the response's Date header when it is valid and within
// maxDateSkew of now; otherwise now.
func responseTime(h http.Header, now time.Time) time.Time {
	t, err := http.ParseTime(h.Get(dateHeader))
	if err != nil || t.Before(now.Add(-maxDateSkew)) || t.After(now.Add(maxDateSkew)) {
		return now
	}
	return t
}

// seconds converts a count of unit to a Duration, rejecting negative, NaN
// and infinite values and saturating at maxWait.
func seconds(v float64, unit time.Duration) (time.Duration, bool) {
	if math.IsNaN(v) || v < 0 {
		return 0, false
	}
	if v*float64(unit) >= float64(maxWait) { // also +Inf
		return maxWait, true
	}
	return time.Duration(v * float64(unit)), true
}

// parseNumber parses an unsigned decimal number: digits with an optional
// fraction and an optional exponent ("12", "1.5", ".5", "1e30", "2.5E-3").
// Signs, hex, "Inf" and "NaN" are refused. A number too large for a
// float64 reads as +Inf, so that, like a 400-digit integer, it saturates
// wherever it is used.
func parseNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	digits := strings.Replace(mant, ".", "", 1)
	if digits == "" || !allDigits(digits) {
		return 0, false
	}
	if hasExp {
		if exp != "" && (exp[0] == '+' || exp[0] == '-') {
			exp = exp[1:]
		}
		if exp == "" || !allDigits(exp) {
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil || isRangeErr(err)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func parseMillis(s string) (time.Duration, bool) {
	v, ok := parseNumber(s)
	if !ok {
		return 0, false
	}
	return seconds(v, time.Millisecond)
}

// parseRetryAfter parses a Retry-After value: delay-seconds or an HTTP-date
// measured from base.
func parseRetryAfter(s string, base time.Time) (time.Duration, bool) {
	if v, ok := parseNumber(s); ok {
		return seconds(v, time.Second)
	}
	t, err := http.ParseTime(strings.TrimSpace(s))
	if err != nil {
		return 0, false
	}
	return until(t, base), true
}

// until is t−base, at least 0 and at most maxWait.
func until(t, base time.Time) time.Duration {
	if !t.After(base) {
		return 0
	}
	if t.Sub(base) > maxWait || t.After(base.Add(maxWait)) {
		return maxWait
	}
	return t.Sub(base)
}

// parseRetryDelay parses a protobuf Duration in its JSON forms: "37s",
// "1.250s", or {"seconds": 37, "nanos": 0}.
func parseRetryDelay(raw json.RawMessage) (time.Duration, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		v, ok := parseNumber(strings.TrimSuffix(strings.TrimSpace(s), "s"))
		if !ok || !strings.HasSuffix(s, "s") {
			return 0, false
		}
		return seconds(v, time.Second)
	}
	var d struct {
		Seconds json.Number `json:"seconds"`
		Nanos   json.Number `json:"nanos"`
	}
	if json.Unmarshal(raw, &d) != nil || d.Seconds == "" {
		return 0, false
	}
	sec, ok := parseNumber(string(d.Seconds))
	nanos := 0.0
	if d.Nanos != "" {
		var okNanos bool
		if nanos, okNanos = parseNumber(string(d.Nanos)); !okNanos {
			return 0, false
		}
	}
	if !ok {
		return 0, false
	}
	return seconds(sec+nanos/1e9, time.Second)
}

// messageWait finds waits written in error text: "Please try again in
// 1.146s", "Please retry after 6 seconds", "retry in 20.508s", "try again
// in 6m0s", "try again in 84ms".
var messageWait = regexp.MustCompile(`(?i)(?:try again|retry)(?: in| after)\s+((?:\d*\.?\d+(?:e[+-]?\d+)?\s*[a-zµμ]+\s*)+)`)

// waitPart is one number-and-unit piece of a written wait ("1.5s", "6m",
// "20 seconds"); its number has parseNumber's form.
var waitPart = regexp.MustCompile(`(?i)(\d*\.?\d+(?:e[+-]?\d+)?)\s*([a-zµμ]+)`)

var waitUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "μs": time.Microsecond,
	"ms": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
}

// goUnits are the units of a Go duration ("6m0s", "1.146s", "12ms").
var goUnits = map[string]bool{"ns": true, "us": true, "µs": true, "μs": true, "ms": true, "s": true, "m": true, "h": true}

// addWait adds v units to total, saturating at maxWait like every stated
// wait.
func addWait(total time.Duration, v string, unit time.Duration) time.Duration {
	f, _ := parseNumber(v) // the patterns only match numbers it accepts
	d, _ := seconds(f, unit)
	return min(total+d, maxWait)
}

// parseGoDuration parses a Go duration without sign ("6m0s", "1.146s",
// "12ms", "1e3s"), saturating at maxWait instead of overflowing.
func parseGoDuration(s string) (time.Duration, bool) {
	var total time.Duration
	end := 0
	for _, m := range waitPart.FindAllStringSubmatchIndex(s, -1) {
		num, unit := s[m[2]:m[3]], s[m[4]:m[5]]
		if m[0] != end || m[3] != m[4] || !goUnits[unit] {
			return 0, false // a gap, a space or an unknown unit
		}
		total, end = addWait(total, num, waitUnits[unit]), m[1]
	}
	return total, end > 0 && end == len(s)
}

func parseMessageWait(msg string) (time.Duration, bool) {
	m := messageWait.FindStringSubmatch(msg)
	if m == nil {
		return 0, false
	}
	var total time.Duration
	found := false
	for _, p := range waitPart.FindAllStringSubmatch(m[1], -1) {
		unit, ok := waitUnits[strings.ToLower(p[2])]
		if !ok {
			break
		}
		total, found = addWait(total, p[1], unit), true
	}
	return total, found
}
