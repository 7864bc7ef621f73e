package hooks

import (
	"net/http"
	"strconv"
	"time"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/telemetry"
)

// sdkMaxRetries is the SDKs' default retry count (openai-go,
// anthropic-sdk-go): control attempts are judged by it.
const sdkMaxRetries = 2

// Transport is the http.RoundTripper for the runner's SDK clients. It routes
// each request by the cohort in its context (see WithCohort): treatment
// requests go through the engine; all others go straight to Base and each
// attempt is only observed, so the SDK's own retries stay exactly as they
// were. It is safe for concurrent use.
type Transport struct {
	base     http.RoundTripper
	engine   *retry.Transport
	observer retry.Observer
}

// NewTransport returns a Transport sending through base (nil means
// http.DefaultTransport), retrying treatment requests with r and reporting
// control attempts to obs, which should be the observer r reports to.
func NewTransport(base http.RoundTripper, r *retry.Retrier, obs retry.Observer) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{base: base, engine: &retry.Transport{Base: base, Retrier: r, Key: requestKey}, observer: obs}
}

// RoundTrip implements http.RoundTripper. A failed response that the engine
// gave up on carries "X-Should-Retry: false", so an SDK whose retries were
// left on by mistake does not retry it again.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
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
// decision the SDK will take inferred from its documented rule: 408, 409,
// 429, 5xx and connection errors are retried, up to 2 times, and
// x-should-retry overrides.
func (t *Transport) observe(req *http.Request) (*http.Response, error) {
	start := time.Now()
	key := requestKey(req)
	attempt := 1
	if n, err := strconv.Atoi(req.Header.Get("X-Stainless-Retry-Count")); err == nil && n >= 0 {
		attempt = n + 1
	}
	resp, err := t.base.RoundTrip(req)
	end := time.Now()
	a := retry.Assess(retry.ReadOutcome(key.Provider, resp, err), end)
	if err != nil && req.Context().Err() != nil {
		a.Class = retry.Canceled // the caller's context ended, as the engine says too
	}
	d := retry.Decision{Assessment: a, Attempt: attempt, Action: retry.Success, HintSource: retry.SourceBackoff, Reason: "succeeded"}
	if a.Hint.Valid() {
		d.HintSource = a.Hint.Source
	}
	if a.Class != "" {
		d.Action, d.Reason = retry.GiveUp, string(a.Class)+": control cohort: the SDK does not retry this"
		if sdkRetries(resp, err) && attempt <= sdkMaxRetries && req.Context().Err() == nil {
			d.Action, d.Reason = retry.Retry, string(a.Class)+": control cohort: the SDK retries this with its own backoff"
		} else if attempt > sdkMaxRetries {
			d.Reason = string(a.Class) + ": control cohort: the SDK's 2 retries are spent"
		}
	}
	if t.observer != nil {
		t.observer.Observe(req.Context(), retry.Event{Key: key, Decision: d, Sent: true, Start: start, End: end, Budget: -1})
	}
	return resp, err
}

// sdkRetries is the SDKs' rule for whether an attempt is retried.
func sdkRetries(resp *http.Response, err error) bool {
	if err != nil || resp == nil {
		return true
	}
	switch resp.Header.Get("X-Should-Retry") {
	case "true":
		return true
	case "false":
		return false
	}
	s := resp.StatusCode
	return s == http.StatusRequestTimeout || s == http.StatusConflict || s == http.StatusTooManyRequests || s >= 500
}

// requestKey is retry.RequestKey, with the provider the runner named for
// the call when the host alone does not tell (a gateway, a proxy).
func requestKey(req *http.Request) retry.Key {
	k := retry.RequestKey(req)
	if c, ok := telemetry.CallFrom(req.Context()); ok && k.Provider == retry.Generic && c.Provider != "" {
		k.Provider = retry.Provider(c.Provider)
	}
	return k
}
