package retry

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

const date = "Fri, 27 Nov 2026 08:00:00 GMT" // t0 as a Date header

func TestParseHint(t *testing.T) {
	const rateLimited = `{"error":{"message":"Rate limited","code":"rate_limit_exceeded"}}`
	retryInfo := func(delay string) string {
		return `{"error":{"code":429,"message":"Resource exhausted.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":` + delay + `}]}}`
	}
	message := func(m string) string { return `{"error":{"message":"` + m + `"}}` }
	none := Hint{}
	tests := map[string]struct {
		o    Outcome
		now  time.Time // t0 unless set
		want Hint
	}{
		// retry-after-ms
		"ms zero counts":          {response(429, rateLimited, "Date", date, "retry-after-ms", "0", "retry-after", "3"), t0, Hint{0, SourceRetryAfterMS}},
		"ms fraction":             {response(429, rateLimited, "retry-after-ms", "1.5"), t0, Hint{1500 * time.Microsecond, SourceRetryAfterMS}},
		"ms spaces":               {response(429, rateLimited, "retry-after-ms", " 250 "), t0, Hint{250 * time.Millisecond, SourceRetryAfterMS}},
		"ms negative ignored":     {response(429, rateLimited, "retry-after-ms", "-1", "retry-after", "3"), t0, Hint{3 * time.Second, SourceRetryAfter}},
		"ms NaN ignored":          {response(429, rateLimited, "retry-after-ms", "NaN"), t0, none},
		"ms Inf ignored":          {response(429, rateLimited, "retry-after-ms", "Inf"), t0, none},
		"ms exponent":             {response(429, rateLimited, "retry-after-ms", "1e3"), t0, Hint{time.Second, SourceRetryAfterMS}},
		"ms huge exponent":        {response(429, rateLimited, "retry-after-ms", "1e300"), t0, Hint{24 * time.Hour, SourceRetryAfterMS}},
		"ms exponent past float":  {response(429, rateLimited, "retry-after-ms", "1e400"), t0, Hint{24 * time.Hour, SourceRetryAfterMS}},
		"ms tiny exponent":        {response(429, rateLimited, "retry-after-ms", "5E-400"), t0, Hint{0, SourceRetryAfterMS}},
		"ms bare exponent":        {response(429, rateLimited, "retry-after-ms", "1e"), t0, none},
		"ms signed exponent only": {response(429, rateLimited, "retry-after-ms", "e5"), t0, none},
		"ms hex rejected":         {response(429, rateLimited, "retry-after-ms", "0x10"), t0, none},
		"ms plus rejected":        {response(429, rateLimited, "retry-after-ms", "+5"), t0, none},
		"ms two dots rejected":    {response(429, rateLimited, "retry-after-ms", "1.2.3"), t0, none},
		"ms lone dot rejected":    {response(429, rateLimited, "retry-after-ms", "."), t0, none},
		"ms huge saturates":       {response(429, rateLimited, "retry-after-ms", "99999999999999999999999999"), t0, Hint{24 * time.Hour, SourceRetryAfterMS}},
		"ms out of float range":   {response(429, rateLimited, "retry-after-ms", "1"+zeros(400)), t0, Hint{24 * time.Hour, SourceRetryAfterMS}},
		"ms exactly a day":        {response(429, rateLimited, "retry-after-ms", "86400000"), t0, Hint{24 * time.Hour, SourceRetryAfterMS}},
		"ms just below a day":     {response(429, rateLimited, "retry-after-ms", "86399999"), t0, Hint{24*time.Hour - time.Millisecond, SourceRetryAfterMS}},
		// retry-after: delay-seconds
		"seconds":          {response(429, rateLimited, "retry-after", "3"), t0, Hint{3 * time.Second, SourceRetryAfter}},
		"seconds fraction": {response(429, rateLimited, "retry-after", "1.5"), t0, Hint{1500 * time.Millisecond, SourceRetryAfter}},
		"seconds zero":     {response(429, rateLimited, "retry-after", "0"), t0, Hint{0, SourceRetryAfter}},
		"seconds negative": {response(429, rateLimited, "retry-after", "-5"), t0, none},
		"seconds garbage":  {response(429, rateLimited, "retry-after", "soon"), t0, none},
		"seconds huge":     {response(429, rateLimited, "retry-after", "99999999999999999999"), t0, Hint{24 * time.Hour, SourceRetryAfter}},
		"seconds exponent": {response(429, rateLimited, "retry-after", "3e1"), t0, Hint{30 * time.Second, SourceRetryAfter}},
		"seconds 1e30":     {response(429, rateLimited, "retry-after", "1e30"), t0, Hint{24 * time.Hour, SourceRetryAfter}},
		"seconds -1e30":    {response(429, rateLimited, "retry-after", "-1e30"), t0, none},
		// retry-after: HTTP-date in the three forms, against Date
		"date rfc1123":                {response(429, rateLimited, "Date", date, "retry-after", "Fri, 27 Nov 2026 08:00:09 GMT"), ts(100), Hint{9 * time.Second, SourceRetryAfter}},
		"date rfc850":                 {response(429, rateLimited, "Date", date, "retry-after", "Friday, 27-Nov-26 08:00:09 GMT"), ts(100), Hint{9 * time.Second, SourceRetryAfter}},
		"date asctime":                {response(429, rateLimited, "Date", date, "retry-after", "Fri Nov 27 08:00:09 2026"), ts(100), Hint{9 * time.Second, SourceRetryAfter}},
		"date asctime padded day":     {response(429, rateLimited, "Date", "Sat, 07 Nov 2026 08:00:00 GMT", "retry-after", "Sat Nov  7 08:00:04 2026"), time.Date(2026, 11, 7, 8, 0, 0, 0, time.UTC), Hint{4 * time.Second, SourceRetryAfter}},
		"date Date in rfc850":         {response(429, rateLimited, "Date", "Friday, 27-Nov-26 08:00:00 GMT", "retry-after", "Fri, 27 Nov 2026 08:00:05 GMT"), ts(100), Hint{5 * time.Second, SourceRetryAfter}},
		"date without Date":           {response(429, rateLimited, "retry-after", "Fri, 27 Nov 2026 08:00:09 GMT"), ts(2), Hint{7 * time.Second, SourceRetryAfter}},
		"date invalid Date":           {response(429, rateLimited, "Date", "yesterday", "retry-after", "Fri, 27 Nov 2026 08:00:09 GMT"), ts(4), Hint{5 * time.Second, SourceRetryAfter}},
		"date past":                   {response(429, rateLimited, "Date", date, "retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"), t0, Hint{0, SourceRetryAfter}},
		"date equal":                  {response(429, rateLimited, "Date", date, "retry-after", date), t0, Hint{0, SourceRetryAfter}},
		"date past against now":       {response(429, rateLimited, "retry-after", "Fri, 27 Nov 2026 08:00:09 GMT"), ts(60), Hint{0, SourceRetryAfter}},
		"date far future":             {response(429, rateLimited, "Date", date, "retry-after", "Fri, 27 Nov 2099 08:00:00 GMT"), t0, Hint{24 * time.Hour, SourceRetryAfter}},
		"date against an absurd Date": {response(429, rateLimited, "Date", "Mon, 01 Jan 9999 00:00:00 GMT", "retry-after", "Fri, 27 Nov 2026 08:00:09 GMT"), t0, Hint{9 * time.Second, SourceRetryAfter}},
		"date against a Date 1h off":  {response(429, rateLimited, "Date", "Fri, 27 Nov 2026 07:00:00 GMT", "retry-after", "Fri, 27 Nov 2026 08:00:09 GMT"), t0, Hint{9 * time.Second, SourceRetryAfter}},
		"date bad form":               {response(429, rateLimited, "Date", date, "retry-after", "2026-11-27T08:00:09Z"), t0, none},
		// Gemini RetryInfo
		"retryinfo seconds":       {response(429, retryInfo(`"37s"`)), t0, Hint{37 * time.Second, SourceRetryInfo}},
		"retryinfo fraction":      {response(429, retryInfo(`"1.250s"`)), t0, Hint{1250 * time.Millisecond, SourceRetryInfo}},
		"retryinfo object":        {response(429, retryInfo(`{"seconds":"3","nanos":500000000}`)), t0, Hint{3500 * time.Millisecond, SourceRetryInfo}},
		"retryinfo object number": {response(429, retryInfo(`{"seconds":3}`)), t0, Hint{3 * time.Second, SourceRetryInfo}},
		"retryinfo object huge":   {response(429, retryInfo(`{"seconds":"99999999999"}`)), t0, Hint{24 * time.Hour, SourceRetryInfo}},
		"retryinfo garbage":       {response(429, retryInfo(`"soon"`)), t0, none},
		"retryinfo no unit":       {response(429, retryInfo(`"37"`)), t0, none},
		"retryinfo negative":      {response(429, retryInfo(`"-3s"`)), t0, none},
		"retryinfo number":        {response(429, retryInfo(`37`)), t0, none},
		"retryinfo null":          {response(429, retryInfo(`null`)), t0, none},
		"retryinfo only nanos":    {response(429, retryInfo(`{"nanos":5}`)), t0, none},
		"retryinfo negative secs": {response(429, retryInfo(`{"seconds":"-1"}`)), t0, none},
		"retryinfo negative nano": {response(429, retryInfo(`{"seconds":"1","nanos":-1}`)), t0, none},
		"retryinfo bad nanos":     {response(429, retryInfo(`{"seconds":"1","nanos":"x"}`)), t0, none},
		"retryinfo list":          {response(429, retryInfo(`[1]`)), t0, none},
		"retryinfo in array":      {response(429, `[`+retryInfo(`"2s"`)+`]`), t0, Hint{2 * time.Second, SourceRetryInfo}},
		// a wait written in the message
		"message try again":     {response(429, message("Please try again in 1.146s. Visit https://x")), t0, Hint{1146 * time.Millisecond, SourceMessage}},
		"message retry after":   {response(429, message("Please retry after 6 seconds.")), t0, Hint{6 * time.Second, SourceMessage}},
		"message retry in":      {response(429, message("Quota exceeded. retry in 20.508s")), t0, Hint{20508 * time.Millisecond, SourceMessage}},
		"message minutes":       {response(429, message("Please try again in 6m0s.")), t0, Hint{6 * time.Minute, SourceMessage}},
		"message millis":        {response(429, message("Please try again in 84ms.")), t0, Hint{84 * time.Millisecond, SourceMessage}},
		"message no unit":       {response(429, message("Please try again in 5")), t0, none},
		"message later":         {response(429, message("Please try again later.")), t0, none},
		"message upstream":      {response(429, `{"error":{"message":"Provider returned error","metadata":{"raw":"rate limited; retry in 3s"}}}`), t0, Hint{3 * time.Second, SourceMessage}},
		"message non-json body": {response(429, "Too many requests. Try again in 2 seconds."), t0, Hint{2 * time.Second, SourceMessage}},
		// precedence
		"retry-after beats retryinfo": {response(429, retryInfo(`"37s"`), "retry-after", "5"), t0, Hint{5 * time.Second, SourceRetryAfter}},
		"retryinfo beats message":     {response(429, `{"error":{"message":"try again in 9s","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2s"}]}}`), t0, Hint{2 * time.Second, SourceRetryInfo}},
		"message beats resets": {response(429, message("Please try again in 1s"),
			"x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "30s"), t0, Hint{time.Second, SourceMessage}},
		"nothing":             {response(429, rateLimited), t0, none},
		"nil header nil body": {Outcome{Status: 429}, t0, none},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := ParseHint(tt.o, tt.now)
			assert.Equal(t, tt.want, got, "ParseHint")
			assert.Equal(t, tt.want.Source != SourceNone, got.Valid(), "Valid()")
		})
	}
}

func zeros(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '0'
	}
	return string(b)
}

// TestParseHintExhaustedWindows checks the estimate from rate-limit windows
// that are exhausted, when nothing else gave a wait.
func TestParseHintExhaustedWindows(t *testing.T) {
	const noWait = `{"error":{"message":"Rate limit reached on tokens per min (TPM): Limit 30000, Used 30000, Requested 1200."}}`
	tests := map[string]struct {
		o    Outcome
		want Hint
	}{
		"requests: Until/Limit": {response(429, `{}`,
			"x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "1m0s"),
			Hint{time.Second, SourceResetRequests}},
		"tokens: Requested·Until/Limit": {response(429, noWait,
			"x-ratelimit-limit-tokens", "30000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "60s"),
			Hint{2400 * time.Millisecond, SourceResetTokens}},
		"tokens without Requested: full reset": {response(429, `{}`,
			"x-ratelimit-limit-tokens", "30000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "6m0s"),
			Hint{6 * time.Minute, SourceResetTokens}},
		"requested above limit: full reset": {response(429, `{"error":{"message":"Limit 1000, Requested 5000."}}`,
			"x-ratelimit-limit-tokens", "1000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "12ms"),
			Hint{12 * time.Millisecond, SourceResetTokens}},
		"no limit: full reset": {response(429, `{}`,
			"x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "59.998s"),
			Hint{59998 * time.Millisecond, SourceResetRequests}},
		"remaining not sent counts as exhausted": {response(429, `{}`, "x-ratelimit-reset-requests", "20"),
			Hint{20 * time.Second, SourceResetRequests}},
		"window with room: no hint": {response(429, `{}`,
			"x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "5", "x-ratelimit-reset-requests", "1m0s"),
			Hint{}},
		"no reset: no hint": {response(429, `{}`, "x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "0"),
			Hint{}},
		"longest window wins": {response(429, noWait,
			"x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "1m0s",
			"x-ratelimit-limit-tokens", "30000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "60s"),
			Hint{2400 * time.Millisecond, SourceResetTokens}},
		"anthropic input tokens RFC 3339": {response(429, `{}`, "Date", date,
			"anthropic-ratelimit-input-tokens-limit", "80000", "anthropic-ratelimit-input-tokens-remaining", "0",
			"anthropic-ratelimit-input-tokens-reset", "2026-11-27T08:00:14Z"),
			Hint{14 * time.Second, SourceAnthropicInputTokens}},
		"anthropic requests RFC 3339": {response(429, `{}`, "Date", date,
			"anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "0",
			"anthropic-ratelimit-requests-reset", "2026-11-27T08:01:00Z"),
			Hint{1200 * time.Millisecond, SourceAnthropicRequestsReset}},
		"anthropic output tokens past reset": {response(429, `{}`, "Date", date,
			"anthropic-ratelimit-output-tokens-remaining", "0", "anthropic-ratelimit-output-tokens-reset", "2026-11-27T07:59:00Z"),
			Hint{0, SourceAnthropicOutputTokens}},
		"anthropic tokens reset": {response(429, `{}`, "Date", date,
			"anthropic-ratelimit-tokens-remaining", "0", "anthropic-ratelimit-tokens-reset", "2026-11-27T08:00:03.5Z"),
			Hint{3500 * time.Millisecond, SourceAnthropicTokensReset}},
		"epoch seconds": {response(429, `{}`, "Date", date,
			"x-ratelimit-limit", "100", "x-ratelimit-remaining", "0", "x-ratelimit-reset", strconv.FormatInt(t0.Add(50*time.Second).Unix(), 10)),
			Hint{500 * time.Millisecond, SourceResetEpoch}},
		"epoch milliseconds": {response(429, `{}`, "Date", date,
			"x-ratelimit-remaining", "0", "x-ratelimit-reset", strconv.FormatInt(t0.Add(1500*time.Millisecond).UnixMilli(), 10)),
			Hint{1500 * time.Millisecond, SourceResetEpoch}},
		"small delta": {response(429, `{}`, "x-ratelimit-remaining", "0", "x-ratelimit-reset", "42"),
			Hint{42 * time.Second, SourceResetEpoch}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tt.want, ParseHint(tt.o, t0), "ParseHint")
		})
	}
}

func TestParseMillis(t *testing.T) {
	tests := map[string]struct {
		in   string
		want time.Duration
		ok   bool
	}{
		"zero":     {"0", 0, true},
		"1.5":      {"1.5", 1500 * time.Microsecond, true},
		"-1":       {"-1", 0, false},
		"NaN":      {"NaN", 0, false},
		"1e3":      {"1e3", time.Second, true},
		"1e300":    {"1e300", 24 * time.Hour, true},
		"empty":    {"", 0, false},
		"huge":     {"1" + zeros(30), 24 * time.Hour, true},
		"trailing": {"5ms", 0, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := parseMillis(tt.in)
			assert.Equal(t, tt.want, got, "parseMillis(%q)", tt.in)
			assert.Equal(t, tt.ok, ok, "parseMillis(%q) ok", tt.in)
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := map[string]struct {
		in   string
		want time.Duration
		ok   bool
	}{
		"seconds":       {"120", 2 * time.Minute, true},
		"fraction":      {"0.25", 250 * time.Millisecond, true},
		"padded":        {"  2  ", 2 * time.Second, true},
		"rfc1123":       {"Fri, 27 Nov 2026 08:00:30 GMT", 30 * time.Second, true},
		"rfc850":        {"Friday, 27-Nov-26 08:00:30 GMT", 30 * time.Second, true},
		"asctime":       {"Fri Nov 27 08:00:30 2026", 30 * time.Second, true},
		"past":          {"Thu, 26 Nov 2026 08:00:30 GMT", 0, true},
		"a day and one": {"Sat, 28 Nov 2026 08:00:01 GMT", 24 * time.Hour, true},
		"negative":      {"-1", 0, false},
		"empty":         {"", 0, false},
		"garbage":       {"in a bit", 0, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, t0)
			assert.Equal(t, tt.want, got, "parseRetryAfter(%q)", tt.in)
			assert.Equal(t, tt.ok, ok, "parseRetryAfter(%q) ok", tt.in)
		})
	}
}

func TestParseRetryDelay(t *testing.T) {
	tests := map[string]struct {
		in   string
		want time.Duration
		ok   bool
	}{
		"37s":             {`"37s"`, 37 * time.Second, true},
		"1.250s":          {`"1.250s"`, 1250 * time.Millisecond, true},
		"0s":              {`"0s"`, 0, true},
		"seconds nanos":   {`{"seconds":"3","nanos":500000000}`, 3500 * time.Millisecond, true},
		"numbers":         {`{"seconds":1,"nanos":250000000}`, 1250 * time.Millisecond, true},
		"no nanos":        {`{"seconds":"4"}`, 4 * time.Second, true},
		"garbage":         {`"soon"`, 0, false},
		"only s":          {`"s"`, 0, false},
		"no unit":         {`"37"`, 0, false},
		"ms unit":         {`"37ms"`, 0, false},
		"negative":        {`"-1s"`, 0, false},
		"negative nanos":  {`{"seconds":"1","nanos":-5}`, 0, false},
		"no seconds":      {`{"nanos":5}`, 0, false},
		"bad seconds":     {`{"seconds":"x"}`, 0, false},
		"huge":            {`"99999999999s"`, 24 * time.Hour, true},
		"exponent":        {`"1e20s"`, 24 * time.Hour, true},
		"small exponent":  {`"1.5e1s"`, 15 * time.Second, true},
		"number 1e400":    {`{"seconds":1e400}`, 24 * time.Hour, true},
		"400 digits":      {`{"seconds":` + "1" + zeros(400) + `}`, 24 * time.Hour, true},
		"negative number": {`{"seconds":-1e3}`, 0, false},
		"empty":           {``, 0, false},
		"null":            {`null`, 0, false},
		"array":           {`[]`, 0, false},
		"bool":            {`true`, 0, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := parseRetryDelay(json.RawMessage(tt.in))
			assert.Equal(t, tt.want, got, "parseRetryDelay(%s)", tt.in)
			assert.Equal(t, tt.ok, ok, "parseRetryDelay(%s) ok", tt.in)
		})
	}
}

func TestParseMessageWait(t *testing.T) {
	tests := map[string]struct {
		in   string
		want time.Duration
		ok   bool
	}{
		"try again in 1.146s":    {"Please try again in 1.146s.", 1146 * time.Millisecond, true},
		"retry after 6 seconds":  {"Please retry after 6 seconds.", 6 * time.Second, true},
		"retry in 20.508s":       {"retry in 20.508s", 20508 * time.Millisecond, true},
		"try again in 6m0s":      {"try again in 6m0s", 6 * time.Minute, true},
		"try again in 84ms":      {"try again in 84ms", 84 * time.Millisecond, true},
		"groq 5m38.592s":         {"Please try again in 5m38.592s.", 5*time.Minute + 38592*time.Millisecond, true},
		"retry after 1 second":   {"Please retry after 1 second.", time.Second, true},
		"upper case":             {"TRY AGAIN IN 2 Minutes", 2 * time.Minute, true},
		"spaced parts":           {"try again in 2h 30m", 2*time.Hour + 30*time.Minute, true},
		"no unit":                {"Please try again in 5", 0, false},
		"no number":              {"Please try again later.", 0, false},
		"unknown unit":           {"try again in 3 days", 0, false},
		"unknown unit after one": {"try again in 3s and 4 apples", 3 * time.Second, true},
		"saturates":              {"try again in 99999999 hours", 24 * time.Hour, true},
		"sum saturates":          {"try again in 23h 23h 23h", 24 * time.Hour, true},
		"empty":                  {"", 0, false},
		"no phrase":              {"wait 5s", 0, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := parseMessageWait(tt.in)
			assert.Equal(t, tt.want, got, "parseMessageWait(%q)", tt.in)
			assert.Equal(t, tt.ok, ok, "parseMessageWait(%q) ok", tt.in)
		})
	}
}

// TestNumbersOneWay checks that every source of a wait reads a number the
// same way: exponents are accepted, and anything past 24h saturates there,
// whether written as 400 digits or as 1e300.
func TestNumbersOneWay(t *testing.T) {
	day := 24 * time.Hour
	for _, n := range []string{"1e300", "1e30", "1e20", "1" + zeros(400), "1e400", "99999999999999999999"} {
		t.Run(n, func(t *testing.T) {
			got := map[string]time.Duration{}
			got["retry-after-ms"], _ = parseMillis(n)
			got["retry-after"], _ = parseRetryAfter(n, t0)
			got["reset duration"], _ = parseResetDuration(n)
			got["retry-info string"], _ = parseRetryDelay(json.RawMessage(`"` + n + `s"`))
			got["retry-info number"], _ = parseRetryDelay(json.RawMessage(`{"seconds":` + n + `}`))
			got["message"], _ = parseMessageWait("Please try again in " + n + "s.")
			for src, d := range got {
				assert.Equal(t, day, d, src)
			}
		})
	}
	for _, n := range []string{"-1e30", "1e", "e5", "Inf", "NaN", "0x10", "+5", "1e+-5"} {
		t.Run(n, func(t *testing.T) {
			_, ok := parseNumber(n)
			assert.False(t, ok, "parseNumber(%q) accepted", n)
		})
	}
}
