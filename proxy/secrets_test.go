package proxy_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// canary is an API key that must appear nowhere but in what the client and
// the upstream exchange.
const canary = "sk-proj-CANARY0123456789abcdefCANARY"

// A key reaches the upstream unchanged however it is sent, and appears in
// no span, metric, log line or X-Dynretry-* header, also when the upstream
// echoes it in an error or the upstream's URL (Gemini's ?key=) is in a
// connection error.
func TestCredentialsNeverLeak(t *testing.T) {
	up := newUpstream(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n % 3 {
		case 0:
			status(401, `{"error":{"message":"Incorrect API key provided: `+canary+`. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}`)(n, w, r)
		case 1:
			status(429, `{"error":{"message":"Rate limit reached for key `+canary+`","type":"requests"}}`, "Retry-After-Ms", "10")(n, w, r)
		default:
			ok(n, w, r)
		}
	})
	for _, cohort := range [][]string{treatment, control} {
		f := start(t, "", append([]string{
			"DYNRETRY_PROXY__UPSTREAMS__OPENAI=" + up.URL,
			"DYNRETRY_PROXY__UPSTREAMS__ANTHROPIC=" + up.URL,
			"DYNRETRY_PROXY__UPSTREAMS__GEMINI=http://127.0.0.1:1", // refused: the URL with ?key= is in the error
		}, cohort...)...)
		var headers []string
		send := func(path string, header ...string) {
			req, err := http.NewRequest(http.MethodPost, f.url+path, strings.NewReader(chatBody))
			require.NoError(t, err)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			req.Header.Set("X-Autopack-Run-Id", "run-canary")
			resp, err := f.client.Do(req)
			require.NoError(t, err)
			read(t, resp)
			for k, vs := range resp.Header {
				if strings.HasPrefix(k, "X-Dynretry-") {
					headers = append(headers, k+": "+strings.Join(vs, ","))
				}
			}
		}
		for range 3 {
			send("/openai/v1/chat/completions", "Authorization", "Bearer "+canary)
			send("/anthropic/v1/messages", "X-Api-Key", canary, "Anthropic-Version", "2023-06-01")
		}
		send("/gemini/v1beta/models/gemini-2.5-flash:generateContent?key="+canary, "X-Stainless-Timeout", "1")
		send("/gemini/v1beta/models/gemini-2.5-flash:generateContent", "X-Goog-Api-Key", canary, "X-Stainless-Timeout", "1")

		require.NotEmpty(t, headers)
		assert.NotContains(t, strings.Join(headers, "\n"), "CANARY")
		dump := f.dump(t)
		assert.Contains(t, dump, "dynretry.attempt", "the dump holds the spans")
		assert.Contains(t, dump, "dynretry.attempts", "and the metrics")
		assert.Contains(t, dump, "no response to return", "and the log")
		assert.NotContains(t, dump, "CANARY")
	}
	for _, r := range up.requests() {
		if r.Path == "/v1/messages" {
			assert.Equal(t, canary, r.Header.Get("X-Api-Key"))
		} else {
			assert.Equal(t, "Bearer "+canary, r.Header.Get("Authorization"))
		}
	}
}
