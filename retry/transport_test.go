package retry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// countingBody is a response body that counts its Close calls.
type countingBody struct {
	io.Reader
	closes *int
	mu     *sync.Mutex
}

func (b countingBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	*b.closes++
	return nil
}

// provider is a handler-backed RoundTripper: it serves each request with the
// next of its handlers (the last one repeats), records what it received, and
// counts the Close calls on the bodies it returned.
type provider struct {
	mu       sync.Mutex
	handlers []http.HandlerFunc
	reqs     []*http.Request
	bodies   []string
	closes   []int
	times    []time.Time
}

func (p *provider) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	p.mu.Lock()
	i := len(p.reqs)
	p.reqs = append(p.reqs, req)
	p.bodies = append(p.bodies, string(body))
	p.closes = append(p.closes, 0)
	p.times = append(p.times, time.Now())
	h := p.handlers[min(i, len(p.handlers)-1)]
	p.mu.Unlock()
	rec := httptest.NewRecorder()
	h(rec, req)
	resp := rec.Result()
	resp.Body = countingBody{Reader: resp.Body, closes: &p.closes[i], mu: &p.mu}
	resp.Request = req
	return resp, nil
}

func (p *provider) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reqs)
}

func (p *provider) closed(i int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closes[i]
}

// reply is a handler that answers with status, headers and body.
func reply(status int, body string, kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

const chatBody = `{"model":"gpt-4o","messages":[{"role":"user","content":"Hello there, how are you?"}],"max_tokens":100}`

func newChatRequest(t *testing.T, ctx context.Context) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.openai.com/v1/chat/completions", strings.NewReader(chatBody))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sk-secret-123")
	req.Header.Set("Content-Type", "application/json")
	return req
}

func TestTransportRetriesWithClonesAndReplayedBodies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &provider{handlers: []http.HandlerFunc{
			reply(429, `{"error":{"message":"Rate limited"}}`, "Retry-After", "1"),
			reply(503, `{"error":{"message":"overloaded"}}`),
			reply(200, `{"id":"ok"}`),
		}}
		tr := &Transport{Base: p, Retrier: newRetrier(t, Config{})}
		req := newChatRequest(t, t.Context())
		origBody, origHeader, origURL := req.Body, req.Header.Clone(), req.URL.String()
		start := time.Now()
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err, "RoundTrip")
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		require.Equal(t, 200, resp.StatusCode, "response status")
		require.Equal(t, `{"id":"ok"}`, string(got), "response body")
		require.Len(t, p.reqs, 3, "attempts")
		for i, b := range p.bodies {
			assert.Equal(t, chatBody, b, "attempt %d body: want the request's", i+1)
		}
		assert.NotSame(t, req, p.reqs[1], "a retry reused the request; want a clone per retry")
		assert.NotSame(t, req, p.reqs[2], "a retry reused the request; want a clone per retry")
		assert.NotSame(t, p.reqs[1], p.reqs[2], "two retries share a request; want a clone per retry")
		for i, r := range p.reqs {
			assert.Same(t, req.Context(), r.Context(), "attempt %d lost the request's context", i+1)
			assert.Equal(t, "Bearer sk-secret-123", r.Header.Get("Authorization"), "attempt %d lost the request's header", i+1)
			assert.Equal(t, origURL, r.URL.String(), "attempt %d lost the request's URL", i+1)
		}
		assert.True(t, req.Body == origBody, "the original request's body was replaced")
		assert.Equal(t, origURL, req.URL.String(), "the original request's URL was modified")
		assert.Len(t, req.Header, len(origHeader), "the original request's header was modified")
		assert.Equal(t, origHeader.Get("Authorization"), req.Header.Get("Authorization"), "the original request's header was modified")
		assert.Equal(t, 1, p.closed(0), "discarded body 0 closed")
		assert.Equal(t, 1, p.closed(1), "discarded body 1 closed")
		assert.Zero(t, p.closed(2), "the returned body was closed by the transport")
		assert.GreaterOrEqual(t, p.times[1].Sub(p.times[0]), time.Second, "retried after: want at least the 1s hint")
		assert.Greater(t, time.Since(start), time.Second, "elapsed: want more than the hint")
	})
}

func TestTransportSuccessIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &provider{handlers: []http.HandlerFunc{reply(200, `{"id":"ok"}`, "x-should-retry", "true")}}
		tr := &Transport{Base: p, Retrier: newRetrier(t, Config{})}
		req := newChatRequest(t, t.Context())
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err, "RoundTrip")
		require.Equal(t, 200, resp.StatusCode, "RoundTrip")
		resp.Body.Close()
		if assert.Len(t, p.reqs, 1, "attempts") {
			assert.Same(t, req, p.reqs[0], "want the request itself sent")
		}
	})
}

func TestTransportReturnsTheFinalFailedResponseWhole(t *testing.T) {
	big := `{"error":{"message":"denied","pad":"` + strings.Repeat("x", maxBody+1000) + `"}}`
	tests := map[string]struct {
		cfg      Config
		handler  http.HandlerFunc
		attempts int
	}{
		"not retryable": {Config{}, reply(401, big), 1},
		"attempts run out": {Config{Policies: map[Class]Policy{RateLimited: {MaxAttempts: 2, Base: time.Second, Max: time.Second}}},
			reply(429, big), 2},
		"x-should-retry false": {Config{}, reply(503, big, "x-should-retry", "false"), 1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &provider{handlers: []http.HandlerFunc{tt.handler}}
				tr := &Transport{Base: p, Retrier: newRetrier(t, tt.cfg)}
				resp, err := tr.RoundTrip(newChatRequest(t, t.Context()))
				require.NoError(t, err, "RoundTrip: want nil with the response")
				got, err := io.ReadAll(resp.Body)
				assert.NoError(t, err, "reading the body")
				assert.Equal(t, big, string(got), "body: want all %d bytes", len(big))
				resp.Body.Close()
				assert.Len(t, p.reqs, tt.attempts, "attempts")
				assert.Equal(t, 1, p.closed(len(p.reqs)-1), "closing the returned body closed the original")
				for i := range len(p.reqs) - 1 {
					assert.Equal(t, 1, p.closed(i), "discarded body %d closed", i)
				}
			})
		})
	}
}

// TestTransportHeldPastTheDeadlineReturnsTheResponse reproduces the
// drained 429: a call got a 429 and was booked to retry, then another
// call's hint held the limit past its deadline. It must return its 429,
// body intact, with a nil error — not (nil, error) with the body drained.
func TestTransportHeldPastTheDeadlineReturnsTheResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const bodyA = `{"error":{"message":"Rate limit reached for requests","code":"rate_limit_exceeded"}}`
		var mu sync.Mutex
		sent := map[string]int{}
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			who := req.Header.Get("X-Who")
			mu.Lock()
			sent[who]++
			mu.Unlock()
			rec := httptest.NewRecorder()
			if who == "A" {
				reply(429, bodyA, "Retry-After", "1")(rec, req)
			} else {
				time.Sleep(500 * time.Millisecond) // B's 429 comes while A sleeps
				reply(429, `{}`, "Retry-After", "30")(rec, req)
			}
			return rec.Result(), nil
		})
		ev := &events{}
		r := newRetrier(t, Config{}, WithObserver(ev))
		tr := &Transport{Base: base, Retrier: r, Key: func(*http.Request) Key { return testKey }}
		var wg sync.WaitGroup
		wg.Go(func() {
			req := newChatRequest(t, t.Context())
			req.Header.Set("X-Who", "B")
			if resp, err := tr.RoundTrip(req); err == nil {
				resp.Body.Close()
			}
		})
		time.Sleep(time.Millisecond) // B is sent first, before A's hint holds the key
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		req := newChatRequest(t, ctx)
		req.Header.Set("X-Who", "A")
		start := time.Now()
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err, "RoundTrip: want A's 429 and a nil error")
		require.NotNil(t, resp, "RoundTrip: want A's 429 and a nil error")
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.NoError(t, rerr)
		assert.Equal(t, 429, resp.StatusCode)
		assert.Equal(t, bodyA, string(body), "the 429's body is intact")
		assert.Less(t, time.Since(start), 5*time.Second, "A gave up as soon as it was held past its deadline")
		mu.Lock()
		assert.Equal(t, 1, sent["A"], "A's retry was never sent")
		mu.Unlock()
		var last Event
		for _, e := range ev.all() {
			if !e.Sent {
				last = e
			}
		}
		assert.Equal(t, GiveUp, last.Decision.Action)
		assert.True(t, last.Decision.Deadline)
		assert.Contains(t, last.Decision.Reason, "held (hint)")
		cancel()
		wg.Wait()
	})
}

// TestTransportNoAttemptWithoutTimeToFinish: an attempt is not sent when
// what is left before the deadline is shorter than the limit's observed
// latency; the call gives up at once with the 429 it has, rather than send
// at the deadline and lose it to a cancellation.
func TestTransportNoAttemptWithoutTimeToFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(300 * time.Millisecond)
			reply(200, `{}`)(w, r)
		}
		p := &provider{handlers: []http.HandlerFunc{slow, reply(429, `{"error":{"message":"slow down"}}`, "Retry-After", "1"), slow}}
		ev := &events{}
		tr := &Transport{Base: p, Retrier: newRetrier(t, Config{}, WithObserver(ev))}
		resp, err := tr.RoundTrip(newChatRequest(t, t.Context())) // learns the 300ms latency
		require.NoError(t, err)
		resp.Body.Close()

		ctx, cancel := context.WithTimeout(t.Context(), 1200*time.Millisecond)
		defer cancel()
		start := time.Now()
		resp, err = tr.RoundTrip(newChatRequest(t, ctx))
		require.NoError(t, err, "the 429 is returned, not a cancellation")
		assert.Equal(t, 429, resp.StatusCode)
		resp.Body.Close()
		assert.Zero(t, time.Since(start), "given up at once")
		assert.Equal(t, 2, p.calls(), "the retry at 1s, with 200ms left, was not sent")
		last := ev.all()[len(ev.all())-1]
		assert.True(t, last.Decision.Deadline)
		assert.Contains(t, last.Decision.Reason, "an attempt of at least 300ms")
	})
}

func TestTransportDeadlineReturnsTheResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &provider{handlers: []http.HandlerFunc{reply(429, `{}`, "Retry-After", "30")}}
		tr := &Transport{Base: p, Retrier: newRetrier(t, Config{})}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		resp, err := tr.RoundTrip(newChatRequest(t, ctx))
		require.NoError(t, err, "RoundTrip: want the 429 and nil")
		require.Equal(t, 429, resp.StatusCode, "RoundTrip")
		resp.Body.Close()
		assert.Zero(t, time.Since(start), "waited")
		assert.Len(t, p.reqs, 1, "attempts")
	})
}

func TestTransportNonReplayableBodyIsSentOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &provider{handlers: []http.HandlerFunc{reply(429, `{"error":{"message":"slow"}}`, "Retry-After", "1"), reply(200, `ok`)}}
		ev := &events{}
		tr := &Transport{Base: p, Retrier: newRetrier(t, Config{}, WithObserver(ev))}
		req := newChatRequest(t, t.Context())
		req.Body = io.NopCloser(strings.NewReader(chatBody))
		req.GetBody = nil
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err, "RoundTrip: want the 429 and nil")
		require.Equal(t, 429, resp.StatusCode, "RoundTrip")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, `{"error":{"message":"slow"}}`, string(body), "body: want the 429's")
		assert.Len(t, p.reqs, 1, "attempts")
		if assert.Len(t, ev.es, 1, "events: want one give-up") {
			assert.Equal(t, GiveUp, ev.es[0].Decision.Action, "the event's action")
			assert.Contains(t, ev.es[0].Decision.Reason, "cannot be sent again", "the event's reason")
		}
	})
}

func TestTransportBodylessRequestIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &provider{handlers: []http.HandlerFunc{reply(500, ``), reply(200, `ok`)}}
		tr := &Transport{Base: p, Retrier: newRetrier(t, Config{})}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://api.openai.com/v1/models", nil)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err, "RoundTrip")
		require.Equal(t, 200, resp.StatusCode, "RoundTrip")
		require.Len(t, p.reqs, 2, "attempts")
		resp.Body.Close()
	})
}

func TestTransportErrorAtGiveUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reset := &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}
		calls := 0
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			calls++
			io.Copy(io.Discard, req.Body)
			req.Body.Close()
			return nil, reset
		})
		tr := &Transport{Base: base, Retrier: newRetrier(t, Config{})}
		resp, err := tr.RoundTrip(newChatRequest(t, t.Context()))
		assert.Nil(t, resp, "response")
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, 4, e.Attempts, "Error's attempts")
		require.Equal(t, Connection, e.Decision.Class, "Error's class")
		require.Equal(t, 4, calls, "calls")
		assert.ErrorIs(t, err, syscall.ECONNRESET)
	})
}

func TestTransportTransportErrorPastTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			return nil, io.ErrUnexpectedEOF
		})
		tr := &Transport{Base: base, Retrier: newRetrier(t, Config{})}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := tr.RoundTrip(newChatRequest(t, ctx))
		var e *Error
		if assert.ErrorAs(t, err, &e) {
			assert.True(t, e.Decision.Deadline, "want a deadline *Error")
		}
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

// A GetBody failure on a retry gives up with its own reason, which the
// Observer sees; after a response, that response is returned whole.
func TestTransportGetBodyFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &events{}
		p := &provider{handlers: []http.HandlerFunc{reply(500, `{"error":{"message":"boom"}}`), reply(200, `ok`)}}
		tr := &Transport{Base: p, Retrier: newRetrier(t, Config{}, WithObserver(ev)), Key: func(*http.Request) Key { return testKey }}
		req := newChatRequest(t, t.Context())
		req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("body gone") }
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err, "RoundTrip: want the 500 and a nil error")
		require.NotNil(t, resp, "RoundTrip: want the 500 and a nil error")
		require.Equal(t, 500, resp.StatusCode, "RoundTrip")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.JSONEq(t, `{"error":{"message":"boom"}}`, string(body), "the response is returned whole")
		assert.Equal(t, 1, p.calls(), "nothing is sent after GetBody failed")
		last := ev.es[len(ev.es)-1]
		assert.Equal(t, GiveUp, last.Decision.Action)
		assert.False(t, last.Sent)
		assert.Contains(t, last.Decision.Reason, "could not be read again for attempt 2: body gone")
		assert.NotContains(t, last.Decision.Reason, "retrying")
	})
}

// Without a response to return, a GetBody failure is the *Error's cause.
func TestTransportGetBodyFailsAfterAConnectionError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reset := errors.New("connection reset")
		calls := 0
		base := roundTripFunc(func(*http.Request) (*http.Response, error) { calls++; return nil, reset })
		tr := &Transport{Base: base, Retrier: newRetrier(t, Config{}), Key: func(*http.Request) Key { return testKey }}
		req := newChatRequest(t, t.Context())
		broken := errors.New("body gone")
		req.GetBody = func() (io.ReadCloser, error) { return nil, broken }
		resp, err := tr.RoundTrip(req)
		assert.Nil(t, resp)
		var e *Error
		if assert.ErrorAs(t, err, &e) {
			assert.Equal(t, 1, e.Attempts)
			assert.ErrorIs(t, err, broken, "the cause")
			assert.ErrorIs(t, err, reset, "the last attempt's error")
		}
		assert.Equal(t, 1, calls)
	})
}

func TestTransportClosesTheBodyWhenNothingIsSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &provider{handlers: []http.HandlerFunc{reply(200, `ok`)}}
		tr := &Transport{Base: p, Retrier: newRetrier(t, Config{})}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		closes, mu := 0, &sync.Mutex{}
		req := newChatRequest(t, ctx)
		req.Body = countingBody{Reader: strings.NewReader(chatBody), closes: &closes, mu: mu}
		resp, err := tr.RoundTrip(req)
		require.Nil(t, resp, "RoundTrip's response")
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 1, closes, "body closed")
		assert.Empty(t, p.reqs, "attempts")
	})
}

func TestTransportDefaultBase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRetrier(t, Config{Policies: map[Class]Policy{Connection: {MaxAttempts: 1}}})
		tr := &Transport{Retrier: r}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "unknown-scheme://api.example/v1", nil)
		resp, err := tr.RoundTrip(req)
		assert.Nil(t, resp, "RoundTrip's response")
		var e *Error
		if assert.ErrorAs(t, err, &e, "want an *Error after one attempt through http.DefaultTransport") {
			assert.Equal(t, 1, e.Attempts, "Error's attempts")
		}
	})
}

func TestTransportUsesTheKeyForPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &provider{handlers: []http.HandlerFunc{reply(429, `{}`, "Retry-After", "4"), reply(200, `ok`)}}
		tr := &Transport{Base: p, Retrier: newRetrier(t, Config{})}
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * time.Second)
				resp, err := tr.RoundTrip(newChatRequest(t, t.Context()))
				if !assert.NoError(t, err, "RoundTrip") {
					return
				}
				resp.Body.Close()
			})
		}
		wg.Wait()
		// The first call's 429 at 0s holds the key (same model and API key)
		// for 4s: the second call, started at 1s, is sent at 4s.
		if assert.Len(t, p.times, 3, "sends") {
			assert.Equal(t, 4*time.Second, p.times[1].Sub(start), "the second send")
		}
	})
}

func TestRequestKey(t *testing.T) {
	mk := func(method, url, body string, kv ...string) *http.Request {
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, url, r)
		require.NoError(t, err)
		for i := 0; i+1 < len(kv); i += 2 {
			req.Header.Set(kv[i], kv[i+1])
		}
		return req
	}
	tests := map[string]struct {
		req    *http.Request
		want   Key
		tokens int64
		secret string
	}{
		"openai": {mk("POST", "https://api.openai.com/v1/chat/completions", chatBody, "Authorization", "Bearer sk-proj-abc"),
			Key{OpenAI, "gpt-4o", CredentialID("sk-proj-abc")}, 7 + 100, "sk-proj-abc"},
		"anthropic": {mk("POST", "https://api.anthropic.com/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":1024,"system":"Be brief.","messages":[{"role":"user","content":[{"type":"text","text":"Hi there"}]}]}`,
			"x-api-key", "sk-ant-api03-xyz", "anthropic-version", "2023-06-01"),
			Key{Anthropic, "claude-sonnet-4-5", CredentialID("sk-ant-api03-xyz")}, 5 + 1024, "sk-ant-api03-xyz"},
		"gemini path": {mk("POST", "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent", `{"contents":[{"role":"user","parts":[{"text":"Hello"}]}],"generationConfig":{"maxOutputTokens":256}}`,
			"x-goog-api-key", "AIzaSyD-secret"),
			Key{Gemini, "gemini-2.0-flash", CredentialID("AIzaSyD-secret")}, 2 + 256, "AIzaSyD-secret"},
		"vertex path": {mk("POST", "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro:streamGenerateContent", `{}`,
			"Authorization", "Bearer ya29.token"),
			Key{Vertex, "gemini-1.5-pro", CredentialID("ya29.token")}, 0, "ya29.token"},
		"azure api-key": {mk("POST", "https://gateway.internal/openai/deployments/gpt4/chat/completions", `{"messages":[]}`, "api-key", "azure-secret"),
			Key{Azure, "", CredentialID("azure-secret")}, 0, "azure-secret"},
		"gateway anthropic by header": {mk("POST", "http://localhost:8080/v1/complete", `{"model":"claude"}`, "anthropic-version", "2023-06-01"),
			Key{Anthropic, "claude", "none"}, 0, ""},
		"gateway anthropic by path": {mk("POST", "http://localhost:8080/v1/messages", `{"model":"claude"}`),
			Key{Anthropic, "claude", "none"}, 0, ""},
		"gemini key in the query": {mk("POST", "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent?key=AIza-query-secret", ``),
			Key{Gemini, "gemini-2.0-flash", CredentialID("AIza-query-secret")}, 0, "AIza-query-secret"},
		"gateway gemini by path": {mk("POST", "http://localhost:8080/v1beta/models/gemini-pro:generateContent", ``),
			Key{Gemini, "gemini-pro", "none"}, 0, ""},
		"generic": {mk("POST", "http://localhost:8080/v1/chat/completions", `{"model":"llama"}`, "Authorization", "Bearer local"),
			Key{Generic, "llama", CredentialID("local")}, 0, "local"},
		"get without body": {mk("GET", "https://api.openai.com/v1/models", ""),
			Key{OpenAI, "", "none"}, 0, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			k, n := RequestKey(tt.req), RequestTokens(tt.req)
			assert.Equal(t, tt.want, k, "RequestKey")
			assert.Equal(t, tt.tokens, n, "RequestTokens")
			if tt.secret != "" {
				assert.NotContains(t, k.String(), tt.secret, "Key.String() reveals the secret")
			}
			assert.Equal(t, string(tt.want.Provider)+"/"+tt.want.Model+"/"+tt.want.Credential, k.String(), "Key.String()")
		})
	}
	t.Run("body read through GetBody only", func(t *testing.T) {
		req := mk("POST", "https://api.openai.com/v1/chat/completions", chatBody)
		before := req.Body
		RequestKey(req)
		require.True(t, req.Body == before, "RequestKey replaced req.Body")
		b, _ := io.ReadAll(req.Body)
		assert.Equal(t, chatBody, string(b), "req.Body after RequestKey: want it unread")
	})
	t.Run("body read only as far as the model", func(t *testing.T) {
		// A large prompt: the model is found in the first read; a model
		// split across reads is found whole; tokens need the whole body.
		body := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("abcd ", 200_000) + `"}]}`
		var read int
		req := mk("POST", "https://api.openai.com/v1/chat/completions", body)
		req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(readCounter{iotest.OneByteReader(strings.NewReader(body)), &read}), nil
		}
		assert.Equal(t, "gpt-4o", RequestKey(req).Model)
		assert.Less(t, read, 64, "bytes read for the model")
		read = 0
		assert.Equal(t, EstimateTokens([]byte(body)), RequestTokens(req))
		assert.Equal(t, len(body), read, "tokens read it all")
	})
	t.Run("without GetBody model and tokens unknown", func(t *testing.T) {
		req := mk("POST", "https://api.openai.com/v1/chat/completions", chatBody)
		req.GetBody = nil
		k, n := RequestKey(req), RequestTokens(req)
		assert.Empty(t, k.Model, "RequestKey's model")
		assert.Zero(t, n, "RequestTokens")
	})
	t.Run("too large a body is not read", func(t *testing.T) {
		req := mk("POST", "https://api.openai.com/v1/chat/completions", chatBody)
		req.ContentLength = maxKeyBody + 1
		k, n := RequestKey(req), RequestTokens(req)
		assert.Empty(t, k.Model, "RequestKey's model")
		assert.Zero(t, n, "RequestTokens")
	})
}

func TestCredentialID(t *testing.T) {
	a, b := CredentialID("sk-one"), CredentialID("sk-two")
	assert.Len(t, a, 16, "CredentialID: want 16 hex digits")
	assert.NotEqual(t, a, b, "CredentialID: want distinct per secret")
	assert.Equal(t, a, CredentialID("sk-one"), "CredentialID: want stable")
	assert.NotContains(t, a, "sk-one", "CredentialID reveals the secret")
	assert.Equal(t, "none", CredentialID(""), `CredentialID("")`)
}

func TestEstimateTokens(t *testing.T) {
	tests := map[string]struct {
		body string
		want int64
	}{
		"openai chat": {chatBody, 7 + 100}, // 25 characters
		"openai parts": {`{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"12345678"},{"type":"image_url","image_url":{"url":"abcd"}}]}],"max_completion_tokens":50}`,
			2 + mediaTokens + 50},
		"openai base64 image is not text": {`{"messages":[{"role":"user","content":[{"type":"text","text":"abcd"},{"type":"image_url","image_url":{"url":"data:image/png;base64,` + strings.Repeat("QUJD", 10000) + `"}}]}]}`,
			1 + mediaTokens},
		"anthropic base64 image": {`{"max_tokens":10,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + strings.Repeat("QUJD", 10000) + `"}},{"type":"text","text":"What is this?"}]}]}`,
			4 + mediaTokens + 10},
		"gemini inline data": {`{"contents":[{"parts":[{"inlineData":{"mimeType":"image/png","data":"` + strings.Repeat("QUJD", 10000) + `"}},{"text":"abcd"}]}]}`,
			1 + mediaTokens},
		"a tool parameter named source is not media": {`{"tools":[{"parameters":{"properties":{"source":{"type":"string"}}}}],"prompt":"abcd"}`, 1},
		"openai responses":                           {`{"model":"gpt-4o","input":"abcdefgh","max_output_tokens":10}`, 2 + 10},
		"anthropic": {`{"model":"claude","max_tokens":1024,"system":[{"type":"text","text":"Be brief."}],"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"text","text":"Hello!"}]}]}`,
			5 + 1024}, // 9+2+6 = 17 characters
		"gemini": {`{"contents":[{"role":"user","parts":[{"text":"Hello"}]}],"systemInstruction":{"parts":[{"text":"abc"}]},"generationConfig":{"maxOutputTokens":256}}`,
			2 + 256},
		"legacy prompt":         {`{"prompt":"abcd","max_tokens":1}`, 1 + 1},
		"runes not bytes":       {`{"messages":[{"content":"ééééé"}]}`, 2},
		"the largest allowance": {`{"max_tokens":10,"generationConfig":{"maxOutputTokens":20}}`, 20},
		"negative allowance":    {`{"max_tokens":-5,"prompt":"abcd"}`, 1},
		"fractional allowance":  {`{"max_tokens":1.5}`, 0},
		"string allowance":      {`{"max_tokens":"100"}`, 0},
		"model not counted":     {`{"model":"a-very-long-model-name","messages":[]}`, 0},
		"not json":              {`hello world`, 0},
		"empty":                 {``, 0},
		"array":                 {`[{"content":"abcd"}]`, 1},
		"allowance saturates":   {`{"max_tokens":9223372036854775807,"prompt":"abcd"}`, math.MaxInt64},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tt.want, EstimateTokens([]byte(tt.body)), "EstimateTokens")
		})
	}
}

// TestPeekBody checks that a peeked body reads whole and closes the original.
func TestPeekBody(t *testing.T) {
	closes, mu := 0, &sync.Mutex{}
	full := bytes.Repeat([]byte("0123456789"), maxBody/5)
	resp := &http.Response{Body: countingBody{Reader: bytes.NewReader(full), closes: &closes, mu: mu}}
	assert.Equal(t, full[:maxBody], peekBody(resp), "peeked: want the first maxBody bytes")
	got, _ := io.ReadAll(resp.Body)
	assert.Equal(t, full, got, "read after peeking: want all")
	resp.Body.Close()
	assert.Equal(t, 1, closes, "Close reached the original")
}

func TestJSONModel(t *testing.T) {
	tests := map[string]struct{ body, want string }{
		"first key":           {`{"model":"gpt-4o","messages":[]}`, "gpt-4o"},
		"after messages":      {`{"messages":[{"role":"user","content":"hi"}],"model":"claude-x"}`, "claude-x"},
		"spaces":              {"{ \"model\" :\n \"m\" }", "m"},
		"model as a value":    {`{"role":"model","model":"gemini"}`, "gemini"},
		"escaped in a string": {`{"content":"say \"model\": \"evil\"","model":"real"}`, "real"},
		"escaped value":       {`{"model":"a\"b"}`, `a"b`},
		"not a string":        {`{"model":7}`, ""},
		"none":                {`{"messages":[]}`, ""},
		"unterminated":        {`{"model":"abc`, ""},
		"truncated after key": {`{"model"`, ""},
		"empty":               {``, ""},
	}
	for name, tt := range tests {
		assert.Equal(t, tt.want, jsonModel([]byte(tt.body)), "%s: jsonModel(%s)", name, tt.body)
	}
}

// TestModelNamesCostBoundedMemory checks the caps on model names: a huge
// name is shortened (distinct names stay distinct) and the intern cache
// keeps at most maxModels short names, none of them long.
func TestModelNamesCostBoundedMemory(t *testing.T) {
	huge := strings.Repeat("m", 1<<20)
	a := jsonModel([]byte(`{"model":"` + huge + `a"}`))
	b := jsonModel([]byte(`{"model":"` + huge + `b"}`))
	assert.LessOrEqual(t, len(a), maxModelLen, "a 1 MiB model name is shortened")
	assert.NotEqual(t, a, b, "distinct long names stay distinct")
	assert.True(t, strings.HasPrefix(a, strings.Repeat("m", 64)))

	for i := range 3 * maxModels {
		jsonModel([]byte(fmt.Sprintf(`{"model":"model-%d-%s"}`, i, strings.Repeat("x", maxInternLen))))
		jsonModel([]byte(fmt.Sprintf(`{"model":"m-%d"}`, i)))
	}
	models.RLock()
	defer models.RUnlock()
	assert.LessOrEqual(t, len(models.m), maxModels)
	for name := range models.m {
		assert.LessOrEqual(t, len(name), maxInternLen)
	}
}

// readCounter counts the bytes read through it in *n.
type readCounter struct {
	r io.Reader
	n *int
}

func (c readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += n
	return n, err
}
