package telemetry

import (
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedact(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"openai":                {"Incorrect API key provided: " + fakeOpenAIKey + ".", "Incorrect API key provided: [REDACTED]."},
		"openai masked":         {"Incorrect API key provided: sk-proj-****abcd", "Incorrect API key provided: [REDACTED]"},
		"openai masked, tail":   {"Incorrect API key provided: sk-proj-********…fGzz. You can find your API key at …", "Incorrect API key provided: [REDACTED]. You can find your API key at …"},
		"openai masked, dots":   {"key sk-proj-abcdefgh...fGzz rejected", "key [REDACTED] rejected"},
		"anthropic masked":      {"invalid key sk-ant-…****…", "invalid key [REDACTED]"},
		"anthropic masked, mid": {"invalid key sk-ant-api03-…****…Xy9z, check it", "invalid key [REDACTED], check it"},
		"anthropic":             {"key " + fakeAnthropicKey, "key [REDACTED]"},
		"google":                {"API key not valid: " + fakeGoogleKey, "API key not valid: [REDACTED]"},
		"bearer":                {"Authorization: Bearer abc.def-ghi", "Authorization: [REDACTED]"},
		"bearer alone":          {"token Bearer abc.def-ghi", "token [REDACTED]"},
		"key value json":        {`{"api_key": "` + canary + `"}`, `{"api_key": "[REDACTED]"}`},
		"x-api-key":             {"x-api-key=" + canary + " sent", "x-api-key=[REDACTED] sent"},
		"prefixed name":         {"openai_api_key=" + canary, "openai_api_key=[REDACTED]"},
		"password":              {"password: " + canary, "password: [REDACTED]"},
		"query key":             {"POST https://generativelanguage.googleapis.com/v1beta/models/m:generateContent?alt=json&key=" + canary + "#x", "POST https://generativelanguage.googleapis.com/v1beta/models/m:generateContent?alt=json&key=[REDACTED]#x"},
		"token counts stay":     {"max_tokens: 300, input_tokens=12, x-ratelimit-remaining-tokens: 0", "max_tokens: 300, input_tokens=12, x-ratelimit-remaining-tokens: 0"},
		"engine reason":         {"rate_limited (HTTP 429): the server asked for 1.5s (retry-after-ms)", "rate_limited (HTTP 429): the server asked for 1.5s (retry-after-ms)"},
		"hint source":           {"the server asked for 2s (x-ratelimit-reset-tokens)", "the server asked for 2s (x-ratelimit-reset-tokens)"},
		"words with sk-":        {"task-runner disk-quota skill-based", "task-runner disk-quota skill-based"},
		"short sk-":             {"sk-1", "sk-1"},
		"deadline reason":       {"calls to this limit are held for 3s, past the deadline", "calls to this limit are held for 3s, past the deadline"},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, Redact(tc.in))
		})
	}
}

// A request dumped with its headers, as a debugging runner might log it,
// keeps its header names and loses every credential.
func TestRedactHeaders(t *testing.T) {
	req, err := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/chat/completions?key="+canary, strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+fakeOpenAIKey)
	req.Header.Set("X-Api-Key", fakeAnthropicKey)
	req.Header.Set("X-Goog-Api-Key", fakeGoogleKey)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	dump, err := httputil.DumpRequestOut(req, true)
	require.NoError(t, err)
	got := Redact(string(dump))
	assert.NotContains(t, got, canary)
	for _, h := range []string{"Authorization: [REDACTED]", "X-Api-Key: [REDACTED]", "X-Goog-Api-Key: [REDACTED]", "Anthropic-Version: 2023-06-01", "key=[REDACTED]"} {
		assert.Contains(t, got, h)
	}
}
