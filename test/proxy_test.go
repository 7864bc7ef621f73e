package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genai"

	"github.com/autopack/dynretry/internal/testutil"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/sim"
)

// TestProxyProcess drives the built dynretry binary's proxy command, a
// real process on loopback ports, with the official Node SDKs and the Go
// SDKs against the simulated provider. The binary is built once for all
// of its subtests.
func TestProxyProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "dynretry")
	build := exec.Command(goBin(), "build", "-o", bin, "github.com/autopack/dynretry/cmd/dynretry")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building dynretry: %s", out)
	nodeDir := nodeClients(t)

	t.Run("node clients", func(t *testing.T) { testNodeClients(t, bin, nodeDir) })
	t.Run("node clients obey x-should-retry", func(t *testing.T) { testNodeShouldRetry(t, bin, nodeDir) })
	t.Run("node control calls counted whole", func(t *testing.T) { testNodeControlCallsWhole(t, bin, nodeDir) })
	t.Run("go clients", func(t *testing.T) { testGoClients(t, bin) })
	t.Run("processes share one pacer", func(t *testing.T) { testProcessesSharePacer(t, bin, nodeDir) })
	t.Run("hostile requests", func(t *testing.T) { testHostileRequests(t, bin) })
	t.Run("SIGTERM drains a stream", func(t *testing.T) { testDrain(t, bin) })
	t.Run("exit codes", func(t *testing.T) { testExitCodes(t, bin) })
}

// testExitCodes checks the built binary's exit statuses: 0 for success, 2
// with a usage hint for a usage error, 1 for a runtime error.
func testExitCodes(t *testing.T, bin string) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--version"}, 0, "dynretry ", ""},
		{[]string{"--bogus"}, 2, "", "dynretry: unknown flag: --bogus\nRun 'dynretry --help' for usage.\n"},
		{[]string{"nosuch"}, 2, "", "Run 'dynretry --help' for usage."},
		{[]string{"proxy", "--listen"}, 2, "", "Run 'dynretry --help' for usage."},
		{[]string{"report", "--html", filepath.Join(t.TempDir(), "r.html"), filepath.Join(t.TempDir(), "none.jsonl")}, 1, "", "no such file"},
	} {
		var stdout, stderr strings.Builder
		cmd := exec.Command(bin, tc.args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err, "%v", tc.args)
		}
		assert.Equal(t, tc.code, code, "%v: stderr %q", tc.args, stderr.String())
		assert.Contains(t, stdout.String(), tc.stdout, "%v", tc.args)
		assert.Contains(t, stderr.String(), tc.stderr, "%v", tc.args)
		if tc.code == 1 {
			assert.NotContains(t, stderr.String(), "for usage", "%v: a runtime error is not a usage error", tc.args)
		}
	}
}

func goBin() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// nodeClients returns the directory of the Node clients, which `make test`
// (scripts/deps.sh) installs with npm ci from the committed lockfile.
func nodeClients(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("node")
	require.NoError(t, err)
	_, err = exec.LookPath("node")
	require.NoError(t, err, "node is not installed: run make test, whose scripts/deps.sh installs it")
	_, err = os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json"))
	require.NoError(t, err, "the Node SDKs are not installed: run make test, or npm ci in test/node")
	return dir
}

// proxyProc is a running dynretry proxy process.
type proxyProc struct {
	cmd            *exec.Cmd
	url, admin     string
	stdout, stderr *testutil.SyncBuffer
	stopped        bool
}

var proxyBanner = regexp.MustCompile(`dynretry proxy on (http://\S+) \(admin (http://\S+): /metrics, /healthz\)`)

// startProxy starts `dynretry proxy` on free loopback ports, with only env
// (and PATH) as its environment, and waits until it serves.
func startProxy(t *testing.T, bin string, env ...string) *proxyProc {
	t.Helper()
	p := &proxyProc{stdout: new(testutil.SyncBuffer), stderr: new(testutil.SyncBuffer)}
	p.cmd = exec.Command(bin, "proxy", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() {
		if !p.stopped {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	require.Eventually(t, func() bool { return proxyBanner.MatchString(p.stderr.String()) }, 30*time.Second, 20*time.Millisecond,
		"the proxy did not start: %s", p.stderr)
	m := proxyBanner.FindStringSubmatch(p.stderr.String())
	p.url, p.admin = m[1], m[2]
	return p
}

// stop sends SIGTERM and checks that the proxy drains and exits 0.
func (p *proxyProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM) // once more is harmless; the process may be gone already
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		p.stopped = true
		require.NoError(t, err, "stderr: %s", p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("the proxy did not exit after SIGTERM: %s", p.stderr)
	}
	assert.Contains(t, p.stderr.String(), "dynretry proxy: drained")
}

// metricSum parses a /metrics page and sums the samples of the counter
// name whose labels include every label-value pair given (the series are
// split by provider and model too).
func metricSum(t *testing.T, page, name string, labels ...string) float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(page))
	require.NoError(t, err)
	f, ok := families[name]
	require.True(t, ok, "%s is on the page", name)
	var sum float64
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if match {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// metrics returns the proxy's /metrics page.
func (p *proxyProc) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(p.admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	return string(b)
}

// metricsWith returns the proxy's /metrics page once the counter name,
// summed over the series with labels (name, value pairs), is want: a call
// ends just after its response has gone, so a page read at once may lack it
// (or lack the counter, before the first call ended).
func (p *proxyProc) metricsWith(t *testing.T, want float64, name string, labels ...string) string {
	t.Helper()
	var m string
	require.Eventually(t, func() bool {
		m = p.metrics(t)
		return strings.Contains(m, "\n"+name+"{") && metricSum(t, m, name, labels...) == want
	}, 10*time.Second, 10*time.Millisecond, "%s%v reaches %v", name, labels, want)
	return m
}

// simOn serves a simulated provider on a free loopback port.
func simOn(t *testing.T, cfg sim.Config) (*sim.Provider, string) {
	t.Helper()
	p := newSim(t, cfg)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

// upstreams is the environment sending every route to url.
func upstreams(url string) []string {
	return []string{
		"DYNRETRY_PROXY__UPSTREAMS__OPENAI=" + url,
		"DYNRETRY_PROXY__UPSTREAMS__ANTHROPIC=" + url,
		"DYNRETRY_PROXY__UPSTREAMS__GEMINI=" + url,
	}
}

// nodeResult is one call of test/node/client.mjs.
type nodeResult struct {
	OK                                           bool
	Status                                       int
	Text                                         string
	Events                                       int
	Cohort, Class, Attempts, Reason, ShouldRetry string
	Error                                        string
}

// runNode starts `node client.mjs sdk calls [concurrency]` and returns a
// function that waits for it and returns its results.
func runNode(t *testing.T, dir, proxyURL, key, runID, sdk string, calls int, concurrency ...int) func() []nodeResult {
	t.Helper()
	args := []string{"client.mjs", sdk, fmt.Sprint(calls)}
	for _, c := range concurrency {
		args = append(args, fmt.Sprint(c))
	}
	cmd := exec.Command("node", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PROXY_URL=" + proxyURL, "API_KEY=" + key, "RUN_ID=" + runID}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	return func() []nodeResult {
		require.NoError(t, cmd.Wait(), "node %s: %s", sdk, stderr.String())
		var out []nodeResult
		for line := range strings.Lines(stdout.String()) {
			var r nodeResult
			require.NoError(t, json.Unmarshal([]byte(line), &r), line)
			out = append(out, r)
		}
		require.Len(t, out, calls, "stderr: %s", stderr.String())
		return out
	}
}

// runIn returns a run id that the percentage rollout puts in cohort at 50%.
func runIn(cohort rollout.Cohort) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("run-%s-%d", cohort, i)
		if (rollout.Bucket(id) < 50) == (cohort == rollout.Treatment) {
			return id
		}
	}
}

// The official Node SDKs, their retries on, work through the proxy in both
// cohorts, streaming included, and see their cohort in X-Dynretry-Cohort.
func testNodeClients(t *testing.T, bin, dir string) {
	provider, url := simOn(t, sim.Config{Latency: 20 * time.Millisecond})
	p := startProxy(t, bin, append(upstreams(url), "DYNRETRY_ROLLOUT_PERCENT=50")...)
	for _, cohort := range []rollout.Cohort{rollout.Treatment, rollout.Control} {
		for _, sdk := range []string{"openai", "openai-stream", "anthropic", "anthropic-stream"} {
			for _, r := range runNode(t, dir, p.url, testKey, runIn(cohort), sdk, 3)() {
				assert.True(t, r.OK, "%s %s: %s", cohort, sdk, r.Error)
				assert.Equal(t, 200, r.Status)
				assert.Equal(t, sim.ReplyText, r.Text, "%s %s", cohort, sdk)
				assert.Equal(t, string(cohort), r.Cohort, sdk)
				assert.Empty(t, r.Class)
				if strings.HasSuffix(sdk, "-stream") {
					assert.Greater(t, r.Events, 5, "%s: the events arrived one by one", sdk)
				}
			}
		}
	}
	st := provider.Stats()
	assert.Equal(t, 24, st.Received)
	assert.Equal(t, 24, st.Succeeded)
	m := p.metricsWith(t, 24, "dynretry_calls_total")
	assert.Equal(t, 12.0, metricSum(t, m, "dynretry_calls_total", "dynretry_cohort", "treatment", "dynretry_outcome", "success"))
	assert.Equal(t, 12.0, metricSum(t, m, "dynretry_calls_total", "dynretry_cohort", "control", "dynretry_outcome", "success"))
	p.stop(t)
}

// A treatment give-up carries X-Should-Retry: false and the Node SDK does
// not retry it; in control the SDK retries as it always did.
func testNodeShouldRetry(t *testing.T, bin, dir string) {
	for _, cohort := range []rollout.Cohort{rollout.Treatment, rollout.Control} {
		provider, url := simOn(t, sim.Config{Latency: 5 * time.Millisecond, QuotaAfter: 1})
		p := startProxy(t, bin, append(upstreams(url), "DYNRETRY_ROLLOUT_PERCENT=50")...)
		run := runIn(cohort)
		first := runNode(t, dir, p.url, testKey, run, "openai", 1)()
		require.True(t, first[0].OK, first[0].Error)
		r := runNode(t, dir, p.url, testKey, run, "openai", 1)()[0]
		assert.False(t, r.OK)
		assert.Equal(t, 429, r.Status)
		assert.Contains(t, r.Error, "RateLimitError")
		assert.Equal(t, string(cohort), r.Cohort)
		assert.Equal(t, "quota_exhausted", r.Class)
		st := provider.Stats()
		if cohort == rollout.Treatment {
			assert.Equal(t, "false", r.ShouldRetry)
			assert.Equal(t, "1", r.Attempts)
			assert.Contains(t, r.Reason, "quota_exhausted (HTTP 429)")
			assert.Equal(t, 2, st.Received, "the SDK did not retry the give-up")
		} else {
			assert.Empty(t, r.ShouldRetry)
			assert.Equal(t, "3", r.Attempts, "the SDK's third attempt, numbered by X-Stainless-Retry-Count")
			assert.Equal(t, 4, st.Received, "the SDK retried twice, as without dynretry")
		}
		p.stop(t)
	}
}

// Control calls that the Node SDKs retry after a 429 are one call each
// through the proxy, as in process, with a call id and without one (then
// told by X-Stainless-Retry-Count and the request; the calls of a run are
// identical and run at once): the proxy counts one successful call of two
// attempts per call.
func testNodeControlCallsWhole(t *testing.T, bin, dir string) {
	provider := newSim(t, sim.Config{Latency: 5 * time.Millisecond})
	// Every first attempt gets a 429, every retry the simulated provider.
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Stainless-Retry-Count") != "0" {
			provider.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Retry-After-Ms", "10")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}`)
	}))
	defer first.Close()
	p := startProxy(t, bin, append(upstreams(first.URL), "LOVABLE_DYNAMIC_RETRY_DELAYS=false")...)
	const calls = 3
	sdks := []string{"openai+call-id", "openai", "openai-stream", "anthropic", "anthropic-stream+call-id"}
	for _, sdk := range sdks {
		for _, r := range runNode(t, dir, p.url, testKey, "run-node-control", sdk, calls)() {
			assert.True(t, r.OK, "%s: %s", sdk, r.Error)
			assert.Equal(t, sim.ReplyText, r.Text, sdk)
			assert.Equal(t, "control", r.Cohort, sdk)
		}
	}
	n := float64(len(sdks) * calls)
	assert.Equal(t, 2*int(n), provider.Stats().Received+int(n), "each call: a 429, then a success")
	m := p.metricsWith(t, n, "dynretry_calls_total", "dynretry_cohort", "control") // one call per SDK call
	assert.Equal(t, n, metricSum(t, m, "dynretry_calls_total", "dynretry_cohort", "control", "dynretry_outcome", "success"))
	assert.Equal(t, 2*n, metricSum(t, m, "dynretry_attempts_total", "dynretry_cohort", "control"))
	assert.Equal(t, n, metricSum(t, m, "dynretry_attempts_total", "dynretry_cohort", "control", "dynretry_decision", "retry"))
	p.stop(t)
}

// The Go SDKs (openai-go, anthropic-sdk-go, genai), pointed at the proxy,
// streaming included.
func testGoClients(t *testing.T, bin string) {
	provider, url := simOn(t, sim.Config{Latency: 10 * time.Millisecond})
	p := startProxy(t, bin, append(upstreams(url), "LOVABLE_DYNAMIC_RETRY_DELAYS=true")...)
	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	run := option.WithHeader("X-Autopack-Run-Id", "run-go")

	oc := openai.NewClient(option.WithBaseURL(p.url+"/openai/v1"), option.WithAPIKey(testKey), option.WithHTTPClient(hc), run)
	params := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", MaxTokens: openai.Int(20),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	var raw *http.Response
	c, err := oc.Chat.Completions.New(ctx, params, option.WithResponseInto(&raw))
	require.NoError(t, err)
	assert.Equal(t, sim.ReplyText, c.Choices[0].Message.Content)
	assert.Equal(t, "treatment", raw.Header.Get("X-Dynretry-Cohort"))
	stream := oc.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	require.NoError(t, stream.Err())
	require.NoError(t, stream.Close())
	assert.Equal(t, sim.ReplyText, acc.Choices[0].Message.Content)
	assert.Greater(t, chunks, 5)

	ac := anthropic.NewClient(anthropicoption.WithBaseURL(p.url+"/anthropic"), anthropicoption.WithAPIKey(testKey),
		anthropicoption.WithHTTPClient(hc), anthropicoption.WithHeader("X-Autopack-Run-Id", "run-go"))
	mp := anthropic.MessageNewParams{Model: "claude-sonnet-4-6", MaxTokens: 20,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
	m, err := ac.Messages.New(ctx, mp)
	require.NoError(t, err)
	assert.Equal(t, sim.ReplyText, m.Content[0].Text)
	as := ac.Messages.NewStreaming(ctx, mp)
	var msg anthropic.Message
	for as.Next() {
		require.NoError(t, msg.Accumulate(as.Current()))
	}
	require.NoError(t, as.Err())
	require.NoError(t, as.Close())
	assert.Equal(t, sim.ReplyText, msg.Content[0].Text)

	gc, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: testKey, Backend: genai.BackendGeminiAPI, HTTPClient: hc,
		HTTPOptions: genai.HTTPOptions{BaseURL: p.url + "/gemini", Headers: http.Header{"X-Autopack-Run-Id": {"run-go"}}}})
	require.NoError(t, err)
	g, err := gc.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
	require.NoError(t, err)
	assert.Equal(t, sim.ReplyText, g.Text())

	st := provider.Stats()
	assert.Equal(t, 5, st.Succeeded)
	assert.Equal(t, st.Received, st.Succeeded)
	m2 := p.metricsWith(t, 5, "dynretry_calls_total")
	assert.Equal(t, 5.0, metricSum(t, m2, "dynretry_calls_total", "dynretry_cohort", "treatment", "dynretry_outcome", "success"))
	p.stop(t)
}

// Several client processes sharing one proxy on one key do as well as one
// process making all their calls: at most 0.02 wasted attempts (attempts
// the provider refused) per success, and no failure one process did not
// have.
func testProcessesSharePacer(t *testing.T, bin, dir string) {
	// 200 calls, 16 at a time in all, against 50 requests a second after a
	// burst of 20: the calls could go far faster than the limit allows.
	const processes, calls, concurrency = 4, 200, 16
	cfg := sim.Config{RPM: 3000, Burst: 20.0 / 3000, Latency: 20 * time.Millisecond}
	type outcome struct {
		succeeded, failed, received int
		took                        time.Duration
	}
	measure := func(procs int) outcome {
		provider, url := simOn(t, cfg)
		p := startProxy(t, bin, append(upstreams(url), "LOVABLE_DYNAMIC_RETRY_DELAYS=true")...)
		defer p.stop(t)
		start := time.Now()
		var waits []func() []nodeResult
		for i := range procs {
			waits = append(waits, runNode(t, dir, p.url, testKey, fmt.Sprintf("run-%d", i), "openai", calls/procs, concurrency/procs))
		}
		var o outcome
		for _, wait := range waits {
			for _, r := range wait() {
				if r.OK {
					o.succeeded++
				} else {
					o.failed++
					t.Logf("failed: %d %s %s", r.Status, r.Class, r.Reason)
				}
			}
		}
		o.took = time.Since(start)
		o.received = provider.Stats().Received
		return o
	}
	one := measure(1)
	many := measure(processes)
	for name, o := range map[string]outcome{"1 process": one, fmt.Sprintf("%d processes", processes): many} {
		wasted := float64(o.received-o.succeeded) / float64(max(o.succeeded, 1))
		t.Logf("%s: %d succeeded, %d failed, %d attempts, %.3f wasted per success, %.1fs", name, o.succeeded, o.failed, o.received, wasted, o.took.Seconds())
		assert.LessOrEqual(t, wasted, 0.02, name)
	}
	assert.Equal(t, calls, many.succeeded)
	assert.LessOrEqual(t, many.failed, one.failed, "no failure one process did not have")
}

// Hostile requests each get a clear answer from the real process, and the
// key sent with them appears in no span, metric, log line or header.
func testHostileRequests(t *testing.T, bin string) {
	const canary = "sk-proj-CANARY-e2e-0123456789abcdef"
	release := make(chan struct{})
	upstreamGone := make(chan struct{}, 1)
	var bodyBytes int64
	var mu sync.Mutex
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/files" {
			n, _ := io.Copy(io.Discard, r.Body)
			mu.Lock()
			bodyBytes = n
			mu.Unlock()
			w.WriteHeader(500)
			io.WriteString(w, `{"error":{"message":"boom for `+canary+`","type":"server_error"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"n\":1}\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
			upstreamGone <- struct{}{}
		case <-release:
		}
	}))
	defer up.Close()
	defer close(release)
	p := startProxy(t, bin, append(upstreams(up.URL), "LOVABLE_DYNAMIC_RETRY_DELAYS=true", "OTEL_TRACES_EXPORTER=console",
		"DYNRETRY_PROXY__MAX_REPLAY_BODY=1MiB")...)
	host := strings.TrimPrefix(p.url, "http://")
	var headers strings.Builder
	raw := func(req string) *http.Response {
		conn, err := net.Dial("tcp", host)
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.Write([]byte(req))
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		io.ReadAll(resp.Body)
		resp.Body.Close()
		for k, v := range resp.Header {
			fmt.Fprintln(&headers, k, v)
		}
		return resp
	}
	auth := "Authorization: Bearer " + canary + "\r\n"
	for name, tc := range map[string]struct {
		req    string
		status int
		reason string
	}{
		"absolute URI":   {"GET http://example.com/openai/v1/models HTTP/1.1\r\nHost: example.com\r\n" + auth + "\r\n", 400, "the request target must be a path"},
		"unknown prefix": {"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 2\r\n\r\n{}", 404, "no route for"},
		"CONNECT":        {"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n" + auth + "\r\n", 405, "CONNECT is refused"},
	} {
		resp := raw(tc.req)
		assert.Equal(t, tc.status, resp.StatusCode, name)
		assert.Contains(t, resp.Header.Get("X-Dynretry-Reason"), tc.reason, name)
		assert.Equal(t, "none", resp.Header.Get("X-Dynretry-Cohort"), name)
	}

	// 100 MB: streamed through once, not retried.
	const size = 100 << 20
	req, err := http.NewRequest(http.MethodPost, p.url+"/openai/v1/files", io.LimitReader(zeros{}, size))
	require.NoError(t, err)
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+canary)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 500, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("X-Dynretry-Attempts"))
	assert.Equal(t, "false", resp.Header.Get("X-Should-Retry"))
	mu.Lock()
	assert.Equal(t, int64(size), bodyBytes)
	mu.Unlock()
	for k, v := range resp.Header {
		fmt.Fprintln(&headers, k, v)
	}

	// A client that goes away mid-stream: the upstream call is canceled.
	ctx, cancel := context.WithCancel(context.Background())
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/openai/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+canary)
	req.Header.Set("X-Autopack-Run-Id", "run-hostile")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: {\"n\":1}\n", line)
	cancel()
	resp.Body.Close()
	select {
	case <-upstreamGone:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream call outlived its client")
	}

	// Still serving, and nothing carries the key.
	h, err := http.Get(p.admin + "/healthz")
	require.NoError(t, err)
	h.Body.Close()
	assert.Equal(t, 200, h.StatusCode)
	metrics := p.metrics(t)
	p.stop(t) // flushes the spans to stdout
	assert.Contains(t, p.stdout.String(), "dynretry.attempt", "the spans were exported")
	assert.Contains(t, metrics, "dynretry_attempts_total")
	for what, text := range map[string]string{"spans": p.stdout.String(), "log": p.stderr.String(), "metrics": metrics, "headers": headers.String()} {
		assert.NotContains(t, text, "CANARY", what)
	}
	http.DefaultClient.CloseIdleConnections()
}

// SIGTERM stops the process from taking connections but lets a stream in
// flight end whole before it exits 0.
func testDrain(t *testing.T, bin string) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"n\":1}\n\n")
		http.NewResponseController(w).Flush()
		<-release
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	p := startProxy(t, bin, append(upstreams(up.URL), "DYNRETRY_PROXY__DRAIN_TIMEOUT=20s")...)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post(p.url+"/openai/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","stream":true}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: {\"n\":1}\n", line)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return strings.Contains(p.stderr.String(), "draining") }, 10*time.Second, 10*time.Millisecond)
	_, err = http.Get(p.url + "/openai/v1/models")
	assert.Error(t, err, "no new connections while draining")
	close(release)
	rest, err := io.ReadAll(br)
	require.NoError(t, err, "the stream ends whole")
	assert.Contains(t, string(rest), "[DONE]")
	p.stop(t) // exits 0, drained
}

// zeros reads as an endless run of '0'.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}
