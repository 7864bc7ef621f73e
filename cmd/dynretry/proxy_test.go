package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/internal/testutil"
)

func TestProxyUsageErrors(t *testing.T) {
	for args, want := range map[string]string{
		"proxy extra":                  `dynretry: unknown command "extra" for "dynretry proxy"`,
		"proxy --listen nope":          `dynretry: --listen "nope": want host:port, such as 127.0.0.1:8787`,
		"proxy --admin-listen :x:y":    `dynretry: --admin-listen ":x:y": want host:port, such as 127.0.0.1:8787`,
		"proxy --upstream http://x.io": "dynretry: unknown flag: --upstream",
	} {
		code, stdout, stderr := runCLI(strings.Fields(args)...)
		assert.Equal(t, 2, code, args)
		assert.Empty(t, stdout)
		assert.Equal(t, want+"\n"+usageHint+"\n", stderr, args)
	}
}

// A bad configuration stops the proxy before it listens, naming the key.
func TestProxyConfigError(t *testing.T) {
	t.Setenv("DYNRETRY_PROXY__UPSTREAMS__OPENAI", "ftp://example.com")
	code, _, stderr := runCLI("proxy", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `dynretry: config: environment DYNRETRY_PROXY__UPSTREAMS__OPENAI: lovable_patterns.p1_dynamic_retry_delays.proxy.upstreams.openai = "ftp://example.com": want an http or https base URL`)
}

// running is a proxy command serving in process.
type running struct {
	stderr     *testutil.SyncBuffer
	url, admin string
	stop       context.CancelFunc
	done       chan error
}

var banner = regexp.MustCompile(`dynretry proxy on (http://\S+) \(admin (http://\S+): /metrics, /healthz\)`)

// runProxyCmd starts the proxy command with flags and waits for its banner.
func runProxyCmd(t *testing.T, flags proxyFlags) *running {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	r := &running{stderr: new(testutil.SyncBuffer), stop: stop, done: make(chan error, 1)}
	go func() { r.done <- runProxy(ctx, flags, r.stderr) }()
	require.Eventually(t, func() bool { return banner.MatchString(r.stderr.String()) }, 10*time.Second, 10*time.Millisecond, "no banner")
	m := banner.FindStringSubmatch(r.stderr.String())
	r.url, r.admin = m[1], m[2]
	t.Cleanup(func() {
		stop()
		<-r.done
	})
	return r
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// The command serves the proxy and its admin port, says where, and on its
// end (SIGTERM) lets a stream in flight finish before it returns.
func TestProxyServesAndDrains(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"n\":1}\n\n")
		http.NewResponseController(w).Flush()
		<-release
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	t.Setenv("DYNRETRY_PROXY__UPSTREAMS__OPENAI", up.URL)
	t.Setenv("DYNRETRY_PROXY__DRAIN_TIMEOUT", "10s")
	t.Setenv("LOVABLE_DYNAMIC_RETRY_DELAYS", "true")
	r := runProxyCmd(t, proxyFlags{listen: "127.0.0.1:0", admin: "127.0.0.1:0"})
	assert.Contains(t, r.stderr.String(), r.url+"/openai/v1  ->  "+up.URL)
	assert.Contains(t, r.stderr.String(), r.url+"/gemini     ->  https://generativelanguage.googleapis.com")
	assert.NotContains(t, r.stderr.String(), "beyond loopback")

	code, body := get(t, r.admin+"/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok\n", body)

	req, err := http.NewRequest(http.MethodPost, r.url+"/openai/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sk-cmd-test")
	req.Header.Set("X-Autopack-Run-Id", "run-cmd")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "treatment", resp.Header.Get("X-Dynretry-Cohort"))
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: {\"n\":1}\n", line)

	r.stop() // SIGTERM
	require.Eventually(t, func() bool { return strings.Contains(r.stderr.String(), "draining") }, 5*time.Second, 10*time.Millisecond)
	code, body = get(t, r.admin+"/healthz")
	assert.Equal(t, 503, code, "draining")
	assert.Equal(t, "draining\n", body)
	_, err = http.Post(r.url+"/openai/v1/chat/completions", "application/json", strings.NewReader("{}"))
	assert.Error(t, err, "no new connections while draining")
	select {
	case err := <-r.done:
		t.Fatalf("returned before the stream ended: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	rest, err := io.ReadAll(br)
	require.NoError(t, err, "the stream ends whole")
	assert.Contains(t, string(rest), "[DONE]")
	select {
	case err := <-r.done:
		require.NoError(t, err)
		r.done <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("did not return after the stream ended")
	}
	assert.Contains(t, r.stderr.String(), "dynretry proxy: drained")
}

// A stream that outlasts drain_timeout is cut, and the command returns.
func TestProxyDrainBound(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"n\":1}\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer up.Close()
	t.Setenv("DYNRETRY_PROXY__UPSTREAMS__OPENAI", up.URL)
	t.Setenv("DYNRETRY_PROXY__DRAIN_TIMEOUT", "300ms")
	r := runProxyCmd(t, proxyFlags{listen: "127.0.0.1:0", admin: "127.0.0.1:0"})
	resp, err := http.Post(r.url+"/openai/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	start := time.Now()
	r.stop()
	_, err = io.ReadAll(resp.Body)
	assert.Error(t, err, "the stream is cut")
	select {
	case err := <-r.done:
		require.NoError(t, err)
		r.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("did not return")
	}
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.Contains(t, r.stderr.String(), "drain_timeout passed")
}

// /metrics serves the dynretry metrics in Prometheus's format.
func TestProxyMetrics(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"x","choices":[]}`)
	}))
	defer up.Close()
	t.Setenv("DYNRETRY_PROXY__UPSTREAMS__OPENAI", up.URL)
	r := runProxyCmd(t, proxyFlags{listen: "127.0.0.1:0", admin: "127.0.0.1:0"})
	resp, err := http.Post(r.url+"/openai/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	calls := regexp.MustCompile(`dynretry_calls_total\{[^}]*dynretry_cohort="control"[^}]*\} 1`)
	var body string
	require.Eventually(t, func() bool { // the call ends just after its response has gone
		code, page := get(t, r.admin+"/metrics")
		body = page
		return code == 200 && calls.MatchString(page)
	}, 10*time.Second, 10*time.Millisecond, "the call is counted")
	assert.Contains(t, body, "dynretry_attempts_total")
}

// A listen address beyond loopback is served, with a warning.
func TestProxyWarnsBeyondLoopback(t *testing.T) {
	r := runProxyCmd(t, proxyFlags{listen: "0.0.0.0:0", admin: "127.0.0.1:0"})
	assert.Contains(t, r.stderr.String(), "listening beyond loopback")
}
