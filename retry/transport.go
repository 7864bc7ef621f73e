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
// returned, streaming included, it is never retried: the commit point. When
// the engine gives up after a response, that response is returned with a
// nil error, so the SDK reports it as it always does; when it gives up
// before one, the error is an *Error.
type Transport struct {
	// Base sends each attempt; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Retrier decides and paces; it must not be nil.
	Retrier *Retrier
	// Key derives a request's limit key; nil means RequestKey.
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
		keyOf = RequestKey
	}
	if tokensOf == nil {
		tokensOf = RequestTokens
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	ctx := req.Context()
	key := keyOf(req)
	c := t.Retrier.start(key, func() int64 { return tokensOf(req) }, replayable)
	defer c.end()
	for {
		if err := c.wait(ctx); err != nil {
			if c.attempts == 0 && req.Body != nil {
				req.Body.Close() // the contract: the body is closed, also on errors
			}
			return nil, err
		}
		attempt := req
		if c.attempts > 0 {
			attempt = req.Clone(ctx)
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, c.result(ctx, err)
				}
				attempt.Body = body
			}
		}
		resp, err := base.RoundTrip(attempt)
		if d := c.decide(ctx, ReadOutcome(key.Provider, resp, err)); d.Action != Retry {
			if err != nil {
				return nil, c.result(ctx, err)
			}
			return resp, nil
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
			resp.Body.Close()
		}
	}
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
func peekBody(resp *http.Response) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
	return b
}
