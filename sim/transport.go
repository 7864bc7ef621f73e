package sim

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Transport is an http.RoundTripper that serves each request by calling
// Handler in-process, without sockets, so that it works inside a
// testing/synctest bubble. It is safe for concurrent use if Handler is.
//
// Each RoundTrip runs the handler in a new goroutine that ends when the
// handler returns. The response is returned as soon as the handler commits
// it: on its first Write, on Flush, or when it returns. Until then,
// WriteHeader and header changes are only recorded, as with net/http. The
// body then streams to the client as the handler writes it. Writes never
// wait for the client (they are buffered, as a socket would buffer a small
// response), so the handler finishes even if the client never reads or
// closes the body. Reading the body to io.EOF guarantees that the handler
// has returned.
//
// A handler that panics with http.ErrAbortHandler (or any other value)
// behaves like a server whose connection breaks: before the response is
// committed RoundTrip returns a *net.OpError wrapping syscall.ECONNRESET;
// afterwards reading the body fails with io.ErrUnexpectedEOF.
//
// When the request's context is done, RoundTrip returns its error (if the
// response was not yet committed) or reading the body returns it, and the
// handler's context is canceled. Closing the response body also cancels the
// handler's context and makes its further writes fail.
type Transport struct {
	// Handler serves the requests. It sees a server-side request: a clone
	// with RequestURI set and a non-nil Body.
	Handler http.Handler
}

// connReset returns the error of a connection reset before the response:
// errors.Is(err, syscall.ECONNRESET) holds.
func connReset() error {
	return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
}

// RoundTrip implements http.RoundTripper.
func (t Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeRequestBody(req)
		return nil, err
	}
	hctx, cancel := context.WithCancel(ctx)
	body := newPipe()
	rw := &pipeResponseWriter{header: make(http.Header), body: body, ready: make(chan struct{})}
	stop := context.AfterFunc(ctx, func() { body.abort(ctx.Err()) })

	sreq := req.Clone(hctx)
	sreq.RequestURI = req.URL.RequestURI()
	if sreq.Host == "" {
		sreq.Host = req.URL.Host
	}
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	go func() {
		defer cancel()
		defer stop()
		defer closeRequestBody(req)
		rw.serve(ctx, t.Handler, sreq)
	}()

	select {
	case <-rw.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if rw.err != nil {
		return nil, rw.err
	}
	resp := &http.Response{
		Status:        strings.TrimSpace(strconv.Itoa(rw.status) + " " + http.StatusText(rw.status)),
		StatusCode:    rw.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rw.sent,
		Body:          &pipeBody{pipe: body, cancel: cancel},
		ContentLength: -1,
		Request:       req,
	}
	if n, err := strconv.ParseInt(rw.sent.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		resp.ContentLength = n
	}
	return resp, nil
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// pipeResponseWriter is the http.ResponseWriter and http.Flusher of one
// RoundTrip. Only the handler goroutine calls its methods; RoundTrip reads
// status, sent and err after ready is closed.
type pipeResponseWriter struct {
	header      http.Header
	body        *pipe
	status      int
	wroteHeader bool

	committed bool
	ready     chan struct{} // closed on commit or failure before it
	sent      http.Header   // the header as committed
	err       error         // why no response, when ready is closed without one
}

func (rw *pipeResponseWriter) Header() http.Header { return rw.header }

// WriteHeader records the status; 1xx statuses and repeated calls are
// ignored.
func (rw *pipeResponseWriter) WriteHeader(status int) {
	if rw.wroteHeader || status < 200 {
		return
	}
	rw.wroteHeader, rw.status = true, status
}

// Write commits the response and writes p to the body. It fails once the
// client closed the body or its context is done.
func (rw *pipeResponseWriter) Write(p []byte) (int, error) {
	if !rw.committed && rw.header.Get("Content-Type") == "" {
		rw.header.Set("Content-Type", http.DetectContentType(p))
	}
	rw.commit()
	return rw.body.Write(p)
}

// Flush commits the response. Written data is already readable by the
// client, so there is nothing else to flush.
func (rw *pipeResponseWriter) Flush() { rw.commit() }

// commit sends the header to RoundTrip once.
func (rw *pipeResponseWriter) commit() {
	if rw.committed {
		return
	}
	rw.WriteHeader(http.StatusOK)
	rw.committed = true
	rw.sent = rw.header.Clone()
	close(rw.ready)
}

// serve runs h and closes the pipe when it returns or panics. clientCtx is
// the request's own context: when it is done, the body fails with its error
// rather than ending cleanly.
func (rw *pipeResponseWriter) serve(clientCtx context.Context, h http.Handler, r *http.Request) {
	defer func() {
		v := recover()
		if v == nil {
			rw.commit()
			rw.body.closeWrite(clientCtx.Err())
			return
		}
		resetErr, bodyErr := connReset(), io.ErrUnexpectedEOF
		if v != http.ErrAbortHandler {
			resetErr = fmt.Errorf("sim: handler panicked: %v: %w", v, resetErr)
			bodyErr = fmt.Errorf("sim: handler panicked: %v: %w", v, bodyErr)
		}
		if !rw.committed {
			rw.err = resetErr
			close(rw.ready)
		}
		rw.body.closeWrite(bodyErr)
	}()
	h.ServeHTTP(rw, r)
}

// pipeBody is a response body read from the handler's pipe.
type pipeBody struct {
	pipe   *pipe
	cancel context.CancelFunc
}

func (b *pipeBody) Read(p []byte) (int, error) { return b.pipe.Read(p) }

// Close cancels the handler's context and makes its further writes fail.
func (b *pipeBody) Close() error {
	b.cancel()
	b.pipe.closeRead()
	return nil
}
