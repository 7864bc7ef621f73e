package hooks

import (
	"net/http"
	"strconv"
	"time"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/telemetry"
)

// Transport is the http.RoundTripper for the runner's SDK clients. It routes
// each request by the cohort in its context (see WithCohort): treatment
// requests go through the engine; all others go straight to Base and each
// attempt is only observed, so the SDK's own retries stay exactly as they
// were. It is safe for concurrent use.
type Transport struct {
	base     http.RoundTripper
	engine   *retry.Transport
	observer retry.Observer
	creds    *retry.Credentials
}

// NewTransport returns a Transport sending through base (nil means
// http.DefaultTransport), retrying treatment requests with r and reporting
// control attempts to obs, which should be the observer r reports to.
func NewTransport(base http.RoundTripper, r *retry.Retrier, obs retry.Observer) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	t := &Transport{base: base, observer: obs, creds: r.Credentials()}
	t.engine = &retry.Transport{Base: base, Retrier: r, Key: t.requestKey}
	return t
}

// RoundTrip implements http.RoundTripper. A failed response that the engine
// gave up on carries "X-Should-Retry: false", so an SDK whose retries were
// left on by mistake does not retry it again.
//
// Each attempt's span records the request's method, server and URL (see
// telemetry.WithRequest).
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if ctx := telemetry.WithRequest(req.Context(), req); ctx != req.Context() {
		req = req.WithContext(ctx)
	}
	if SDKRetriesOff(req.Context()) {
		resp, err := t.engine.RoundTrip(req)
		if err == nil && resp.StatusCode >= 400 {
			resp.Header.Set("X-Should-Retry", "false")
		}
		return resp, err
	}
	return t.observe(req)
}

// observe sends a control attempt and reports it as an event, with the
// decision the SDK takes by its own rule (retry.SDKDecision).
func (t *Transport) observe(req *http.Request) (*http.Response, error) {
	start := time.Now()
	key := t.requestKey(req)
	attempt := 1
	if n, err := strconv.Atoi(req.Header.Get("X-Stainless-Retry-Count")); err == nil && n >= 0 {
		attempt = n + 1
	}
	resp, err := t.base.RoundTrip(req)
	end := time.Now()
	d := retry.SDKDecision(retry.Input{
		Assessment: retry.Assess(retry.ReadOutcome(key.Provider, resp, err), end),
		Attempt:    attempt, Now: end, Ended: req.Context().Err(),
	}, retry.SDKRetries)
	if t.observer != nil {
		t.observer.Observe(req.Context(), retry.Event{Key: key, Decision: d, Sent: true, Start: start, End: end, Budget: -1})
	}
	return resp, err
}

// requestKey is the RequestKey of the retrier's Credentials, with the
// provider the runner named for the call when the host alone does not tell
// (a gateway, a proxy).
func (t *Transport) requestKey(req *http.Request) retry.Key {
	k := t.creds.RequestKey(req)
	if c, ok := telemetry.CallFrom(req.Context()); ok && k.Provider == retry.Generic && c.Provider != "" {
		k.Provider = retry.Provider(c.Provider)
	}
	return k
}
