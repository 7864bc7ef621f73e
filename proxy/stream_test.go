package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/proxy"
)

// sse starts an event stream and returns a function that writes and
// flushes one event.
func sse(w http.ResponseWriter) func(data string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	return func(data string) {
		fmt.Fprintf(w, "data: %s\n\n", data)
		http.NewResponseController(w).Flush()
	}
}

// firstEvent reads lines up to the first event's data.
func firstEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok {
			return data
		}
	}
}

// Events reach the client as the upstream sends them: the upstream sends
// its second event only once the client has read the first, which a
// buffering proxy would never let happen.
func TestStreamFlushesEachEvent(t *testing.T) {
	for _, env := range [][]string{treatment, control} {
		clientGotFirst := make(chan struct{})
		up := newUpstream(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			send := sse(w)
			send(`{"n":1}`)
			select {
			case <-clientGotFirst:
			case <-time.After(10 * time.Second):
				send(`"the client never saw the first event"`)
				return
			}
			send(`{"n":2}`)
			send("[DONE]")
		})
		f := start(t, "", openAI(up, env...)...)
		resp := f.post(t, "/openai/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[]}`)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		br := bufio.NewReader(resp.Body)
		assert.Equal(t, `{"n":1}`, firstEvent(t, br))
		close(clientGotFirst)
		assert.Equal(t, `{"n":2}`, firstEvent(t, br))
		assert.Equal(t, "[DONE]", firstEvent(t, br))
		resp.Body.Close()
		assert.Equal(t, strings.TrimPrefix(env[0], "LOVABLE_DYNAMIC_RETRY_DELAYS=") == "true", resp.Header.Get(proxy.HeaderCohort) == "treatment")
	}
}

// A client that goes away mid-stream cancels the upstream call; the call
// ends as canceled.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	canceled := make(chan struct{})
	up := newUpstream(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		send := sse(w)
		send(`{"n":1}`)
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(10 * time.Second):
		}
	})
	f := start(t, "", openAI(up, treatment...)...)
	resp := f.post(t, "/openai/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[]}`)
	assert.Equal(t, `{"n":1}`, firstEvent(t, bufio.NewReader(resp.Body)))
	resp.Body.Close() // the client goes away
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call was not canceled")
	}
	require.Eventually(t, func() bool { return len(f.spanAttrs("dynretry.call")) == 1 }, 5*time.Second, 10*time.Millisecond)
	call := f.spanAttrs("dynretry.call")[0]
	assert.Equal(t, "canceled", call["error.type"])
	assert.Len(t, up.requests(), 1, "never retried")
}

// A waiting call whose client goes away stops waiting: nothing more is
// sent.
func TestClientDisconnectEndsTheWait(t *testing.T) {
	up := newUpstream(t, status(429, rateLimited, "Retry-After", "1"))
	f := start(t, "", openAI(up, treatment...)...)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url+"/openai/v1/chat/completions", strings.NewReader(chatBody))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set(proxy.HeaderRunID, "run-1")
	go func() {
		require.Eventually(t, func() bool { return len(up.requests()) == 1 }, 5*time.Second, 5*time.Millisecond)
		cancel()
	}()
	_, err = f.client.Do(req)
	require.ErrorIs(t, err, context.Canceled)
	require.Eventually(t, func() bool { return len(f.spanAttrs("dynretry.call")) == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, "canceled", f.spanAttrs("dynretry.call")[0]["error.type"])
	time.Sleep(1500 * time.Millisecond) // past the hint
	assert.Len(t, up.requests(), 1, "the wait ended with the client")
}

// A stream the upstream cuts is cut for the client too (no clean end), and
// is never sent again.
func TestCutStreamIsNotRetried(t *testing.T) {
	up := newUpstream(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		send := sse(w)
		send(`{"n":1}`)
		panic(http.ErrAbortHandler)
	})
	f := start(t, "", openAI(up, treatment...)...)
	resp := f.post(t, "/openai/v1/chat/completions", `{"model":"gpt-4o-mini","stream":true,"messages":[]}`)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(b), `{"n":1}`)
	assert.Error(t, err, "the client sees the cut")
	assert.Len(t, up.requests(), 1)
	require.Eventually(t, func() bool { return len(f.spanAttrs("dynretry.call")) == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, "connection", f.spanAttrs("dynretry.call")[0]["error.type"])
}

// countingBody yields n bytes of JSON-ish filler without holding them.
type countingBody struct{ left int64 }

func (b *countingBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), b.left)
	for i := range p[:n] {
		p[i] = 'a'
	}
	b.left -= n
	return int(n), nil
}

// A body larger than max_replay_body streams through once, without being
// held in memory, and is not retried: here 100 MB of known length, and 8
// MB of unknown length (chunked: the proxy reads 1 MiB + 1, then streams
// the rest after it), each answered 500.
func TestLargeBodyStreamsOnce(t *testing.T) {
	up := newUpstream(t, status(500, `{"error":{"message":"boom","type":"server_error"}}`))
	f := start(t, "", openAI(up, append([]string{"DYNRETRY_PROXY__MAX_REPLAY_BODY=1MiB"}, treatment...)...)...)
	for _, size := range []int64{100 << 20, -8 << 20} {
		known := size > 0
		size = max(size, -size)
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		req, err := http.NewRequest(http.MethodPost, f.url+"/openai/v1/files", &countingBody{left: size})
		require.NoError(t, err)
		if known {
			req.ContentLength = size
		}
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := f.client.Do(req)
		require.NoError(t, err)
		read(t, resp)
		runtime.ReadMemStats(&ms1)
		assert.Equal(t, 500, resp.StatusCode)
		got := up.requests()
		assert.Equal(t, size, got[len(got)-1].Size, "the whole body arrived")
		assert.Equal(t, "1", resp.Header.Get(proxy.HeaderAttempts), "sent once")
		assert.Equal(t, "server_error", resp.Header.Get(proxy.HeaderClass))
		assert.Contains(t, resp.Header.Get(proxy.HeaderReason), "cannot be")
		// Client, proxy and upstream share this process: the body went
		// through all three without any of them holding it.
		assert.Less(t, ms1.TotalAlloc-ms0.TotalAlloc, uint64(24<<20), "allocated while sending %d bytes", size)
	}
	assert.Len(t, up.requests(), 2)
}
