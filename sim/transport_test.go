package sim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
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
	if err != nil {
		t.Fatal(err)
	}
	return Transport{Handler: h}.RoundTrip(req)
}

func TestTransportResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := &closeCounter{Reader: strings.NewReader("ping")}
		req, _ := http.NewRequest(http.MethodPost, "http://sim.local/x?y=1", body)
		resp, err := Transport{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if r.RequestURI != "/x?y=1" || r.Host != "sim.local" || string(b) != "ping" {
				t.Errorf("handler saw %q %q %q", r.RequestURI, r.Host, b)
			}
			w.Header().Set("Content-Length", "4")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "pong")
		})}.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != "pong" {
			t.Fatalf("body %q, err %v", got, err)
		}
		if resp.StatusCode != 201 || resp.Status != "201 Created" || resp.ContentLength != 4 ||
			resp.Proto != "HTTP/1.1" || resp.Request != req {
			t.Errorf("response = %+v", resp)
		}
		synctest.Wait()
		if n := body.count(); n != 1 {
			t.Errorf("request body closed %d times, want 1", n)
		}
	})
}

func TestTransportEmptyHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		resp, err := roundTrip(t, context.Background(), func(http.ResponseWriter, *http.Request) {})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(b) != 0 || err != nil || resp.ContentLength != -1 {
			t.Errorf("got %d %q %v, length %d", resp.StatusCode, b, err, resp.ContentLength)
		}
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
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Errorf("header = %v", resp.Header)
		}
		close(release)
		if b, err := io.ReadAll(resp.Body); string(b) != "data: x\n\n" || err != nil {
			t.Errorf("body %q, err %v", b, err)
		}
	})
}

func TestTransportAbort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, err := roundTrip(t, context.Background(), func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK) // recorded, not sent
			panic(http.ErrAbortHandler)
		})
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("abort before commit: err = %v, want ECONNRESET", err)
		}

		resp, err := roundTrip(t, context.Background(), func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			panic(http.ErrAbortHandler)
		})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "partial" || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("abort after commit: body %q, err %v", b, err)
		}

		_, err = roundTrip(t, context.Background(), func(w http.ResponseWriter, r *http.Request) {
			panic("boom")
		})
		if !errors.Is(err, syscall.ECONNRESET) || !strings.Contains(err.Error(), "boom") {
			t.Errorf("other panic: err = %v", err)
		}
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
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if err := <-handlerDone; !errors.Is(err, context.Canceled) {
			t.Errorf("handler ctx err = %v", err)
		}

		// After the response: reading the body fails with the context's error.
		ctx, cancel = context.WithCancel(context.Background())
		resp, err := roundTrip(t, ctx, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "a")
			<-r.Context().Done()
		})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		if _, err := resp.Body.Read(buf); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := resp.Body.Read(buf); !errors.Is(err, context.Canceled) {
			t.Errorf("read after cancel: err = %v, want context.Canceled", err)
		}
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
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Read(buf)
		resp.Body.Close()
		if err := <-handlerDone; !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("handler write after close: err = %v", err)
		}
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
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("got %v, %v", resp, err)
		}
		synctest.Wait()
		if s := p.Stats(); s.Succeeded != 1 {
			t.Errorf("stats = %+v", s.Counts)
		}
		// Reads after Close fail.
		resp.Body.Close()
		if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, errBodyClosed) {
			t.Errorf("read after close: %v", err)
		}
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
		if s.Received != 150 || sum != 150 || s.Admitted != 100 || s.Rejected[ReasonRateLimited] != 50 {
			t.Errorf("stats = %+v", s.Counts)
		}
	})
}
