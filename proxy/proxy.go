// Package proxy is dynretry as a local HTTP proxy, for runners in any
// language: their SDK clients point their base URL at it, and every process
// on the machine shares its pacer.
//
//	p, err := proxy.New(ctx, proxy.Options{})
//	if err != nil { … }                 // a bad models.yaml or env value
//	defer p.Shutdown(ctx)
//	http.ListenAndServe("127.0.0.1:8787", p)
//
// The proxy is a runner: it registers the plugin (package plugin) with a
// host of its own, so the configuration, the rollout, telemetry, live
// reload and the Store are the plugin's, and every request is one call
// through the plugin's LLM-service middleware (the cohort by run id, the
// call's span, its summary) and its transport (treatment through the
// engine, control passed through and observed), under an
// httputil.ReverseProxy.
//
// # Routes
//
// /openai/…, /anthropic/… and /gemini/… go to the upstreams configured in
// models.yaml (proxy.upstreams.*): the path after the prefix is joined to
// the base URL's path, so /openai/v1/chat/completions goes to
// https://api.openai.com/v1/chat/completions, or to
// http://gw.example.com/api/v1/chat/completions with the base URL
// http://gw.example.com/api. The query passes unchanged (Gemini's ?key=,
// ?alt=sse). The proxy forwards nowhere else. It answers itself, without
// sending anything:
//
//	405  a CONNECT request
//	400  an absolute-URI request target (GET http://host/ HTTP/1.1), a path
//	     with a "." or ".." segment, an X-Autopack-* header that is sent
//	     twice, longer than 256 bytes, not UTF-8 or holds a control
//	     character, a body that could not be read
//	404  a path outside the three prefixes, or under a route whose upstream
//	     is "" (off)
//
// in the JSON error shape of the route's API (OpenAI's for an unknown
// route), with the headers of a failed call below (cohort "none", class
// invalid_request, 0 attempts) and X-Should-Retry: false.
//
// Hop-by-hop headers are removed both ways (httputil.ReverseProxy does),
// as are the X-Autopack-* headers before forwarding, X-Dynretry-* headers
// an upstream sent, and the client's Accept-Encoding: the transport asks
// for gzip itself and decompresses, so that the engine can read error
// bodies. Credentials (Authorization, x-api-key, x-goog-api-key, ?key=)
// pass through unchanged; they name limits only through the engine's
// hash of them and are never logged, reported, exported or echoed.
//
// # Calls and cohorts
//
// A request is an attempt of a call. The call's run is X-Autopack-Run-Id
// (with X-Autopack-Phase-Id and X-Autopack-Role for the span), and the
// rollout assigns its cohort by run id exactly as in process, the
// LOVABLE_DYNAMIC_RETRY_DELAYS switch included. A request without a run id
// is evaluated the same way: the percentage rollout cannot place it, so it
// is in control (its span records the flag's TARGETING_KEY_MISSING), unless
// the switch forces every call on or off.
//
// Treatment: the engine paces and retries within the request, which is the
// whole call; a failed response it gave up on carries X-Should-Retry:
// false, which the official SDKs obey, so the client does not retry on top.
//
// Control: each request is one attempt, passed through and observed, so
// the client's own SDK retries as it did without dynretry; and the SDK's
// attempts of one call are one call of the proxy's, as in process: one
// call span, an attempt span per attempt, one count in dynretry.calls with
// the outcome of the last attempt. After a failed attempt that the SDK
// retries by its rule (retry.SDKDecision, X-Should-Retry included), the
// call stays open, and the request that carries the next attempt resumes
// it. The proxy numbers the attempts of a resumed call itself (1..n), and
// sets X-Stainless-Retry-Count to the retries before the attempt. The next
// attempt is the request that has
//
//   - the X-Autopack-Call-Id of the open call (the runner's id for its
//     logical call, which the SDK repeats on each retry), with the same run
//     and credential, unless its X-Stainless-Retry-Count is 0: a first
//     attempt always begins a call;
//   - else, an X-Stainless-Retry-Count above 0 and the same run,
//     credential, method, target and body as the open call's request (the
//     oldest of equal open calls first).
//
// A request without a call id that does not send X-Stainless-Retry-Count
// (a client that is not a Stainless-generated SDK), or whose body is larger
// than proxy.max_replay_body, cannot be told from another call's: each such
// request is a call. An open call that no attempt resumes within the wait
// its response asked for (retry-after, as the SDKs honor it: at most two
// minutes) and 30 s more ends as failed, with the outcome of its last
// attempt; so does the oldest when 10,000 calls are open, and every open
// call when the proxy drains (Drain, Shutdown). Open calls keep no request
// or body, and no goroutine: one timer ends them.
//
// Every response carries X-Dynretry-Cohort (treatment, control, or none
// when the proxy refused the request itself); a failed one (status 400 or
// more) also X-Dynretry-Class, X-Dynretry-Attempts and X-Dynretry-Reason:
// the call's class, the attempts sent, and the last decision's reason,
// redacted, on one line of ASCII.
//
// A call with no response to return (the upstream unreachable, a limit
// blocked, the client's time spent) is answered by the proxy: 429 for
// rate_limited and quota_exhausted, 503 for overloaded (529 on the
// anthropic route), 504 for timeout, 499 when the client went away, 502
// otherwise, in the route's error shape, with the same headers; in
// treatment also with X-Should-Retry: false.
//
// When the client states its timeout (X-Stainless-Timeout, in seconds, as
// the Stainless-generated SDKs send it), the engine takes the time until
// then, less a tenth of it and at most a second, as the call's deadline:
// it answers before the client gives up rather than after. The deadline
// bounds the engine's waits only; a stream already answering runs on.
//
// # Bodies and streams
//
// A request body of at most proxy.max_replay_body bytes is read into memory
// and can be sent again; a larger one (or one of unknown length that turns
// out larger) streams through once and is not retried. Responses stream as
// they arrive: server-sent events and bodies of unknown length are flushed
// write by write. Once a response's first byte has gone to the client it
// is never retried (the engine's commit point); if the upstream cuts it,
// the client's connection is cut too, so that the truncation shows. A
// client that goes away cancels the upstream call and any wait.
package proxy

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/autopack/dynretry/config"
	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/telemetry"
)

// Request and response headers of the proxy.
const (
	HeaderRunID   = "X-Autopack-Run-Id"
	HeaderPhaseID = "X-Autopack-Phase-Id"
	HeaderRole    = "X-Autopack-Role"

	HeaderCohort   = "X-Dynretry-Cohort"
	HeaderClass    = "X-Dynretry-Class"
	HeaderAttempts = "X-Dynretry-Attempts"
	HeaderReason   = "X-Dynretry-Reason"

	// headerTimeout is the client's timeout in seconds, as the
	// Stainless-generated SDKs send it.
	headerTimeout = "X-Stainless-Timeout"
)

// CohortNone is X-Dynretry-Cohort of a request the proxy refused itself.
const CohortNone = "none"

// Options configure a Proxy; the zero value is valid.
type Options struct {
	// Plugin configures the plugin the proxy registers: models.yaml, the
	// environment, the flag provider, telemetry, the Store and the logger.
	// Its RunID is not used: runs come with the requests.
	Plugin plugin.Options
	// Transport sends to the upstreams; nil means a transport with
	// http.DefaultTransport's settings that keeps up to 256 idle
	// connections per upstream. The plugin's transport wraps it.
	Transport http.RoundTripper
}

// A Proxy is an http.Handler that forwards LLM API calls to the configured
// upstreams through dynretry. It is safe for concurrent use.
type Proxy struct {
	plugin    *plugin.Plugin
	base      http.RoundTripper                       // Options.Transport or the default
	transport http.RoundTripper                       // the plugin's, around base
	llm       func(hooks.LLMService) hooks.LLMService // the plugin's middleware, around an exchange's forward
	open      *openCalls                              // control calls awaiting their SDK's next attempt
	log       *slog.Logger
	errorLog  *log.Logger // httputil.ReverseProxy's, into log
	draining  atomic.Bool
}

// New registers the plugin with the proxy's host and returns the proxy. On
// error (a bad models.yaml or environment value) nothing runs.
func New(ctx context.Context, o Options) (*Proxy, error) {
	p := &Proxy{base: o.Transport, log: o.Plugin.Logger}
	if p.base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 256
		t.MaxIdleConns = 1024
		p.base = t
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.errorLog = log.New(logWriter{p.log}, "", 0)
	o.Plugin.RunID = ""
	h := new(host)
	pl, err := plugin.Register(ctx, h, o.Plugin)
	if err != nil {
		return nil, err
	}
	p.plugin = pl
	p.transport = h.transport(p.base)
	p.llm = h.llm
	p.open = newOpenCalls(p.log)
	return p, nil
}

// Settings returns the proxy's configuration in force; a change of
// models.yaml applies to the next request.
func (p *Proxy) Settings() config.Proxy { return p.plugin.Settings().Proxy }

// ErrorLog returns a logger for the http.Server that serves the proxy:
// each line is redacted and logged at level WARN to the plugin's logger.
func (p *Proxy) ErrorLog() *log.Logger { return p.errorLog }

// Drain makes /healthz of Admin answer 503 from now on, so that a
// supervisor stops sending while the server drains, and ends the control
// calls that await their SDK's next attempt, as failed with their last
// outcome: a draining server takes no new connections, so no retry would
// reach them. A call that would stay open later ends at once.
func (p *Proxy) Drain() {
	p.draining.Store(true)
	p.open.close()
}

// Shutdown ends the control calls that await their SDK's next attempt, as
// Drain does, shuts the plugin down (telemetry flushed) and closes idle
// upstream connections. Call it once the server has stopped.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.open.close()
	if t, ok := p.base.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	return p.plugin.Shutdown(ctx)
}

// Admin returns the handler of the admin port: /healthz answers 200 "ok"
// (503 "draining" after Drain), and /metrics is served by metrics when it
// is not nil.
func (p *Proxy) Admin(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if p.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("draining\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}

// ServeHTTP forwards one attempt of a call; see the package documentation.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := p.Settings()
	rt, bad := route(r, s.Upstreams)
	if bad == nil {
		bad = checkHeaders(r)
	}
	if bad == nil {
		if err := keepBody(r, s.MaxReplayBody); err != nil {
			bad = &refusal{status: http.StatusBadRequest, msg: "reading the request body: " + err.Error()}
		}
	}
	if bad != nil {
		p.refuse(w, rt, bad)
		return
	}
	ex := &exchange{p: p, w: w, r: r, route: rt, key: retry.RequestKey(r)}
	var open *openCall
	if mayResume(r) {
		if k, ok := keyOf(r, ex.key.Credential); ok {
			open = p.open.take(k)
		}
	}
	if open != nil {
		ex.resume(open)
	} else {
		call := hooks.Call{
			RunID: r.Header.Get(HeaderRunID), PhaseID: r.Header.Get(HeaderPhaseID), Role: r.Header.Get(HeaderRole),
			Provider: rt.name, Model: ex.key.Model,
		}
		ctx := withClientTimeout(r.Context(), r.Header.Get(headerTimeout), time.Now())
		p.llm(hooks.LLMFunc(ex.forward)).Complete(ctx, call, hooks.Request{}) // the outcome is in the response written
	}
	if ex.abort {
		panic(http.ErrAbortHandler) // the response was cut: cut the client's connection too
	}
}

// errCut is the error of a call whose response broke after it began.
var errCut = errors.New("proxy: the response was cut after it began")

// statusError is the error of a call answered with a failed status.
type statusError int

func (e statusError) Error() string {
	return "proxy: the call failed with HTTP " + strconv.Itoa(int(e))
}

// clientTimeout is the largest X-Stainless-Timeout taken as a deadline.
const clientTimeout = 24 * time.Hour

// withClientTimeout returns ctx with the deadline the client's stated
// timeout (seconds, from X-Stainless-Timeout) allows the engine, counted
// from now: the timeout less a tenth of it, at most a second. Unset, not a
// positive number, or above 24h: ctx unchanged. The deadline is for the
// engine's decisions only: ctx is not canceled when it passes.
func withClientTimeout(ctx context.Context, value string, now time.Time) context.Context {
	secs, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if err != nil || !(secs > 0) || secs > clientTimeout.Seconds() {
		return ctx
	}
	t := time.Duration(secs * float64(time.Second))
	return deadlineOnly{ctx, now.Add(t - min(t/10, time.Second))}
}

// deadlineOnly is a context with a deadline that does not cancel it.
type deadlineOnly struct {
	context.Context
	deadline time.Time
}

func (c deadlineOnly) Deadline() (time.Time, bool) { return c.deadline, true }

// logWriter is the reverse proxy's error log: each line, redacted, at
// level WARN.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(b []byte) (int, error) {
	w.log.Warn("dynretry proxy: " + telemetry.Redact(strings.TrimSpace(string(b))))
	return len(b), nil
}
