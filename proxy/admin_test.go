package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdmin(t *testing.T) {
	f := start(t, "")
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("dynretry_calls_total 0\n")) })
	admin := f.proxy.Admin(metrics)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get("/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok\n", body)
	code, body = get("/metrics")
	assert.Equal(t, 200, code)
	assert.Equal(t, "dynretry_calls_total 0\n", body)
	code, _ = get("/openai/v1/chat/completions")
	assert.Equal(t, 404, code, "the admin port forwards nothing")

	f.proxy.Drain()
	code, body = get("/healthz")
	assert.Equal(t, 503, code)
	assert.Equal(t, "draining\n", body)
}

// A change of models.yaml applies to the next request: here an upstream.
func TestReloadUpstream(t *testing.T) {
	a, b := newUpstream(t, ok), newUpstream(t, ok)
	path := configFile(t, "proxy: {upstreams: {openai: \""+a.URL+"\"}}")
	f := start(t, path)
	resp := f.post(t, "/openai/v1/chat/completions", chatBody)
	read(t, resp)
	require.Equal(t, 200, resp.StatusCode)
	require.Len(t, a.requests(), 1)

	yaml := strings.Replace(mustRead(t, path), a.URL, b.URL, 1)
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	require.Eventually(t, func() bool { return f.proxy.Settings().Upstreams.OpenAI.String() == b.URL }, 5*time.Second, 10*time.Millisecond)
	resp = f.post(t, "/openai/v1/chat/completions", chatBody)
	read(t, resp)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Len(t, a.requests(), 1)
	assert.Len(t, b.requests(), 1)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
