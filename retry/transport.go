package retry

import (
	"bytes"
	"io"
	"net/http"
)

// Transport is an http.RoundTripper that retries requests with a Retrier.
// Give it to an SDK client with the SDK's own retries turned off (for
// openai-go and anthropic-sdk-go: option.WithHTTPClient and
// option.WithMaxRetries(0)).
//
// It keeps the RoundTripper contract: each retry sends a clone of the
// request with a fresh body from GetBody, the request is never modified,
// discarded responses are read and closed. A request whose body cannot be
// replayed (a body and no GetBody) is sent once. Once a response is
// returned, streaming included, it is never retried: the commit point.
//
// What RoundTrip returns, always one of:
//
//   - A response and a nil error, whenever a response was obtained: the
//     success, or the last failed response when the engine gave up after
//     it — also when it gave up while waiting to retry (another call's hint
//     pushed the retry past the deadline, the limit became blocked, the
//     context ended, GetBody failed): a failed response is kept, its body
//     intact, until the next attempt is actually about to be sent. The SDK
//     then reports it as it always does.
//   - A nil response and an *Error when the call ends without a response to
//     return: no attempt was sent (the limit or its credential is blocked,
//     the limit is held past the deadline, the context ended first), or the
//     last attempt got no response (a connection error, a timeout). The
//     *Error's Decision carries the class and the reason; it wraps the last
//     attempt's error, if any, and the cause: ErrDeadline (which wraps
//     context.DeadlineExceeded) when the deadline left no time for another
//     attempt, the context's error when it ended, the error of GetBody when
//     the body could not be read again.
type Transport struct {
	// Base sends each attempt; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Retrier decides and paces; it must not be nil.
	Retrier *Retrier
	// Key derives a request's limit key; nil means the RequestKey of the
	// Retrier's Credentials.
	Key func(*http.Request) Key
	// Tokens estimates a request's tokens, for limits that count tokens;
	// nil means RequestTokens. It is called only when the limit has a
	// token window.
	Tokens func(*http.Request) int64
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	keyOf, tokensOf := t.Key, t.Tokens
	if keyOf == nil {
		keyOf = t.Retrier.Credentials().RequestKey
	}
	if tokensOf == nil {
		tokensOf = RequestTokens
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	ctx := req.Context()
	key := keyOf(req)
	c := t.Retrier.start(key, func() int64 { return tokensOf(req) }, replayable)
	defer c.end()
	var kept *http.Response // the last failed response, until the next attempt goes
	for {
		var body io.ReadCloser
		var replay error
		if c.attempts > 0 && req.GetBody != nil {
			body, replay = req.GetBody()
		}
		if !c.ready(ctx, replay) {
			if body != nil {
				body.Close()
			}
			if kept != nil {
				return kept, nil
			}
			if c.attempts == 0 && req.Body != nil {
				req.Body.Close() // the contract: the body is closed, also on errors
			}
			return nil, c.result(ctx, replay)
		}
		if kept != nil {
			discard(kept)
			kept = nil
		}
		attempt := req
		if c.attempts > 0 {
			attempt = req.Clone(ctx)
			if body != nil {
				attempt.Body = body
			}
		}
		resp, err := base.RoundTrip(attempt)
		o := ReadOutcome(key.Provider, resp, err)
		d := c.decide(ctx, o)
		c.lastErr = err
		if o.Status >= 400 {
			c.lastErr = &ResponseError{Status: o.Status, Header: o.Header, Body: o.Body}
		}
		switch {
		case d.Action == Retry && resp != nil:
			kept = resp
		case d.Action == Retry:
		case err != nil:
			return nil, c.result(ctx, nil)
		default:
			return resp, nil
		}
	}
}

// discard reads what is left of a response body, up to maxBody, and
// closes it, so that its connection can be reused.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
}

// ReadOutcome describes what a RoundTrip returned. For a failed response it
// reads up to 64 KiB of the body for classification and puts those bytes
// back in front of the rest, so whoever reads resp.Body still reads it
// whole.
func ReadOutcome(p Provider, resp *http.Response, err error) Outcome {
	o := Outcome{Provider: p, Err: err}
	if err == nil && resp != nil {
		o.Status, o.Header = resp.StatusCode, resp.Header
		if resp.StatusCode >= 400 {
			o.Body = peekBody(resp)
		}
	}
	return o
}

// peekBody reads up to maxBody bytes of resp's body and puts them back.
// A body read whole is closed at once and replaced by its bytes, so that a
// response kept while the call waits holds no connection.
func peekBody(resp *http.Response) []byte {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err == nil && len(b) < maxBody {
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return b
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), errReader{err}, resp.Body), resp.Body}
	return b
}

// errReader returns its error, or io.EOF when it is nil: it lets a body
// that failed while peeked fail again for its reader.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) {
	if r.err == nil {
		return 0, io.EOF
	}
	return 0, r.err
}
