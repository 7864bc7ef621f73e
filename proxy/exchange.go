package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
)

// An exchange is one request and its response: the reverse proxy's hooks
// for it, and what they learn.
type exchange struct {
	p     *Proxy
	w     http.ResponseWriter
	r     *http.Request
	route routeTo
	ctx   context.Context // the call's, inside the plugin's middleware

	err   error // why the call failed, if it did
	abort bool  // the response was cut after it began
}

type exchangeKey struct{}

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
