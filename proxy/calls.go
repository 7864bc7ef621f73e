package proxy

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/retry"
)

// HeaderCallID names the runner's logical call, the same on each of the
// SDK's attempts of it: the proxy counts the requests that carry it as one
// call while it awaits a retry. See the package documentation.
const HeaderCallID = "X-Autopack-Call-Id"

// headerRetryCount is the count of retries before a request, as the
// Stainless-generated SDKs send it (0 on the first attempt).
const headerRetryCount = "X-Stainless-Retry-Count"

const (
	// retryGrace is how long an open call awaits the SDK's next attempt
	// after the wait the response asked for: without a retry-after the
	// SDKs' backoff is at most 8 s (0.5 s·2ⁿ, capped), and the rest is
	// slack for a busy client.
	retryGrace = 30 * time.Second
	// maxSDKWait is the longest retry-after a Stainless SDK waits for
	// (openai-go's cap; the Python and Node SDKs wait at most 60 s, else
	// their backoff). A longer hint adds nothing to retryGrace.
	maxSDKWait = 2 * time.Minute
	// maxOpen is the most calls kept open at once: beyond it the oldest is
	// ended. Each holds its span, its summary and its context's values,
	// never a request or a body.
	maxOpen = 10_000
)

// errNoRetry is the error an open call ends with when its client sent no
// further attempt.
var errNoRetry = errors.New("proxy: the client did not send the retry its SDK's rule called for")

// A callKey tells the logical call a request belongs to: SHA-256 of the
// run id, the credential's id and either the call id or the request itself
// (method, target, body). It holds no secret and no body.
type callKey [sha256.Size]byte

// keyOf returns the key of r's call, and false when r's call cannot be
// told from another's: r has no call id, and either does not count its
// retries (no X-Stainless-Retry-Count) or has a body too large to keep.
func keyOf(r *http.Request, credential string) (callKey, bool) {
	h := sha256.New()
	field := func(s string) {
		binary.Write(h, binary.BigEndian, uint64(len(s)))
		io.WriteString(h, s)
	}
	field(r.Header.Get(HeaderRunID))
	field(credential)
	if id := r.Header.Get(HeaderCallID); id != "" {
		field("call-id")
		field(id)
		return sum(h), true
	}
	if n, err := strconv.Atoi(r.Header.Get(headerRetryCount)); err != nil || n < 0 {
		return callKey{}, false
	}
	field("request")
	field(r.Method)
	field(r.RequestURI)
	if r.ContentLength != 0 {
		if r.GetBody == nil {
			return callKey{}, false
		}
		body, err := r.GetBody()
		if err != nil {
			return callKey{}, false
		}
		io.Copy(h, body)
		body.Close()
	}
	return sum(h), true
}

func sum(h hash.Hash) (k callKey) {
	h.Sum(k[:0])
	return k
}

// mayResume reports whether r may be a later attempt of an open call:
// its X-Stainless-Retry-Count is above 0, or, with a call id, absent (a
// client that does not count its retries). A request that says it is a
// first attempt always begins a call.
func mayResume(r *http.Request) bool {
	v := r.Header.Get(headerRetryCount)
	if v == "" {
		return r.Header.Get(HeaderCallID) != ""
	}
	n, err := strconv.Atoi(v)
	return err == nil && n > 0
}

// An openCall is a control call between two of its SDK's attempts.
type openCall struct {
	call     *hooks.OpenCall
	ctx      context.Context // the call's values, without any request's cancellation
	key      callKey
	route    string
	deadline time.Time // when it ends unless an attempt resumes it
	elem     *list.Element
}

// attemptContext returns the context of the call's next attempt, carried
// by a request whose context is req: the call's values, req's
// cancellation. Call stop when the attempt is over.
func (c *openCall) attemptContext(req context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(c.ctx)
	after := context.AfterFunc(req, func() { cancel(context.Cause(req)) })
	return ctx, func() {
		after()
		cancel(nil)
	}
}

// retryDeadline is when the call of ctx, which has just failed an
// attempt at now, ends unless its SDK's next attempt came: after the wait
// the response asked for, when the SDKs honor it, and retryGrace.
func retryDeadline(ctx context.Context, now time.Time) time.Time {
	wait := retryGrace
	if s, _ := hooks.SummaryOf(ctx); s.Hint <= maxSDKWait &&
		(s.HintSource == retry.SourceRetryAfter || s.HintSource == retry.SourceRetryAfterMS) {
		wait += s.Hint
	}
	return now.Add(wait)
}

// openCalls are the control calls that await their SDK's next attempt,
// oldest first, at most max of them. A single timer ends those whose
// deadline passed. It is safe for concurrent use.
type openCalls struct {
	log *slog.Logger
	max int

	mu     sync.Mutex
	byKey  map[callKey][]*openCall // first in, first resumed
	order  list.List               // of *openCall, oldest first
	timer  *time.Timer             // ends the calls whose deadline passed
	next   time.Time               // when timer fires; zero when it is not set
	closed bool
}

func newOpenCalls(log *slog.Logger) *openCalls {
	return &openCalls{log: log, max: maxOpen, byKey: make(map[callKey][]*openCall)}
}

// add keeps c open until an attempt resumes it (take) or its deadline
// passes. When max calls are open, the oldest is ended first; after close,
// c is ended at once.
func (o *openCalls) add(c *openCall) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		o.end(c, slog.LevelDebug, "the proxy is draining")
		return
	}
	var evicted []*openCall
	for o.order.Len() >= max(o.max, 1) {
		evicted = append(evicted, o.remove(o.order.Front().Value.(*openCall)))
	}
	c.elem = o.order.PushBack(c)
	o.byKey[c.key] = append(o.byKey[c.key], c)
	if o.next.IsZero() || c.deadline.Before(o.next) {
		o.arm(c.deadline)
	}
	o.mu.Unlock()
	for _, e := range evicted {
		o.end(e, slog.LevelWarn, "more control calls awaited a retry than the proxy keeps open ("+strconv.Itoa(o.max)+")")
	}
}

// take removes and returns the oldest open call under key, nil if none.
func (o *openCalls) take(key callKey) *openCall {
	o.mu.Lock()
	defer o.mu.Unlock()
	if q := o.byKey[key]; len(q) > 0 {
		return o.remove(q[0])
	}
	return nil
}

// remove removes c; o.mu must be held.
func (o *openCalls) remove(c *openCall) *openCall {
	o.order.Remove(c.elem)
	q := o.byKey[c.key]
	for i, x := range q {
		if x == c {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(o.byKey, c.key)
	} else {
		o.byKey[c.key] = q
	}
	return c
}

// arm sets the timer to fire at t; o.mu must be held.
func (o *openCalls) arm(t time.Time) {
	o.next = t
	if o.timer == nil {
		o.timer = time.AfterFunc(time.Until(t), o.expire)
		return
	}
	o.timer.Reset(time.Until(t))
}

// expire ends the calls whose deadline passed and sets the timer for the
// next deadline.
func (o *openCalls) expire() {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	now := time.Now()
	var expired []*openCall
	var next time.Time
	for e := o.order.Front(); e != nil; {
		c := e.Value.(*openCall)
		e = e.Next()
		switch {
		case !c.deadline.After(now):
			expired = append(expired, o.remove(c))
		case next.IsZero() || c.deadline.Before(next):
			next = c.deadline
		}
	}
	o.next = time.Time{}
	if !next.IsZero() {
		o.arm(next)
	}
	o.mu.Unlock()
	for _, c := range expired {
		o.end(c, slog.LevelDebug, "no retry came within the SDK's wait and "+retryGrace.String())
	}
}

// close ends every open call; calls added later are ended at once.
func (o *openCalls) close() {
	o.mu.Lock()
	o.closed = true
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	var all []*openCall
	for o.order.Len() > 0 {
		all = append(all, o.remove(o.order.Front().Value.(*openCall)))
	}
	o.mu.Unlock()
	for _, c := range all {
		o.end(c, slog.LevelDebug, "the proxy is draining")
	}
}

// end ends c as failed with its last outcome: its client sent no further
// attempt (while the proxy watched).
func (o *openCalls) end(c *openCall, level slog.Level, why string) {
	_, err := c.call.End(c.ctx, hooks.Response{}, errNoRetry)
	var ce *hooks.CallError
	if errors.As(err, &ce) {
		o.log.Log(c.ctx, level, "dynretry proxy: a control call ended awaiting its client's retry: "+why,
			"route", c.route, "class", ce.Summary.Class, "attempts", ce.Summary.Attempts)
	}
}
