// Package sim is a simulated LLM provider: an http.Handler that speaks enough
// of the OpenAI chat completions, Anthropic messages and Gemini generateContent
// APIs for the real SDK clients to work against it unchanged, streaming
// included.
//
// It enforces per-minute rate limits with token buckets per (credential,
// model), reports their state in the providers' rate-limit headers, answers
// requests that do not fit with provider-shaped 429s carrying a configurable
// retry hint, and injects faults from a seeded schedule: server errors,
// overload windows, an exhausted quota, slow responses, connection resets,
// streams cut in the middle and limits that change over time. A request
// that names its call (CallHeader) meets faults drawn from the seed, the
// call and its attempt number, whatever else arrives.
//
// Time comes only from time.Now and timers, and no goroutine outlives a
// request, so a Provider runs inside a testing/synctest bubble, where an hour
// of rate limiting takes milliseconds. Transport serves requests by calling
// the handler in-process, without sockets, so SDK clients can talk to it
// inside the bubble:
//
//	p, _ := sim.New(sim.Config{RPM: 60, TPM: 30_000})
//	client := openai.NewClient(
//		option.WithBaseURL("http://sim.local/v1"),
//		option.WithHTTPClient(&http.Client{Transport: sim.Transport{Handler: p}}),
//	)
//
// Routes: POST /v1/chat/completions (also /chat/completions), POST
// /v1/messages, POST /v1beta/models/{model}:generateContent (also under
// /v1/models/). The credential is the Authorization bearer token, the
// x-api-key header, the x-goog-api-key header or the key query parameter.
package sim

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxBodyBytes bounds the request body the handler reads.
const maxBodyBytes = 32 << 20

// Provider is a simulated LLM provider. It is an http.Handler and is safe for
// concurrent use. Create it with New.
type Provider struct {
	cfg   Config
	sched schedule
	ids   atomic.Int64 // request id sequence

	lineMu sync.Mutex
	line   []chan struct{} // requests in transit, in the order sent; each channel is closed when its request is first

	mu       sync.Mutex
	rng      *rand.Rand
	buckets  map[key]*[numDims]bucket
	admitted map[string]int       // admitted requests per credential, for QuotaAfter and BlockAfter
	attempts map[string]int       // requests received per call name (CallHeader)
	blocked  map[string]time.Time // when each blocked credential's block ends
	stats    stats
}

// New returns a Provider for cfg. Its start time, from which Overloads and
// Capacity steps are measured, is time.Now(). The error wraps
// ErrInvalidConfig when cfg is invalid.
func New(cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.HintMode == "" {
		cfg.HintMode = HintTruthful
	}
	return &Provider{
		cfg:      cfg,
		sched:    schedule{start: time.Now(), burst: cfg.burst(), steps: cfg.Capacity},
		rng:      rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		buckets:  make(map[key]*[numDims]bucket),
		admitted: make(map[string]int),
		attempts: make(map[string]int),
		blocked:  make(map[string]time.Time),
	}, nil
}

// Start returns the provider's start time.
func (p *Provider) Start() time.Time { return p.sched.start }

// Stats returns a snapshot of the counters.
func (p *Provider) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats.snapshot()
}

// ServeHTTP answers one request in the dialect its path selects. Requests
// are handled in this order: route and body are checked (invalid: 400, 401,
// 403 or 404); a connection reset is drawn; overload windows, the quota and
// the rate limits are checked (rejections are answered at once and not
// charged); the request is charged and admitted; after Latency (or
// SlowLatency) a server error is drawn, else the reply is written, possibly
// cut in the middle when streaming. With a Transit, the request is handled
// Transit after it arrives, requests arriving at one instant in the order
// they arrived, and each answer is written Transit later than it was given
// (its headers report the limits as of admission).
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := p.ids.Add(1)
	credential := credentialOf(r)
	d, pathModel, ok := route(r.URL.Path)
	if !ok || r.Method != http.MethodPost {
		p.invalid(w, d, credential, id, http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		p.invalid(w, d, credential, id, http.StatusBadRequest, "could not read the request body")
		return
	}
	c, err := d.parse(body)
	if err != nil {
		p.invalid(w, d, credential, id, http.StatusBadRequest, err.Error())
		return
	}
	if pathModel != "" {
		c.model = pathModel
	}
	if c.model == "" {
		p.invalid(w, d, credential, id, http.StatusBadRequest, "you must provide a model parameter")
		return
	}
	if credential == "" {
		p.invalid(w, d, credential, id, http.StatusUnauthorized, "no API key provided")
		return
	}
	c.credential = credential
	c.id = id
	c.name = r.Header.Get(CallHeader)

	leave, err := p.arrive(r.Context())
	if err != nil {
		return // the client gave up before the request arrived
	}
	dec := p.admit(d, c)
	leave()
	h := w.Header()
	dims := dec.dims
	if p.cfg.NoRateHeaders {
		dims = nil
	}
	d.headers(h, dims, c.id, dec.now)
	h.Set("Date", dec.now.UTC().Format(http.TimeFormat))
	switch dec.reason {
	case "":
	case ReasonReset:
		panic(http.ErrAbortHandler)
	default:
		mode := p.cfg.HintMode
		if dec.blocked {
			mode = HintTruthful
		}
		if p.transit(r.Context()) == nil {
			d.fail(w, dec.failure(c, mode))
		}
		return
	}

	if err := sleep(r.Context(), dec.latency+max(p.cfg.Transit, 0)); err != nil {
		p.finish(c.credential, ReasonCanceled)
		return
	}
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if dec.serverError {
		d.fail(w, failure{reason: ReasonServerError, model: c.model, id: c.id, now: time.Now()})
		p.finish(c.credential, ReasonServerError)
		return
	}
	cut := c.stream && dec.cut
	err = d.reply(w, c, time.Now(), cut)
	switch {
	case cut:
		p.finish(c.credential, ReasonStreamCut)
		panic(http.ErrAbortHandler)
	case err != nil:
		p.finish(c.credential, ReasonCanceled)
	default:
		p.finish(c.credential, "")
	}
}

// arrive waits the network's one-way delay, if any, and then until every
// request sent before this one was admitted or gave up, so that requests
// arriving at one instant are admitted in the order they were sent (the
// order they reached ServeHTTP), not in the order the scheduler wakes them.
// With a Transit, it returns ctx.Err() if ctx is done first; otherwise
// leave must be called once the request is admitted (or refused), to let
// the next one in.
func (p *Provider) arrive(ctx context.Context) (leave func(), err error) {
	if p.cfg.Transit <= 0 {
		return func() {}, nil
	}
	turn := make(chan struct{})
	p.lineMu.Lock()
	if len(p.line) == 0 {
		close(turn)
	}
	p.line = append(p.line, turn)
	p.lineMu.Unlock()
	leave = func() {
		p.lineMu.Lock()
		defer p.lineMu.Unlock()
		i := slices.Index(p.line, turn)
		p.line = slices.Delete(p.line, i, i+1)
		if i == 0 && len(p.line) > 0 {
			close(p.line[0])
		}
	}
	if err = sleep(ctx, p.cfg.Transit); err == nil {
		select {
		case <-turn:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		leave()
		return nil, err
	}
	return leave, nil
}

// transit waits the network's one-way delay, if any, or until ctx is done;
// then it returns ctx.Err().
func (p *Provider) transit(ctx context.Context) error {
	if p.cfg.Transit <= 0 {
		return nil
	}
	return sleep(ctx, p.cfg.Transit)
}

// invalid answers a request that was not understood.
func (p *Provider) invalid(w http.ResponseWriter, d dialect, credential string, id int64, status int, msg string) {
	p.mu.Lock()
	p.stats.received(credential)
	p.stats.rejected(credential, ReasonInvalid)
	p.mu.Unlock()
	now := time.Now()
	d.headers(w.Header(), nil, id, now)
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
	d.fail(w, failure{reason: ReasonInvalid, status: status, message: msg, id: id, now: now})
}

// finish records the outcome of an admitted request; reason "" is a success.
func (p *Provider) finish(credential string, reason Reason) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if reason == "" {
		p.stats.succeeded(credential, time.Since(p.sched.start))
		return
	}
	p.stats.rejected(credential, reason)
}
