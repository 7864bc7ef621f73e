package sim

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// closeCounter is a request body that counts Close calls.
type closeCounter struct {
	io.Reader
	mu     sync.Mutex
	closed int
}

func (c *closeCounter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed++
	return nil
}

func (c *closeCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func roundTrip(t *testing.T, ctx context.Context, h http.HandlerFunc) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://sim.local/x?y=1", strings.NewReader("body"))
	require.NoError(t, err)
	return Transport{Handler: h}.RoundTrip(req)
}

func TestTransportResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := &closeCounter{Reader: strings.NewReader("ping")}
		req, _ := http.NewRequest(http.MethodPost, "http://sim.local/x?y=1", body)
		resp, err := Transport{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			assert.Equal(t, "/x?y=1", r.RequestURI, "the handler's RequestURI")
			assert.Equal(t, "sim.local", r.Host, "the handler's Host")
			assert.Equal(t, "ping", string(b), "the handler's body")
			w.Header().Set("Content-Length", "4")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "pong")
		})}.RoundTrip(req)
		require.NoError(t, err)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err, "reading the body")
		require.Equal(t, "pong", string(got), "body")
		assert.Equal(t, 201, resp.StatusCode, "StatusCode")
		assert.Equal(t, "201 Created", resp.Status, "Status")
		assert.Equal(t, int64(4), resp.ContentLength, "ContentLength")
		assert.Equal(t, "HTTP/1.1", resp.Proto, "Proto")
		assert.Same(t, req, resp.Request, "Request")
		synctest.Wait()
		assert.Equal(t, 1, body.count(), "request body closed")
	})
}

func TestTransportEmptyHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		resp, err := roundTrip(t, context.Background(), func(http.ResponseWriter, *http.Request) {})
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		assert.Equal(t, 200, resp.StatusCode, "StatusCode")
		assert.Empty(t, b, "body")
		assert.NoError(t, err, "reading the body")
		assert.Equal(t, int64(-1), resp.ContentLength, "ContentLength")
	})
}

func TestTransportStreamsBeforeHandlerReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		resp, err := roundTrip(t, context.Background(), func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			<-release
			io.WriteString(w, "data: x\n\n")
		})
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"), "header %v", resp.Header)
		close(release)
		b, err := io.ReadAll(resp.Body)
		assert.NoError(t, err, "reading the body")
		assert.Equal(t, "data: x\n\n", string(b), "body")
	})
}

func TestTransportAbort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, err := roundTrip(t, context.Background(), func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK) // recorded, not sent
			panic(http.ErrAbortHandler)
		})
		assert.ErrorIs(t, err, syscall.ECONNRESET, "abort before commit")

		resp, err := roundTrip(t, context.Background(), func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			panic(http.ErrAbortHandler)
		})
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, "partial", string(b), "abort after commit: body")
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "abort after commit")

		_, err = roundTrip(t, context.Background(), func(w http.ResponseWriter, r *http.Request) {
			panic("boom")
		})
		assert.ErrorIs(t, err, syscall.ECONNRESET, "other panic")
		assert.ErrorContains(t, err, "boom", "other panic")
	})
}

func TestTransportCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Before the response: RoundTrip returns the context's error and the
		// handler sees its context canceled.
		ctx, cancel := context.WithCancel(context.Background())
		handlerDone := make(chan error, 1)
		go func() {
			time.Sleep(time.Second)
			cancel()
		}()
		_, err := roundTrip(t, ctx, func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			handlerDone <- r.Context().Err()
		})
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, <-handlerDone, context.Canceled, "the handler's context")

		// After the response: reading the body fails with the context's error.
		ctx, cancel = context.WithCancel(context.Background())
		resp, err := roundTrip(t, ctx, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "a")
			<-r.Context().Done()
		})
		require.NoError(t, err)
		buf := make([]byte, 1)
		_, err = resp.Body.Read(buf)
		require.NoError(t, err)
		cancel()
		_, err = resp.Body.Read(buf)
		assert.ErrorIs(t, err, context.Canceled, "read after cancel")
		resp.Body.Close()

		// Closing the body ends a handler that is still writing.
		resp, err = roundTrip(t, context.Background(), func(w http.ResponseWriter, r *http.Request) {
			for {
				if _, err := io.WriteString(w, "more"); err != nil {
					handlerDone <- err
					return
				}
			}
		})
		require.NoError(t, err)
		resp.Body.Read(buf)
		resp.Body.Close()
		assert.ErrorIs(t, <-handlerDone, io.ErrClosedPipe, "handler write after close")
	})
}

func TestTransportUnreadBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A client that never reads or closes the body does not keep the
		// handler (and so the bubble) alive, and the handler's writes succeed.
		p := newProvider(t, Config{Latency: -1})
		req, _ := http.NewRequest(http.MethodPost, "http://sim.local/v1/chat/completions",
			strings.NewReader(`{"model":"m","messages":[],"stream":true}`))
		req.Header.Set("Authorization", "Bearer k")
		resp, err := Transport{Handler: p}.RoundTrip(req)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, "StatusCode")
		synctest.Wait()
		assert.Equal(t, 1, p.Stats().Succeeded, "succeeded")
		// Reads after Close fail.
		resp.Body.Close()
		_, err = resp.Body.Read(make([]byte, 1))
		assert.ErrorIs(t, err, errBodyClosed, "read after close")
	})
}

func TestTransportConcurrentSDKClients(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProvider(t, Config{RPM: 100, Seed: 7, ErrorRate: 0.1, SlowRate: 0.1})
		client := openAIClient(p)
		var wg sync.WaitGroup
		for i := range 150 {
			wg.Go(func() {
				if i%2 == 0 {
					client.Chat.Completions.New(context.Background(), chatParams("hi"))
					return
				}
				stream := client.Chat.Completions.NewStreaming(context.Background(), chatParams("hi"))
				for stream.Next() {
				}
				stream.Close()
			})
		}
		wg.Wait()
		s := p.Stats()
		sum := s.Succeeded
		for _, n := range s.Rejected {
			sum += n
		}
		assert.Equal(t, 150, s.Received, "received; stats %+v", s.Counts)
		assert.Equal(t, 150, sum, "succeeded and rejected; stats %+v", s.Counts)
		assert.Equal(t, 100, s.Admitted, "admitted; stats %+v", s.Counts)
		assert.Equal(t, 50, s.Rejected[ReasonRateLimited], "rejected rate limited; stats %+v", s.Counts)
	})
}
