package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
)

// An exchange is one request and its response, an attempt of a call: the
// reverse proxy's hooks for it, and what they learn.
type exchange struct {
	p     *Proxy
	w     http.ResponseWriter
	r     *http.Request
	route routeTo
	key   retry.Key       // the request's
	ctx   context.Context // the call's, for this attempt

	err   error // why the attempt failed, if it did
	abort bool  // the response was cut after it began
}

// forward is the LLM service the plugin's middleware wraps for a new call:
// it sends the call's first attempt. Its error says that the attempt
// failed: a failed response, no response, or a response cut short. A
// control call that its SDK will retry stays open (see openCalls) rather
// than ending here, when its retry can be told from other requests.
func (ex *exchange) forward(ctx context.Context, _ hooks.Call, _ hooks.Request) (hooks.Response, error) {
	err := ex.send(ctx)
	if ex.awaitsRetry() {
		if k, ok := keyOf(ex.r, ex.key.Credential); ok {
			if c := hooks.Hold(ctx); c != nil {
				ex.p.open.add(&openCall{call: c, ctx: context.WithoutCancel(ctx), key: k, route: ex.route.name,
					deadline: retryDeadline(ctx, time.Now())})
			}
		}
	}
	return hooks.Response{}, err
}

// resume sends the next attempt of the open call c, numbered by the call
// (X-Stainless-Retry-Count is set to the attempts it sent), and then either
// keeps c open for one more or ends it, as the plugin's middleware ends a
// call.
func (ex *exchange) resume(c *openCall) {
	ctx, stop := c.attemptContext(ex.r.Context())
	defer stop()
	s, _ := hooks.SummaryOf(ctx)
	ex.r.Header.Set(headerRetryCount, strconv.Itoa(s.Attempts))
	err := ex.send(withClientTimeout(ctx, ex.r.Header.Get(headerTimeout), time.Now()))
	if ex.awaitsRetry() {
		c.deadline = retryDeadline(ctx, time.Now())
		ex.p.open.add(c)
		return
	}
	c.call.End(ctx, hooks.Response{}, err)
}

// send sends the attempt through the reverse proxy, in ctx, and returns
// why it failed, if it did.
func (ex *exchange) send(ctx context.Context) (err error) {
	ex.ctx = ctx
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			ex.abort = true
			if ex.err == nil {
				ex.err = errCut
			}
		}
		err = ex.err
	}()
	ex.reverseProxy().ServeHTTP(ex.w, ex.r.WithContext(ctx))
	http.NewResponseController(ex.w).Flush() // the response is whole: the client has it before the call's bookkeeping
	return nil
}

// awaitsRetry reports whether the attempt's call stays open for the next
// attempt: a control call whose attempt failed and that its SDK retries by
// its rule (retry.SDKDecision, X-Should-Retry included), as the control
// transport decided from the response's status and headers. That holds
// also when the response's body was cut: an SDK that retries a status
// closes the body unread (openai-go does), and the proxy's write then fails.
func (ex *exchange) awaitsRetry() bool {
	s, _ := hooks.SummaryOf(ex.ctx)
	return ex.err != nil && hooks.CohortOf(ex.ctx) == rollout.Control && s.Decision == retry.Retry
}

// reverseProxy returns the reverse proxy of the exchange.
func (ex *exchange) reverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        ex.rewrite,
		Transport:      ex.p.transport,
		ModifyResponse: ex.modifyResponse,
		ErrorHandler:   ex.errorHandler,
		ErrorLog:       ex.p.errorLog,
		BufferPool:     &buffers,
	}
}

// buffers recycles the buffers responses are copied through.
var buffers = bufferPool{sync.Pool{New: func() any { return new([32 << 10]byte) }}}

// bufferPool is an httputil.BufferPool of 32 KiB buffers.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte  { return b.pool.Get().(*[32 << 10]byte)[:] }
func (b *bufferPool) Put(p []byte) { b.pool.Put((*[32 << 10]byte)(p)) }

// rewrite sends the request to the route's upstream, without the
// X-Autopack-* headers and the client's Accept-Encoding.
func (ex *exchange) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Path, pr.Out.URL.RawPath = ex.route.path, ex.route.rawPath
	pr.SetURL(ex.route.base)
	for k := range pr.Out.Header {
		if strings.HasPrefix(k, "X-Autopack-") {
			delete(pr.Out.Header, k)
		}
	}
	pr.Out.Header.Del("Accept-Encoding")
}

// modifyResponse adds the call's headers to the upstream's response.
func (ex *exchange) modifyResponse(resp *http.Response) error {
	h := resp.Header
	for k := range h {
		if strings.HasPrefix(k, "X-Dynretry-") {
			delete(h, k)
		}
	}
	h.Set(HeaderCohort, string(hooks.CohortOf(ex.ctx)))
	if resp.StatusCode >= 400 {
		ex.err = statusError(resp.StatusCode)
		s, _ := hooks.SummaryOf(ex.ctx)
		setFailure(h, s.Class, s.Attempts, s.Reason)
	}
	return nil
}

// errorHandler answers a call that has no response to return: the
// upstream could not be reached or the engine gave up without one.
func (ex *exchange) errorHandler(w http.ResponseWriter, _ *http.Request, err error) {
	ex.err = err
	s, _ := hooks.SummaryOf(ex.ctx)
	class, reason := s.Class, s.Reason
	var re *retry.Error
	switch {
	case errors.As(err, &re):
		class, reason = re.Decision.Class, re.Decision.Reason
	case class == "":
		class = retry.Assess(retry.Outcome{Err: err}, time.Now()).Class
		reason = string(class) + ": " + err.Error()
	}
	cohort := hooks.CohortOf(ex.ctx)
	h := w.Header()
	h.Set(HeaderCohort, string(cohort))
	if cohort == rollout.Treatment {
		h.Set("X-Should-Retry", "false")
	}
	setFailure(h, class, s.Attempts, reason)
	level := slog.LevelDebug
	if class == retry.Connection || class == retry.Timeout {
		level = slog.LevelWarn // the upstream is in trouble: the operator should know
	}
	ex.p.log.Log(ex.ctx, level, "dynretry proxy: no response to return", "route", ex.route.name, "class", class, "reason", clean(reason))
	writeError(w, ex.route.name, statusOf(class, ex.route.name), class, "dynretry proxy: "+clean(reason))
}
