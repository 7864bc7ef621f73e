package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	const (
		bedrockThrottle = "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
		groqTPD         = `{"error":{"message":"Rate limit reached for model ` + "`llama-3.3-70b-versatile`" + ` in organization ` + "`org_01`" + ` service tier ` + "`on_demand`" + ` on tokens per day (TPD): Limit 100000, Used 99625, Requested 1011. Please try again in 5m38.592s.","type":"tokens","code":"rate_limit_exceeded"}}`
		groqTPM         = `{"error":{"message":"Rate limit reached for model ` + "`llama-3.1-8b-instant`" + ` in organization ` + "`org_01`" + ` service tier ` + "`on_demand`" + ` on tokens per minute (TPM): Limit 6000, Used 5000, Requested 900. Please try again in 9s.","type":"tokens","code":"rate_limit_exceeded"}}`
		geminiPerMinute = `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier"}]}]}}`
		geminiPerDay    = `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"21926s"}]}}`
		// OpenAI's free-tier RPM message ends with a link to the billing
		// page; the limit still refills within a minute.
		openaiRPMBillingLink = `{"error":{"message":"Rate limit reached for gpt-3.5-turbo in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more. You can increase your rate limit by adding a payment method to your account at https://platform.openai.com/account/billing.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	)
	tests := map[string]struct {
		o    Outcome
		want Class
	}{
		"success 200":  {Outcome{Status: 200}, ""},
		"zero outcome": {Outcome{}, ""},
		"redirect 302": {Outcome{Status: 302}, ""},
		"bedrock throttling 400": {response(400, `{"message":"Too many tokens, please wait before trying again."}`,
			"x-amzn-ErrorType", bedrockThrottle), RateLimited},
		"bedrock throttling 429": {response(429, `{"message":"Too many requests, please wait before trying again."}`,
			"x-amzn-ErrorType", bedrockThrottle), RateLimited},
		"bedrock service unavailable": {response(503, `{"message":"Bedrock is unable to process your request."}`,
			"x-amzn-ErrorType", "ServiceUnavailableException:http://internal.amazon.com/coral/com.amazon.bedrock/"), Overloaded},
		"bedrock model timeout": {response(408, `{"message":"Model has timed out in processing the request."}`,
			"x-amzn-ErrorType", "ModelTimeoutException"), Timeout},
		"bedrock access denied": {response(403, `{"message":"You don't have access to the model with the specified model ID."}`,
			"x-amzn-ErrorType", "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/"), Auth},
		"bedrock validation input too long": {response(400, `{"message":"Input is too long for requested model."}`,
			"x-amzn-ErrorType", "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"), ContextLength},
		"bedrock validation other": {response(400, `{"message":"Malformed input request: #: extraneous key [foo] is not permitted"}`,
			"x-amzn-ErrorType", "ValidationException"), InvalidRequest},
		"bedrock quota exceeded":                     {response(400, `{"message":"quota"}`, "x-amzn-ErrorType", "ServiceQuotaExceededException"), QuotaExhausted},
		"bedrock internal":                           {response(500, `{"message":"internal"}`, "x-amzn-ErrorType", "InternalServerException"), ServerError},
		"bedrock unknown type falls through":         {response(429, `{"message":"x"}`, "x-amzn-ErrorType", "SomethingNewException"), RateLimited},
		"too many tokens 400 without header":         {response(400, `{"message":"Too many tokens, please wait before trying again."}`), RateLimited},
		"too many tokens 429 without header":         {response(429, `{"message":"Too many tokens, please wait before trying again."}`), RateLimited},
		"too many tokens 400 mentioning the maximum": {response(400, `{"message":"Too many tokens per minute; the maximum number of tokens allowed will refill."}`), RateLimited},
		"vertex array 429":                           {response(429, `[{"error":{"code":429,"message":"Resource exhausted. Please try again later.","status":"RESOURCE_EXHAUSTED"}}]`), RateLimited},
		"vertex array 503":                           {response(503, `[{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}]`), Overloaded},
		"vertex array 400 context":                   {response(400, `[{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}]`), ContextLength},
		"empty json array":                           {response(400, `[]`), InvalidRequest},
		"gemini 429 per minute":                      {response(429, geminiPerMinute), RateLimited},
		"gemini 429 per day":                         {response(429, geminiPerDay), QuotaExhausted},
		"groq 429 tokens per day":                    {response(429, groqTPD), QuotaExhausted},
		"groq 429 tokens per minute":                 {response(429, groqTPM), RateLimited},
		"openai 429 rpm with billing link":           {response(429, openaiRPMBillingLink), RateLimited},
		"openai 429 billing hard limit":              {response(429, `{"error":{"message":"Billing hard limit has been reached","type":"invalid_request_error","code":"billing_hard_limit_reached"}}`), QuotaExhausted},
		"anthropic credit balance":                   {response(400, `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}`), QuotaExhausted},
		"openrouter 429 upstream":                    {response(429, `{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream.","provider_name":"Google AI Studio"}}}`), RateLimited},
		"openrouter 402 credits":                     {response(402, `{"error":{"message":"This request requires more credits, or fewer max_tokens.","code":402}}`), QuotaExhausted},
		"openrouter 502 upstream":                    {response(502, `{"error":{"message":"Provider returned error","code":502,"metadata":{"raw":"upstream error","provider_name":"Together"}}}`), ServerError},
		"azure 429 call rate limit": {response(429, `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded call rate limit of your current AIServices S0 pricing tier. Please retry after 1 second."}}`,
			"apim-request-id", "abc"), RateLimited},
		"azure 400 content filter":      {response(400, `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400}}`), InvalidRequest},
		"402 plain":                     {response(402, ``), QuotaExhausted},
		"408":                           {response(408, ``), Timeout},
		"504":                           {response(504, `{"error":{"message":"Gateway timeout"}}`), Timeout},
		"524 cloudflare":                {response(524, `error code: 524`), Timeout},
		"502":                           {response(502, `<html><body>Bad Gateway</body></html>`), ServerError},
		"500":                           {response(500, `{"error":{"message":"The server had an error"}}`), ServerError},
		"501":                           {response(501, ``), ServerError},
		"503 plain":                     {response(503, ``), Overloaded},
		"529":                           {response(529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), Overloaded},
		"500 with capacity":             {response(500, `{"error":{"message":"No capacity available for model"}}`), Overloaded},
		"429 overloaded_error":          {response(429, `{"type":"error","error":{"type":"overloaded_error","message":"busy"}}`), Overloaded},
		"404":                           {response(404, `{"error":{"message":"The model does not exist"}}`), InvalidRequest},
		"422":                           {response(422, `{"detail":[{"loc":["body","messages"],"msg":"field required"}]}`), InvalidRequest},
		"409":                           {response(409, ``), Conflict},
		"401":                           {response(401, `{"error":{"message":"Incorrect API key provided"}}`), Auth},
		"403":                           {response(403, ``), Auth},
		"401 mentioning a rate limit":   {response(401, `{"error":{"message":"Invalid key; rate limit tier unknown","code":"rate_limit_exceeded"}}`), Auth},
		"403 too many requests text":    {response(403, `{"error":{"message":"Too many requests from this key: access denied"}}`), Auth},
		"413":                           {response(413, `Request Entity Too Large`), RequestTooLarge},
		"429 requested above limit":     {response(429, `{"error":{"message":"Request too big: Limit 30,000, Requested 34,307."}}`), RequestTooLarge},
		"429 requested below limit":     {response(429, `{"error":{"message":"Limit 30,000, Used 29,000, Requested 3,307."}}`), RateLimited},
		"anthropic 400 prompt too long": {response(400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}`), ContextLength},
		"non-json 429":                  {response(429, `Too Many Requests`), RateLimited},
		"non-json 400":                  {response(400, `<html>Bad Request</html>`), InvalidRequest},
		"non-json 400 slow down":        {response(400, `SlowDown: please slow down`), RateLimited},
		"non-json 503":                  {response(503, `upstream connect error or disconnect/reset before headers`), Overloaded},
		"empty 429":                     {response(429, ``), RateLimited},
		"empty 500":                     {response(500, ``), ServerError},
		"empty 400":                     {response(400, ``), InvalidRequest},
		"nil header and body 429":       {Outcome{Status: 429}, RateLimited},
		"json null body 500":            {response(500, `null`), ServerError},
		"error as string":               {response(400, `{"error":"maximum context length exceeded"}`), ContextLength},
		"err canceled":                  {Outcome{Err: context.Canceled}, Canceled},
		"err wrapped canceled":          {Outcome{Err: fmt.Errorf("post: %w", context.Canceled)}, Canceled},
		"err deadline exceeded":         {Outcome{Err: context.DeadlineExceeded}, Timeout},
		"err net timeout":               {Outcome{Err: &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}}, Timeout},
		"err os deadline":               {Outcome{Err: os.ErrDeadlineExceeded}, Timeout},
		"err econnreset":                {Outcome{Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}, Connection},
		"err econnrefused":              {Outcome{Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}, Connection},
		"err unexpected eof":            {Outcome{Err: io.ErrUnexpectedEOF}, Connection},
		"err dns":                       {Outcome{Err: &net.DNSError{Err: "no such host", Name: "api.example", IsNotFound: true}}, Connection},
		"err plain":                     {Outcome{Err: errors.New("boom")}, Connection},
		"err with status is a response": {Outcome{Status: 500, Err: errors.New("read body")}, ServerError},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tt.want, Classify(tt.o), "Classify")
		})
	}
}

// timeoutErr is a net.Error that timed out.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassRetryable(t *testing.T) {
	want := map[Class]bool{
		RateLimited: true, QuotaExhausted: false, RequestTooLarge: false, Overloaded: true,
		ServerError: true, Timeout: true, Connection: true, Conflict: true, ContextLength: false,
		Auth: false, InvalidRequest: false, Canceled: false,
	}
	require.Len(t, Classes, len(want), "Classes")
	for _, c := range Classes {
		assert.Equal(t, want[c], c.Retryable(), "%s.Retryable()", c)
		assert.True(t, c.Valid(), "%s.Valid()", c)
		assert.Equal(t, c == Overloaded || c == ServerError, c.budgeted(), "%s.budgeted()", c)
	}
	for _, c := range []Class{"", "rate-limited", "RateLimited", "other"} {
		assert.False(t, c.Valid(), "%q.Valid()", c)
		assert.False(t, c.Retryable(), "%q.Retryable()", c)
	}
}

func TestAssessShouldRetry(t *testing.T) {
	tests := map[string]struct {
		value string
		want  string
	}{
		"true":        {"true", "true"},
		"false":       {"false", "false"},
		"upper true":  {" TRUE ", "true"},
		"absent":      {"", ""},
		"garbage":     {"maybe", ""},
		"numeric one": {"1", ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			o := response(400, `{}`)
			if tt.value != "" {
				o.Header.Set("x-should-retry", tt.value)
			}
			assert.Equal(t, tt.want, Assess(o, t0).ShouldRetry, "ShouldRetry")
		})
	}
}

func TestAssessSuccess(t *testing.T) {
	o := Outcome{Status: 200, Header: hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "59", "x-should-retry", "false"), Body: []byte(`{"error":{"message":"not read"}}`)}
	a := Assess(o, t0)
	assert.Empty(t, a.Class, "Assess(200).Class")
	assert.False(t, a.Hint.Valid(), "Assess(200).Hint.Valid(): %v", a.Hint)
	assert.Empty(t, a.Message, "Assess(200).Message")
	assert.Empty(t, a.ShouldRetry, "Assess(200).ShouldRetry")
	if assert.Len(t, a.Limits, 1, "Assess(200).Limits: want one window 60/59") {
		assert.Equal(t, int64(60), a.Limits[0].Limit, "Assess(200).Limits[0].Limit")
		assert.Equal(t, int64(59), a.Limits[0].Remaining, "Assess(200).Limits[0].Remaining")
	}
	assert.Equal(t, OpenAI, a.Provider, "Assess(200).Provider")
}

func TestAssessMessageTruncated(t *testing.T) {
	long := ""
	for len(long) < 300 {
		long += "é" // two bytes: truncation must not split it
	}
	a := Assess(response(400, `{"error":{"message":"`+long+`"}}`), t0)
	assert.LessOrEqual(t, len(a.Message), 200+len("…"), "len(Message)")
	require.True(t, utf8.ValidString(a.Message), "Message %q holds a broken rune", a.Message)
	require.NotContains(t, a.Message, "\uFFFD", "Message holds a broken rune")
	assert.Equal(t, "short", truncate("short", 200), "truncate(short)")
}

func TestDetectProvider(t *testing.T) {
	tests := map[string]struct {
		o    Outcome
		want Provider
	}{
		"bedrock error type":  {response(429, ``, "x-amzn-ErrorType", "ThrottlingException"), Bedrock},
		"bedrock request id":  {response(500, ``, "x-amzn-RequestId", "abc"), Bedrock},
		"anthropic header":    {response(429, ``, "anthropic-ratelimit-requests-limit", "50"), Anthropic},
		"anthropic envelope":  {response(500, `{"type":"error","error":{"type":"api_error","message":"x"}}`), Anthropic},
		"gemini status":       {response(503, `{"error":{"code":503,"status":"UNAVAILABLE"}}`), Gemini},
		"azure apim":          {response(429, `{"error":{"code":"429"}}`, "apim-request-id", "x"), Azure},
		"azure region":        {response(429, ``, "x-ms-region", "East US"), Azure},
		"openrouter upstream": {response(429, `{"error":{"message":"x","metadata":{"raw":"upstream"}}}`), OpenRouter},
		"groq region":         {response(429, ``, "x-groq-region", "us-east-1"), Groq},
		"openai processing":   {response(500, ``, "openai-processing-ms", "12"), OpenAI},
		"openai remaining":    {response(429, ``, "x-ratelimit-remaining-tokens", "0"), OpenAI},
		"nothing distinctive": {response(500, `oops`), Generic},
		"given provider wins": {Outcome{Provider: Groq, Status: 429, Header: hdr("x-amzn-ErrorType", "ThrottlingException")}, Groq},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tt.want, Assess(tt.o, t0).Provider, "Provider")
		})
	}
}

func TestProviderForHost(t *testing.T) {
	tests := map[string]Provider{
		"api.openai.com":                          OpenAI,
		"API.OpenAI.com:443":                      OpenAI,
		"api.anthropic.com":                       Anthropic,
		"generativelanguage.googleapis.com":       Gemini,
		"us-central1-aiplatform.googleapis.com":   Vertex,
		"myres.openai.azure.com":                  Azure,
		"myres.cognitiveservices.azure.com":       Azure,
		"openrouter.ai":                           OpenRouter,
		"api.groq.com":                            Groq,
		"bedrock-runtime.us-east-1.amazonaws.com": Bedrock,
		"bedrock.us-west-2.amazonaws.com":         Bedrock,
		"localhost:8080":                          Generic,
		"api.openai.com.evil.example":             Generic,
		"":                                        Generic,
	}
	for host, want := range tests {
		t.Run(host, func(t *testing.T) {
			assert.Equal(t, want, ProviderForHost(host), "ProviderForHost(%q)", host)
		})
	}
}

func TestParseBody(t *testing.T) {
	big := make([]byte, maxBody+10)
	for i := range big {
		big[i] = 'x'
	}
	tests := map[string]struct {
		body string
		want errorBody
	}{
		"openai": {`{"error":{"message":"m","type":"tokens","code":"rate_limit_exceeded","param":null}}`,
			errorBody{message: "m", kind: "tokens", code: "rate_limit_exceeded"}},
		"anthropic details": {`{"type":"error","error":{"type":"rate_limit_error","message":"m","details":{"error_code":"enforced_spend_limit_reached"}}}`,
			errorBody{envelope: "error", message: "m", kind: "rate_limit_error", detail: "enforced_spend_limit_reached"}},
		"numeric code": {`{"error":{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED"}}`,
			errorBody{message: "m", code: "429", status: "RESOURCE_EXHAUSTED"}},
		"openrouter raw": {`{"error":{"message":"m","code":429,"metadata":{"raw":"upstream says"}}}`,
			errorBody{message: "m", code: "429", upstream: "upstream says"}},
		"bedrock top message":           {`{"message":"Too many tokens"}`, errorBody{message: "Too many tokens"}},
		"error message wins over top":   {`{"message":"top","error":{"message":"inner"}}`, errorBody{message: "inner"}},
		"empty error message keeps top": {`{"message":"top","error":{"message":""}}`, errorBody{message: "top"}},
		"not json":                      {"  plain text \n", errorBody{message: "plain text"}},
		"empty":                         {``, errorBody{}},
		"bool code":                     {`{"error":{"code":true}}`, errorBody{}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := parseBody([]byte(tt.body))
			got.retryDelay, got.quotaIDs = nil, nil
			assert.Equal(t, tt.want, *got, "parseBody")
		})
	}
	t.Run("gemini details", func(t *testing.T) {
		eb := parseBody([]byte(`{"error":{"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"A"},{"quotaId":""},{"quotaId":"B"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"},"junk"]}}`))
		assert.Equal(t, []string{"A", "B"}, eb.quotaIDs, "quotaIDs")
		assert.Equal(t, `"37s"`, string(eb.retryDelay), "retryDelay")
	})
	t.Run("long body read up to maxBody", func(t *testing.T) {
		assert.Len(t, parseBody(big).message, maxBody, "message")
	})
}

func TestResponseErrorMessage(t *testing.T) {
	e := &ResponseError{Status: http.StatusTooManyRequests}
	assert.EqualError(t, e, "retry: HTTP 429 Too Many Requests")
}

func TestOutcomeOf(t *testing.T) {
	re := &ResponseError{Status: 503, Header: hdr("Retry-After", "2"), Body: []byte("x")}
	tests := map[string]struct {
		err  error
		want Outcome
	}{
		"nil":              {nil, Outcome{}},
		"response":         {re, Outcome{Status: 503, Header: re.Header, Body: re.Body}},
		"wrapped response": {fmt.Errorf("call: %w", re), Outcome{Status: 503, Header: re.Header, Body: re.Body}},
		"plain":            {io.EOF, Outcome{Err: io.EOF}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := OutcomeOf(tt.err)
			assert.Equal(t, tt.want.Status, got.Status, "OutcomeOf(%v).Status", tt.err)
			if tt.want.Err == nil {
				assert.NoError(t, got.Err, "OutcomeOf(%v).Err", tt.err)
			} else {
				assert.Same(t, tt.want.Err, got.Err, "OutcomeOf(%v).Err", tt.err)
			}
			assert.Equal(t, string(tt.want.Body), string(got.Body), "OutcomeOf(%v).Body", tt.err)
			assert.Equal(t, tt.want.Header.Get("Retry-After"), got.Header.Get("Retry-After"), "OutcomeOf(%v) Retry-After", tt.err)
			assert.Equal(t, tt.err != nil, got.Failed(), "Failed()")
		})
	}
}

// TestShouldRetryOverrides reads x-should-retry from raw responses through
// Assess and Decide: true retries a 400 with the server_error policy, false
// ends a 503.
func TestShouldRetryOverrides(t *testing.T) {
	cfg := DefaultConfig()
	tests := map[string]struct {
		o        Outcome
		attempt  int
		action   Action
		min, max time.Duration
	}{
		"true on 400":              {response(400, `{"error":{"message":"bad"}}`, "x-should-retry", "true"), 1, Retry, 250 * time.Millisecond, 500 * time.Millisecond},
		"true on 400, 4th attempt": {response(400, `{"error":{"message":"bad"}}`, "x-should-retry", "true"), 4, GiveUp, 250 * time.Millisecond, 500 * time.Millisecond},
		"false on 503":             {response(503, `{"error":{"message":"Service temporarily unavailable"}}`, "x-should-retry", "false"), 1, GiveUp, 0, 0},
		"absent on 400":            {response(400, `{"error":{"message":"bad"}}`), 1, GiveUp, 0, 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			d := cfg.Decide(Input{Assessment: Assess(tt.o, t0), Attempt: tt.attempt, Now: t0, Budget: -1, Rand: 0})
			assert.Equal(t, tt.action, d.Action, "action (%s)", d.Reason)
			assert.Equal(t, tt.min, d.DelayMin, "DelayMin (%s)", d.Reason)
			assert.Equal(t, tt.max, d.DelayMax, "DelayMax (%s)", d.Reason)
		})
	}
}

// TestAssessWindowAndScope checks the window the error text states and the
// scope of an exhausted quota.
func TestAssessWindowAndScope(t *testing.T) {
	msg := func(m string) string { return `{"error":{"message":"` + m + `"}}` }
	windows := map[string]struct {
		body string
		want time.Duration
	}{
		"openai rpm":   {msg("Rate limit reached for gpt-4o on requests per min (RPM): Limit 3"), time.Minute},
		"tokens":       {msg("Rate limit reached on tokens per minute"), time.Minute},
		"anthropic":    {msg("This request would exceed the rate limit of 50,000 input tokens per minute"), time.Minute},
		"itpm":         {msg("ITPM limit reached"), time.Minute},
		"per second":   {msg("Too many requests per second"), time.Second},
		"rps":          {msg("RPS exceeded"), time.Second},
		"per hour":     {msg("limit of 100 requests per hour"), time.Hour},
		"none":         {msg("Rate limited"), 0},
		"not a window": {msg("temporary outage"), 0},
	}
	for name, tt := range windows {
		assert.Equal(t, tt.want, Assess(response(429, tt.body), t0).Window, "%s: Window", name)
	}
	scopes := map[string]struct {
		o    Outcome
		want Scope
	}{
		"openai insufficient_quota":  {response(429, `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","code":"insufficient_quota"}}`), ScopeCredential},
		"anthropic credits":          {response(400, `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low"}}`), ScopeCredential},
		"402":                        {response(402, `{}`), ScopeCredential},
		"openai per day":             {response(429, msg("Rate limit reached for gpt-4o on requests per day (RPD): Limit 200")), ScopeLimit},
		"gemini per model per day":   {response(429, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"quota","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel"}]}]}}`), ScopeLimit},
		"gemini per project per day": {response(429, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"quota","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProject"}]}]}}`), ScopeCredential},
		"bedrock service quota":      {response(400, `{"message":"quota exceeded"}`, "x-amzn-ErrorType", "ServiceQuotaExceededException"), ScopeLimit},
	}
	for name, tt := range scopes {
		a := Assess(tt.o, t0)
		assert.Equal(t, QuotaExhausted, a.Class, "%s: class", name)
		assert.Equal(t, tt.want, a.Scope, "%s: scope", name)
	}
}
