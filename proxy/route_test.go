package proxy_test

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/proxy"
)

// Each route sends the path after its prefix to its upstream's base URL,
// joined to the base's path, with the query, the credentials and the
// client's headers unchanged, and without the X-Autopack-* headers.
func TestRoutes(t *testing.T) {
	up := newUpstream(t, ok)
	f := start(t, "",
		"DYNRETRY_PROXY__UPSTREAMS__OPENAI="+up.URL,
		"DYNRETRY_PROXY__UPSTREAMS__ANTHROPIC="+up.URL+"/anthropic-gw/",
		"DYNRETRY_PROXY__UPSTREAMS__GEMINI="+up.URL+"/g")
	tests := []struct {
		path, wantPath, wantQuery string
	}{
		{"/openai/v1/chat/completions", "/v1/chat/completions", ""},
		{"/anthropic/v1/messages?beta=true", "/anthropic-gw/v1/messages", "beta=true"},
		{"/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIzaTESTKEY0000", "/g/v1beta/models/gemini-2.5-flash:streamGenerateContent", "alt=sse&key=AIzaTESTKEY0000"},
		{"/openai/v1/files/a%2Fb", "/v1/files/a/b", ""},
		{"/openai", "/", ""},
	}
	for _, tc := range tests {
		resp := f.post(t, tc.path, chatBody, "X-Autopack-Phase-Id", "p1", "X-Autopack-Role", "builder",
			"X-Autopack-Other", "x", "X-Stainless-Retry-Count", "0", "Accept-Encoding", "br")
		read(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode, tc.path)
	}
	got := up.requests()
	require.Len(t, got, len(tests))
	for i, tc := range tests {
		r := got[i]
		assert.Equal(t, tc.wantPath, r.Path, tc.path)
		assert.Equal(t, tc.wantQuery, r.Query, tc.path)
		assert.Equal(t, strings.TrimPrefix(up.URL, "http://"), r.Host, "the upstream's host")
		assert.Equal(t, "Bearer "+testKey, r.Header.Get("Authorization"), "credentials pass unchanged")
		assert.Equal(t, "0", r.Header.Get("X-Stainless-Retry-Count"))
		assert.Equal(t, "gzip", r.Header.Get("Accept-Encoding"), "the transport asks for gzip itself")
		assert.Equal(t, chatBody, string(r.Body))
		for k := range r.Header {
			assert.False(t, strings.HasPrefix(k, "X-Autopack-"), "%s forwarded", k)
		}
		for _, k := range []string{"X-Forwarded-For", "Forwarded", "X-Forwarded-Host"} {
			assert.Empty(t, r.Header.Get(k), k)
		}
	}
	assert.Equal(t, "/v1/files/a%2Fb", got[3].RawPath, "an encoded path stays encoded")
}

// The proxy answers what it does not forward itself, in the route's error
// shape, with the headers of a failed call; nothing reaches an upstream.
func TestRefusals(t *testing.T) {
	up := newUpstream(t, ok)
	f := start(t, configFile(t, "proxy: {upstreams: {gemini: \"\"}}"),
		"DYNRETRY_PROXY__UPSTREAMS__OPENAI="+up.URL, "DYNRETRY_PROXY__UPSTREAMS__ANTHROPIC="+up.URL)
	long := strings.Repeat("r", 257)
	tests := map[string]struct {
		raw    string // a raw HTTP/1.1 request, or
		path   string // a POST to this path
		header []string
		status int
		reason string
		shape  string // the error shape: openai, anthropic, gemini
	}{
		"CONNECT":        {raw: "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n", status: 405, reason: "CONNECT is refused: dynretry proxy is not an open proxy", shape: "openai"},
		"absolute URI":   {raw: "GET http://example.com/openai/v1/models HTTP/1.1\r\nHost: example.com\r\n\r\n", status: 400, reason: "the request target must be a path (origin-form)", shape: "openai"},
		"absolute https": {raw: "POST https://api.openai.com/v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Length: 2\r\n\r\n{}", status: 400, reason: "the request target must be a path", shape: "openai"},
		"unknown prefix": {path: "/azure/v1/chat/completions", status: 404, reason: `no route for "/azure/v1/chat/completions": dynretry proxy serves /openai/, /anthropic/ and /gemini/`, shape: "openai"},
		"root":           {path: "/", status: 404, reason: `no route for "/"`, shape: "openai"},
		"route off":      {path: "/gemini/v1beta/models/m:generateContent", status: 404, reason: "the gemini route is off: proxy.upstreams.gemini is empty", shape: "gemini"},
		"dot segments":   {path: "/anthropic/v1/../../admin", status: 400, reason: `the path must not have "." or ".." segments`, shape: "anthropic"},
		"encoded dots":   {path: "/openai/v1/%2e%2e/x", status: 400, reason: `the path must not have "." or ".." segments`, shape: "openai"},
		"run id long":    {path: "/openai/v1/chat/completions", header: []string{proxy.HeaderRunID, long}, status: 400, reason: "X-Autopack-Run-Id is longer than 256 bytes", shape: "openai"},
		"role control":   {path: "/openai/v1/chat/completions", header: []string{proxy.HeaderRole, "a\tb"}, status: 400, reason: "X-Autopack-Role must be UTF-8 text without control characters", shape: "openai"},
		"phase not utf8": {path: "/openai/v1/chat/completions", header: []string{proxy.HeaderPhaseID, "p\xff"}, status: 400, reason: "X-Autopack-Phase-Id must be UTF-8 text", shape: "openai"},
		"call id long":   {path: "/openai/v1/chat/completions", header: []string{proxy.HeaderCallID, long}, status: 400, reason: "X-Autopack-Call-Id is longer than 256 bytes", shape: "openai"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var resp *http.Response
			if tc.raw != "" {
				conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
				require.NoError(t, err)
				defer conn.Close()
				_, err = conn.Write([]byte(tc.raw))
				require.NoError(t, err)
				resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
				require.NoError(t, err)
			} else {
				resp = f.post(t, tc.path, chatBody, tc.header...)
			}
			body := read(t, resp)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, proxy.CohortNone, resp.Header.Get(proxy.HeaderCohort))
			assert.Equal(t, "invalid_request", resp.Header.Get(proxy.HeaderClass))
			assert.Equal(t, "0", resp.Header.Get(proxy.HeaderAttempts))
			assert.Contains(t, resp.Header.Get(proxy.HeaderReason), tc.reason)
			assert.Equal(t, "false", resp.Header.Get("X-Should-Retry"))
			if tc.status == 405 {
				assert.Equal(t, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", resp.Header.Get("Allow"))
			}
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(body), &m), body)
			e, _ := m["error"].(map[string]any)
			require.NotNil(t, e, body)
			assert.Contains(t, e["message"], "dynretry proxy: "+tc.reason)
			switch tc.shape {
			case "anthropic":
				assert.Equal(t, "error", m["type"])
				assert.Equal(t, "invalid_request_error", e["type"])
			case "gemini":
				assert.Equal(t, float64(tc.status), e["code"])
				assert.Equal(t, "NOT_FOUND", e["status"])
			default:
				assert.Equal(t, "dynretry_invalid_request", e["code"])
			}
		})
	}
	assert.Empty(t, up.requests(), "nothing was forwarded")
	assert.Empty(t, f.spanAttrs("dynretry.call"), "a refused request is not a call")
}

// Each route's errors are shaped as its SDK expects.
func TestErrorShapes(t *testing.T) {
	f := start(t, "", "DYNRETRY_PROXY__UPSTREAMS__OPENAI=http://127.0.0.1:1")
	for path, want := range map[string]string{
		"/openai/./x":  `{"error":{"code":"dynretry_invalid_request","message":"dynretry proxy: the path must not have \".\" or \"..\" segments","param":null,"type":"invalid_request_error"}}`,
		"/anthropic/.": `{"error":{"message":"dynretry proxy: the path must not have \".\" or \"..\" segments","type":"invalid_request_error"},"type":"error"}`,
		"/gemini/..":   `{"error":{"code":400,"message":"dynretry proxy: the path must not have \".\" or \"..\" segments","status":"INVALID_ARGUMENT"}}`,
	} {
		resp := f.post(t, path, "{}")
		assert.JSONEq(t, want, read(t, resp), path)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	}
}
