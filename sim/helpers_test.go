package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newProvider returns a Provider for cfg, failing the test on error. Call it
// inside the synctest bubble: the provider's start is time.Now().
func newProvider(t *testing.T, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg)
	require.NoError(t, err, "New")
	return p
}

func openAIClient(h http.Handler) openai.Client {
	return openai.NewClient(
		option.WithBaseURL("http://sim.local/v1"),
		option.WithHTTPClient(&http.Client{Transport: Transport{Handler: h}}),
		option.WithAPIKey("sk-test"),
		option.WithMaxRetries(0),
	)
}

func anthropicClient(h http.Handler) anthropic.Client {
	return anthropic.NewClient(
		aoption.WithBaseURL("http://sim.local"),
		aoption.WithHTTPClient(&http.Client{Transport: Transport{Handler: h}}),
		aoption.WithAPIKey("sk-ant-test"),
		aoption.WithMaxRetries(0),
	)
}

func chatParams(prompt string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	}
}

func messageParams(prompt string, maxTokens int64) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-sim",
		MaxTokens: maxTokens,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
	}
}

// result is a response read in full.
type result struct {
	status int
	header http.Header
	body   string
}

// jsonField returns the value at a dotted path of the body, e.g.
// "error.code".
func (r result) jsonField(t *testing.T, path string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(r.body), &v), "body is not JSON: %s", r.body)
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// post sends body as JSON to path through Transport and reads the response.
// Headers are name/value pairs.
func post(t *testing.T, h http.Handler, path string, body any, headers ...string) result {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://sim.local"+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := (&http.Client{Transport: Transport{Handler: h}}).Do(req)
	require.NoError(t, err, "POST %s", path)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "POST %s: reading body", path)
	return result{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

// chat posts an OpenAI chat completion request with key sk-test.
func chat(t *testing.T, h http.Handler, prompt string, maxTokens int) result {
	t.Helper()
	body := map[string]any{"model": "gpt-4o-mini", "messages": []map[string]any{{"role": "user", "content": prompt}}}
	if maxTokens > 0 {
		body["max_tokens"] = maxTokens
	}
	return post(t, h, "/v1/chat/completions", body, "Authorization", "Bearer sk-test")
}

// message posts an Anthropic messages request with key sk-ant-test.
func message(t *testing.T, h http.Handler, prompt string, maxTokens int) result {
	t.Helper()
	body := map[string]any{
		"model": "claude-sim", "max_tokens": maxTokens,
		"messages": []map[string]any{{"role": "user", "content": prompt}},
	}
	return post(t, h, "/v1/messages", body, "x-api-key", "sk-ant-test")
}

// generate posts a Gemini generateContent request with key g-test.
func generate(t *testing.T, h http.Handler, prompt string, maxTokens int) result {
	t.Helper()
	body := map[string]any{"contents": []map[string]any{{"role": "user", "parts": []map[string]any{{"text": prompt}}}}}
	if maxTokens > 0 {
		body["generationConfig"] = map[string]any{"maxOutputTokens": maxTokens}
	}
	return post(t, h, "/v1beta/models/gemini-sim:generateContent", body, "x-goog-api-key", "g-test")
}

// wantReply checks r's status and values in its JSON body; pairs are a
// dotted path and the string wanted there. what names the reply in messages.
func wantReply(t *testing.T, what string, r result, status int, pairs ...string) {
	t.Helper()
	assert.Equal(t, status, r.status, "%s: status: %s", what, r.body)
	for i := 0; i+1 < len(pairs); i += 2 {
		assert.Equal(t, pairs[i+1], r.jsonField(t, pairs[i]), "%s: %s: %s", what, pairs[i], r.body)
	}
}

// wantHeaders checks header values; pairs are name, want ("" means absent).
func wantHeaders(t *testing.T, h http.Header, pairs ...string) {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		assert.Equal(t, pairs[i+1], h.Get(pairs[i]), "header %s", pairs[i])
	}
}
