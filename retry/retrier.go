package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// A Retrier runs calls with retries: it paces each attempt through its
// Store, decides after each outcome with its Config, waits, and reports every
// decision to its Observer. It is safe for concurrent use; it starts no
// goroutines: every call runs on its caller's goroutine.
type Retrier struct {
	cfg      Config
	store    Store
	creds    *Credentials
	budget   budget
	observer Observer
	now      func() time.Time
	rand     func() float64
}

// An Option sets an optional part of a Retrier.
type Option func(*Retrier)

// WithStore sets where pacing state is kept (default: a new MemoryStore).
// Retriers that share a Store hold back each other's calls to a limit.
func WithStore(s Store) Option { return func(r *Retrier) { r.store = s } }

// WithCredentials sets the Credentials that name API keys in the limit
// keys the Retrier derives (Transport's default Key; default: nil, the
// process's random secret). Processes sharing a Store need Credentials with
// one secret.
func WithCredentials(c *Credentials) Option { return func(r *Retrier) { r.creds = c } }

// WithObserver sets who is told of every decision (default: nobody).
func WithObserver(o Observer) Option { return func(r *Retrier) { r.observer = o } }

// WithClock sets the clock (default time.Now). Waiting always uses real
// timers, which testing/synctest fakes.
func WithClock(now func() time.Time) Option { return func(r *Retrier) { r.now = now } }

// WithRand sets the source of numbers in [0, 1) that place delays within
// their ranges (default math/rand/v2's Float64).
func WithRand(f func() float64) Option { return func(r *Retrier) { r.rand = f } }

// New returns a Retrier with the configuration cfg, whose zero fields take
// their defaults. It fails if cfg is invalid; the error names the setting.
func New(cfg Config, opts ...Option) (*Retrier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Retrier{cfg: cfg, store: new(MemoryStore), now: time.Now, rand: rand.Float64}
	r.budget = budget{cfg: cfg.Budget, tokens: make(map[Key]float64)}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Credentials returns the Credentials set by WithCredentials, or nil.
func (r *Retrier) Credentials() *Credentials { return r.creds }

// Config returns the Retrier's configuration, defaults filled in.
func (r *Retrier) Config() Config { return r.cfg }

// Do calls op until it succeeds, the engine gives up, or ctx ends, pacing
// each attempt on the limit named by key with a cost of one request. op's
// error is classified by OutcomeOf. Do returns nil on success, else an
// *Error that wraps op's last error (nil when none was made) and, when the
// call stopped for the deadline or the context, ErrDeadline or ctx.Err().
func (r *Retrier) Do(ctx context.Context, key Key, op func(ctx context.Context) error) error {
	c := r.start(key, nil, true)
	defer c.end()
	for {
		if !c.ready(ctx, nil) {
			return c.result(ctx, nil)
		}
		err := op(ctx)
		d := c.decide(ctx, OutcomeOf(err))
		c.lastErr = err
		if d.Action != Retry {
			return c.result(ctx, nil)
		}
	}
}
