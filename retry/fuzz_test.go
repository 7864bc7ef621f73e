package retry

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// seedResponses reads every response in testdata/responses.
func seedResponses(f *testing.F) []Outcome {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "responses", "*.http"))
	require.NoError(f, err, "no testdata responses")
	require.NotEmpty(f, paths, "no testdata responses")
	var outs []Outcome
	for _, p := range paths {
		outs = append(outs, readResponse(f, p))
	}
	return outs
}

// checkWait fails unless d is a valid wait: ok and within [0, 24h], or not
// ok and 0.
func checkWait(t *testing.T, what string, d time.Duration, ok bool) {
	t.Helper()
	require.GreaterOrEqual(t, d, time.Duration(0), "%s = %v, %v; want a wait within [0, 24h]", what, d, ok)
	require.LessOrEqual(t, d, maxWait, "%s = %v, %v; want a wait within [0, 24h]", what, d, ok)
	if !ok {
		require.Zero(t, d, "%s = %v, %v; want 0 when not ok", what, d, ok)
	}
}

// resetHeaders are the reset headers of every window.
var resetHeaders = []string{
	"x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "anthropic-ratelimit-requests-reset",
	"anthropic-ratelimit-tokens-reset", "anthropic-ratelimit-input-tokens-reset",
	"anthropic-ratelimit-output-tokens-reset", "x-ratelimit-reset",
}

func FuzzParseHint(f *testing.F) {
	for _, o := range seedResponses(f) {
		reset := ""
		for _, h := range resetHeaders {
			if v := o.Header.Get(h); v != "" {
				reset = v
			}
		}
		f.Add(o.Header.Get("Retry-After-Ms"), o.Header.Get("Retry-After"), o.Header.Get("Date"), reset, o.Body)
	}
	f.Add("1e3", "Fri Nov 27 08:00:09 2026", "Friday, 27-Nov-26 08:00:00 GMT", "1795766400123", []byte(`[{"error":{"details":[{"@type":"google.rpc.RetryInfo","retryDelay":{"seconds":"3","nanos":5}}]}}]`))
	f.Fuzz(func(t *testing.T, ms, ra, date, reset string, body []byte) {
		h := make(http.Header)
		for k, v := range map[string]string{"Retry-After-Ms": ms, "Retry-After": ra, "Date": date} {
			if v != "" {
				h.Set(k, v)
			}
		}
		for _, k := range resetHeaders {
			h.Set(k, reset)
		}
		h.Set("x-ratelimit-remaining-tokens", "0")
		h.Set("x-ratelimit-limit-tokens", "1000")
		o := Outcome{Status: 429, Header: h, Body: body}
		got := ParseHint(o, t0)
		checkWait(t, "ParseHint", got.Wait, got.Valid())
		require.Equal(t, got, ParseHint(o, t0), "ParseHint is not deterministic")
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, o := range seedResponses(f) {
		f.Add(o.Header.Get("Retry-After"))
		f.Add(o.Header.Get("Retry-After-Ms"))
	}
	for _, s := range []string{"1.5", "NaN", "-0", "1e300", "1e30", "2.5E-3", "1e", "1e+-5", "Friday, 27-Nov-26 08:00:09 GMT", "Fri Nov 27 08:00:09 2026", "Sat, 01 Jan 10000 00:00:00 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, t0)
		checkWait(t, "parseRetryAfter", d, ok)
		d, ok = parseMillis(s)
		checkWait(t, "parseMillis", d, ok)
	})
}

func FuzzParseResetDuration(f *testing.F) {
	for _, o := range seedResponses(f) {
		f.Add(o.Header.Get("x-ratelimit-reset-requests"))
		f.Add(o.Header.Get("x-ratelimit-reset-tokens"))
	}
	for _, s := range []string{"6m0s", "59.998s", "12ms", "20", "-1s", "1h1h1h", "2562047h47m16.854775807s", "1e30", "1e3ms", "9999999999999999999h", "1 s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseResetDuration(s)
		checkWait(t, "parseResetDuration", d, ok)
	})
}

func FuzzParseResetTime(f *testing.F) {
	for _, o := range seedResponses(f) {
		for _, h := range resetHeaders[2:] {
			f.Add(o.Header.Get(h))
		}
	}
	for _, s := range []string{"2026-11-27T08:00:14Z", strconv.FormatInt(t0.Unix()+5, 10), strconv.FormatInt(t0.UnixMilli()+5, 10), "30", "0.5", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseResetTime(s, t0)
		checkWait(t, "parseResetTime", d, ok)
		d, ok = parseResetTime(s, time.Time{})
		checkWait(t, "parseResetTime(zero base)", d, ok)
	})
}

func FuzzParseMessageWait(f *testing.F) {
	for _, o := range seedResponses(f) {
		eb := parseBody(o.Body)
		f.Add(eb.message + " " + eb.upstream)
	}
	for _, s := range []string{"Please try again in 1.146s", "try again in 6m0s", "retry after 6 seconds", "try again in 99999999999999999999999h", "retry in 1e20s", "try again in 1e400 minutes"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseMessageWait(s)
		checkWait(t, "parseMessageWait", d, ok)
	})
}

func FuzzParseRetryDelay(f *testing.F) {
	for _, o := range seedResponses(f) {
		f.Add([]byte(parseBody(o.Body).retryDelay))
	}
	for _, s := range []string{`"37s"`, `"1.250s"`, `{"seconds":"3","nanos":500000000}`, `{"seconds":-1}`, `{"seconds":1e300,"nanos":1e300}`, `null`, `"1e20s"`, `{"seconds":1e400}`, `"1e-3s"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, ok := parseRetryDelay(json.RawMessage(raw))
		checkWait(t, "parseRetryDelay", d, ok)
	})
}

func FuzzClassify(f *testing.F) {
	for _, o := range seedResponses(f) {
		f.Add(o.Status, o.Header.Get("x-amzn-ErrorType"), o.Header.Get("x-should-retry"), o.Body)
	}
	f.Add(400, "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", "", []byte(`{"message":"Too many tokens"}`))
	f.Add(429, "", "true", []byte(`[{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}]`))
	f.Add(0, "", "", []byte(nil))
	cfg := DefaultConfig()
	f.Fuzz(func(t *testing.T, status int, errorType, shouldRetry string, body []byte) {
		o := Outcome{Status: status, Header: http.Header{}, Body: body}
		o.Header.Set("x-amzn-ErrorType", errorType)
		o.Header.Set("x-should-retry", shouldRetry)
		c := Classify(o)
		if o.Failed() {
			require.True(t, c.Valid(), "Classify = %q, want a named class", c)
		} else {
			require.Empty(t, c, "Classify(success %d)", status)
		}
		a := Assess(o, t0)
		require.Equal(t, c, a.Class, "Assess class, Classify %q", c)
		checkWait(t, "Assess hint", a.Hint.Wait, a.Hint.Valid())
		require.LessOrEqual(t, len(a.Message), 200+len("…"), "Message bytes: want at most 200 and an ellipsis")
		for attempt := 1; attempt <= 3; attempt++ {
			d := cfg.Decide(Input{Assessment: a, Attempt: attempt, Now: t0, Deadline: ts(30), Budget: -1, Rand: 0.7})
			require.GreaterOrEqual(t, d.Delay, time.Duration(0), "Decide: delay")
			require.LessOrEqual(t, d.Delay, d.DelayMax, "Decide: delay above the range [%v, %v]", d.DelayMin, d.DelayMax)
			require.LessOrEqual(t, t0.Add(d.Delay), ts(30), "Decide: delay %v past the deadline", d.Delay)
			if d.Action == Retry {
				require.GreaterOrEqual(t, d.Delay, d.DelayMin, "Decide: delay below the range [%v, %v]", d.DelayMin, d.DelayMax)
				if a.Hint.Valid() {
					require.GreaterOrEqual(t, d.Delay, a.Hint.Wait, "Decide: delay below the hint")
				}
			}
			require.NotEmpty(t, d.Reason, "Decide: empty reason")
		}
	})
}

func FuzzParseLimits(f *testing.F) {
	for _, o := range seedResponses(f) {
		for _, p := range [][3]string{
			{"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"},
			{"x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"},
			{"anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"},
			{"anthropic-ratelimit-input-tokens-limit", "anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset"},
		} {
			if o.Header.Get(p[2]) != "" {
				f.Add(o.Header.Get(p[0]), o.Header.Get(p[1]), o.Header.Get(p[2]), o.Header.Get("Date"), o.Body)
			}
		}
	}
	f.Add("9223372036854775807", "0", "9223372036854775807", "", []byte(`{"error":{"message":"Limit 1, Requested 9223372036854775807"}}`))
	f.Fuzz(func(t *testing.T, limit, remaining, reset, date string, body []byte) {
		h := http.Header{}
		h.Set("Date", date)
		for _, w := range windowHeaders {
			h.Set(w.limit, limit)
			h.Set(w.remaining, remaining)
			h.Set(w.until, reset)
		}
		ls := ParseLimits(h, t0)
		require.LessOrEqual(t, len(ls), len(windowHeaders), "windows")
		for _, w := range ls {
			require.GreaterOrEqual(t, w.Limit, int64(-1), "window %+v out of range", w)
			require.GreaterOrEqual(t, w.Remaining, int64(-1), "window %+v out of range", w)
			require.GreaterOrEqual(t, w.Until, time.Duration(-1), "window %+v out of range", w)
			require.LessOrEqual(t, w.Until, maxWait, "window %+v out of range", w)
		}
		hint := ls.exhaustedWait(parseBody(body))
		checkWait(t, "exhaustedWait", hint.Wait, hint.Valid())
	})
}

func FuzzEstimateTokens(f *testing.F) {
	for _, o := range seedResponses(f) {
		f.Add(o.Body)
	}
	for _, s := range []string{
		chatBody,
		`{"model":"claude","max_tokens":1024,"system":"Be brief.","messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}`,
		`{"contents":[{"role":"user","parts":[{"text":"Hello"}]}],"generationConfig":{"maxOutputTokens":256}}`,
		`{"max_tokens":9223372036854775807,"prompt":"abcdefgh"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		require.GreaterOrEqual(t, EstimateTokens(body), int64(0), "EstimateTokens")
	})
}
