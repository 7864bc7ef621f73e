package sim

import (
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGeminiGenerateContent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 40, TPM: 100_000, Latency: -1})
		r := generate(t, p, "hello gemini", 50)
		require.Equal(t, 200, r.status, "status: %s", r.body)
		assert.Equal(t, "gemini-sim", r.jsonField(t, "modelVersion"), "modelVersion")
		assert.Equal(t, 3.0, r.jsonField(t, "usageMetadata.promptTokenCount"), "promptTokenCount")
		assert.Equal(t, 50.0, r.jsonField(t, "usageMetadata.candidatesTokenCount"), "candidatesTokenCount")
		wantHeaders(t, r.header, "x-ratelimit-limit-requests", "", "Date", "Sat, 01 Jan 2000 00:00:00 GMT")
	})
}

func TestGeminiRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 40 RPM: one request every 1.5s.
		p := newProvider(t, Config{RPM: 40, Burst: 1.0 / 40, Latency: -1})
		generate(t, p, "hi", 0)
		r := generate(t, p, "hi", 0)
		require.Equal(t, 429, r.status, "status")
		want := `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. Please retry in 1.500s.",` +
			`"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{` +
			`"quotaMetric":"generativelanguage.googleapis.com/generate_content_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel",` +
			`"quotaDimensions":{"location":"global","model":"gemini-sim"},"quotaValue":"40"}]},` +
			`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.500s"}]}}`
		assert.Equal(t, want, r.body, "body")
		wantHeaders(t, r.header, "retry-after", "2", "retry-after-ms", "")
	})
}

func TestRoutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{Latency: -1})
		chatBody := map[string]any{"model": "m", "messages": []map[string]any{{"role": "user", "content": "hi"}}}
		for _, c := range []struct {
			name, path string
			body       any
			headers    []string
			status     int
		}{
			{"openai without /v1", "/chat/completions", chatBody, []string{"Authorization", "Bearer k"}, 200},
			{"gemini key param", "/v1beta/models/g:generateContent?key=k", map[string]any{}, nil, 200},
			{"gemini v1", "/v1/models/g:generateContent", map[string]any{}, []string{"x-goog-api-key", "k"}, 200},
			{"unknown path", "/v1/embeddings", chatBody, []string{"Authorization", "Bearer k"}, 404},
			{"gemini streaming", "/v1beta/models/g:streamGenerateContent", map[string]any{}, []string{"x-goog-api-key", "k"}, 404},
			{"no model", "/v1/chat/completions", map[string]any{"messages": []any{}}, []string{"Authorization", "Bearer k"}, 400},
			{"bad json", "/v1/messages", "not an object", []string{"x-api-key", "k"}, 400},
			{"openai no key", "/v1/chat/completions", chatBody, nil, 401},
			{"anthropic no key", "/v1/messages", chatBody, nil, 401},
			{"gemini no key", "/v1beta/models/g:generateContent", map[string]any{}, nil, 403},
		} {
			r := post(t, p, c.path, c.body, c.headers...)
			assert.Equal(t, c.status, r.status, "%s: status: %s", c.name, r.body)
		}
		s := p.Stats()
		assert.Equal(t, 7, s.Rejected[ReasonInvalid], "rejected invalid; stats %+v", s.Counts)
		assert.Equal(t, 3, s.Succeeded, "succeeded; stats %+v", s.Counts)
	})
}
