package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autopack/dynretry/retry"
)

// An op is one call to Book or Observe, queued for its credential's worker.
type op struct {
	model string
	ask   *retry.Ask        // a booking, or nil for an observation
	obs   retry.Observation // the observation when ask is nil
	shift shift             // from the asker's clock to the server's
	// estimate reports that the asker can estimate the call's tokens
	// (Ask.Tokens), and has not.
	estimate bool
	done     chan answer
}

// urgent reports whether o must reach Redis at once: a booking, or an
// observation that is news for the fleet (a failure, or what the decision
// asks of the limit). A success, which only syncs the windows, waits for a
// booking to carry it.
func (o *op) urgent() bool {
	return o.ask != nil || o.obs.Class != "" && o.obs.Class != retry.Canceled || o.obs.Hold.By != ""
}

// An answer is the worker's to a booking: its verdict, or that the call
// must first estimate its tokens (the limit has a token window) and ask
// again.
type answer struct {
	v        retry.Verdict
	estimate bool
}

// An entry is one state as this process knows it: the credential's or a
// limit's.
type entry struct {
	key string // its Redis key
	// enc is the state as Redis holds it at version ver, as far as this
	// process knows (the zero state at version 0 when it knows nothing),
	// encoded; all times are the server's.
	enc []byte
	ver int64
	// reseed reports that Redis lost the state (a restart, an expiry):
	// the next compare-and-set writes it back even if unchanged.
	reseed bool
	// local, while the breaker is open, is the state this process paces
	// on alone: a share of enc's (see share).
	local *retry.PaceState
	// scaled are local's window intervals as share set them.
	scaled map[retry.Source]time.Duration
	// merge, once Redis answers again, is the local state to fold into the
	// shared one (see fold) at the next compare-and-set: what this process
	// learned and booked meanwhile.
	merge *retry.PaceState
	// work is the state being computed in a round.
	work retry.PaceState
}

// zeroState is the encoding of a state that knows nothing.
var zeroState = mustEncode(retry.PaceState{})

func mustEncode(s retry.PaceState) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a PaceState always encodes
	}
	return b
}

// A group is the worker of one credential: the one goroutine of this
// process that reads and writes the states of the credential and its
// limits, so that the process's own calls never conflict with each other,
// and that calls arriving while a round trip is out are batched into the
// next one.
type group struct {
	s     *Store
	scope retry.Key
	base  string // the keys' common start: prefix{provider/credential}:
	ops   chan *op
	// pending counts ops announced (Store.group) and not yet received: the
	// worker ends only when none is.
	pending atomic.Int64
	// tokens holds, per model, whether its limit has a token window, so
	// that callers estimate a request's tokens only then.
	tokens sync.Map

	// Owned by the worker.
	cred   *entry
	limits map[string]*entry
	procs  int       // the credential's processes at the last round trip, at least 1
	beat   time.Time // when the last heartbeat was sent
}

func newGroup(s *Store, scope retry.Key) *group {
	base := s.base(scope)
	return &group{
		s: s, scope: scope, base: base, ops: make(chan *op, 1024),
		cred: &entry{key: base + "c", enc: zeroState}, limits: make(map[string]*entry), procs: 1,
	}
}

// base is the start of every key of the credential scope: the prefix,
// then the hash tag {provider/credential}, then ":".
func (s *Store) base(scope retry.Key) string {
	return s.prefix + "{" + string(scope.Provider) + "/" + scope.Credential + "}:"
}

// limitKey is the Redis key of key's limit.
func (s *Store) limitKey(key retry.Key) string {
	return s.base(key.CredentialScope()) + "m:" + key.Model
}

// limit returns the entry of model's limit.
func (g *group) limit(model string) *entry {
	e := g.limits[model]
	if e == nil {
		e = &entry{key: g.s.limitKey(retry.Key{Provider: g.scope.Provider, Model: model, Credential: g.scope.Credential}), enc: zeroState}
		g.limits[model] = e
	}
	return e
}

func (g *group) countsTokens(model string) bool {
	v, _ := g.tokens.Load(model)
	b, _ := v.(bool)
	return b
}

// run is the worker: it takes the ops in order, batches them, and applies
// each batch; it ends after groupIdle without work, or when the store
// closes (once every announced op is answered).
func (g *group) run() {
	idle := time.NewTimer(groupIdle)
	defer idle.Stop()
	for {
		select {
		case o := <-g.ops:
			g.apply(g.collect(g.take(nil, o), true))
		case <-idle.C:
			if g.retire() {
				return
			}
		case <-g.s.closing:
			for g.pending.Load() > 0 {
				g.apply(g.collect(g.take(nil, <-g.ops), false))
			}
			return
		}
		idle.Reset(groupIdle)
	}
}

// take appends o to batch.
func (g *group) take(batch []*op, o *op) []*op {
	g.pending.Add(-1)
	return append(batch, o)
}

// collect adds the ops already queued to batch; when the batch has only
// routine observations (see urgent) and wait is set, it waits up to
// flushDelay for a booking to carry them, unless Redis is down.
func (g *group) collect(batch []*op, wait bool) []*op {
	now := batch[0].urgent()
	for {
		select {
		case o := <-g.ops:
			batch = g.take(batch, o)
			now = now || o.urgent()
			continue
		default:
		}
		break
	}
	if now || !wait || g.s.down.Load() {
		return batch
	}
	t := time.NewTimer(flushDelay)
	defer t.Stop()
	for {
		select {
		case o := <-g.ops:
			batch = g.take(batch, o)
			if o.urgent() {
				return g.collect(batch, false)
			}
		case <-t.C:
			return batch
		case <-g.s.closing:
			return batch
		}
	}
}

// retire removes the group from the store when no op is announced, and
// reports whether it did.
func (g *group) retire() bool {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	if g.pending.Load() > 0 {
		return false
	}
	delete(g.s.groups, g.scope)
	return true
}

// A batch tries compare-and-sets until one succeeds, for up to the store's
// timeout (and at least minRounds of them): past that, under contention no
// fleet should reach, it is answered from local state.
const minRounds = 3

// apply runs a batch: it computes the ops in order on the states as this
// process knows them, and writes the result with one compare-and-set; when
// another process changed a state meanwhile, the reply carries it, and the
// batch is computed again on it — and answered at once if it then writes
// nothing, since it was computed on the states as Redis held them. When
// Redis fails or is down, the batch is answered from local state.
func (g *group) apply(batch []*op) {
	if g.s.down.Load() {
		g.local(batch)
		return
	}
	g.resume()
	if !g.s.clock.measured() {
		if err := g.readClock(); err != nil {
			g.s.fail(err)
			g.local(batch)
			return
		}
	}
	fresh := false // whether every state of the batch was read in the last reply
	began := time.Now()
	for round := 0; round < minRounds || time.Since(began) < g.s.timeout; round++ {
		entries, answers, now := g.compute(batch)
		writes := make([]write, len(entries))
		changed := false
		for i, e := range entries {
			enc := mustEncode(e.work)
			writes[i] = write{key: e.key, ver: e.ver, ttl: g.s.ttls.of(&e.work, now)}
			if e.reseed || !bytes.Equal(enc, e.enc) {
				writes[i].state, changed = enc, true
			}
		}
		if fresh && !changed {
			// Nothing to write (a confirmed place, a refusal): the answers
			// hold for the states as Redis had them at the last reply.
			for _, e := range entries {
				e.merge = nil
			}
			g.answer(batch, answers, false)
			return
		}
		me := ""
		if time.Since(g.beat) >= heartbeat {
			me = g.s.id
		}
		ctx, cancel := context.WithTimeout(context.Background(), g.s.timeout)
		sent := time.Now()
		r, err := cas(ctx, g.s.client, writes, g.base+"p", me, g.s.ttls.present)
		received := time.Now()
		cancel()
		g.s.stats.roundTrips.Add(1)
		if err != nil {
			g.s.fail(err)
			g.local(batch)
			return
		}
		g.s.clock.sample(sent, received, r.time)
		if me != "" {
			g.beat = sent
		}
		g.procs = max(r.procs, 1)
		if r.ok {
			for i, e := range entries {
				if writes[i].state != nil {
					e.enc, e.ver, e.reseed = writes[i].state, e.ver+1, false
				}
				e.merge = nil
			}
			g.answer(batch, answers, false)
			return
		}
		g.s.stats.conflicts.Add(1)
		for _, c := range r.stale {
			e := entries[c.index]
			e.ver = c.ver
			if c.state == "" {
				e.reseed = !bytes.Equal(e.enc, zeroState) // Redis lost it: ours is the best there is
				continue
			}
			e.enc, e.reseed = []byte(c.state), false
		}
		fresh = true
	}
	g.local(batch)
}

// readClock reads the server's clock once, before the first batch.
func (g *group) readClock() error {
	ctx, cancel := context.WithTimeout(context.Background(), g.s.timeout)
	defer cancel()
	sent := time.Now()
	t, err := g.s.client.Time(ctx).Result()
	g.s.stats.roundTrips.Add(1)
	if err != nil {
		return err
	}
	g.s.clock.sample(sent, time.Now(), t)
	return nil
}

// compute applies the batch to fresh copies of the states it touches (the
// credential's first) and returns them with the bookings' answers (in the
// askers' clocks) and the latest time of the batch (the server's).
func (g *group) compute(batch []*op) (entries []*entry, answers []answer, now time.Time) {
	entries = []*entry{g.cred}
	decode(g.cred)
	answers = make([]answer, len(batch))
	for i, o := range batch {
		e := g.limit(o.model)
		if !containsEntry(entries, e) {
			decode(e)
			entries = append(entries, e)
		}
		if o.ask != nil {
			a := o.shift.ask(*o.ask)
			now = later(now, a.Now)
			if o.estimate && a.Cost.Tokens == 0 && hasTokenWindow(&e.work) {
				answers[i].estimate = true // nothing booked: the call estimates and asks again
				continue
			}
			answers[i].v = o.shift.verdict(e.work.Book(&g.cred.work, a))
		} else {
			ob := o.shift.observation(o.obs)
			now = later(now, ob.Now)
			e.work.Observe(&g.cred.work, ob)
		}
	}
	return entries, answers, now
}

func containsEntry(es []*entry, e *entry) bool {
	for _, x := range es {
		if x == e {
			return true
		}
	}
	return false
}

// decode sets e.work to a copy of e's state, with what a local state to
// merge knows folded in.
func decode(e *entry) {
	e.work = retry.PaceState{}
	if err := json.Unmarshal(e.enc, &e.work); err != nil {
		// Not a state this version wrote: start afresh, and overwrite it.
		e.work, e.enc, e.reseed = retry.PaceState{}, zeroState, true
	}
	if e.merge != nil {
		fold(&e.work, e.merge)
	}
}

// answer sends the bookings their verdicts and records the limits' token
// windows.
func (g *group) answer(batch []*op, answers []answer, local bool) {
	for i, o := range batch {
		e := g.limits[o.model]
		st := &e.work
		if local {
			st = e.local
		}
		g.tokens.Store(o.model, hasTokenWindow(st))
		if o.ask == nil {
			g.s.stats.observations.Add(1)
			continue
		}
		a := answers[i]
		if !a.estimate {
			a.v.Local = local
			g.s.stats.bookings.Add(1)
			if local {
				g.s.stats.local.Add(1)
			}
		}
		o.done <- a
	}
}

func hasTokenWindow(s *retry.PaceState) bool {
	for _, w := range s.Windows {
		if w.Tokens {
			return true
		}
	}
	return false
}

// local answers a batch from local state, while Redis is unavailable: each
// limit paced on its share of the limit (see share), starting from what the
// fleet shared last.
func (g *group) local(batch []*op) {
	answers := make([]answer, len(batch))
	if g.cred.local == nil {
		g.cred.local = g.share(g.cred)
	}
	for i, o := range batch {
		e := g.limit(o.model)
		if e.local == nil {
			e.local = g.share(e)
		}
		if o.ask != nil {
			if o.estimate && o.ask.Cost.Tokens == 0 && hasTokenWindow(e.local) {
				answers[i].estimate = true
				continue
			}
			answers[i].v = o.shift.verdict(e.local.Book(g.cred.local, o.shift.ask(*o.ask)))
		} else {
			ob := o.shift.observation(o.obs)
			if len(e.local.Windows) > 0 {
				// The provider's counts are the fleet's: synced to them, a
				// process would spend what the others have booked and it
				// cannot see. It keeps to its share from what it knew.
				ob.Limits = nil
			}
			e.local.Observe(g.cred.local, ob)
		}
		g.rescale(e)
	}
	g.answer(batch, answers, true)
}

// resume ends the local states once Redis answers again: the fleet's
// states are read back at the next compare-and-set, and what each local
// state knows is folded into them.
func (g *group) resume() {
	for _, e := range append([]*entry{g.cred}, mapValues(g.limits)...) {
		if e.local != nil {
			e.merge, e.local, e.scaled = e.local, nil, nil
		}
	}
}

func mapValues(m map[string]*entry) []*entry {
	out := make([]*entry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	return out
}

// fold adds to s, a shared state, what local, the state a process paced on
// alone, knows that s may not: a later hold, windows emptier than s has
// them (the provider's counts of the meantime, and this process's
// bookings), a block. The rest of s stands.
func fold(s, local *retry.PaceState) {
	s.Hold = later(s.Hold, local.Hold)
	for _, lw := range local.Windows {
		for i := range s.Windows {
			if w := &s.Windows[i]; w.Reset == lw.Reset {
				w.TAT = later(w.TAT, lw.TAT)
			}
		}
	}
	if s.Block == nil && local.Block != nil {
		b := *local.Block
		s.Block = &b
	}
}

// localMargin is how far below its even share of a limit a process of a
// fleet paces on local state: without the others' bookings, it knows only
// what the provider's responses say remains, and a fleet whose processes
// each took exactly 1/N would keep the limit's bucket empty, where any
// jitter is a refusal.
const localMargin = 1.25

// divisor is what a process divides a limit's rate by on local state: 1
// alone, else localMargin times the processes of the fleet.
func (g *group) divisor() float64 {
	if g.procs <= 1 {
		return 1
	}
	return localMargin * float64(g.procs)
}

// share returns e's state as a share of the limit for one process of the
// fleet (see divisor): each window refills at that share of its rate (its
// capacity shrinks alike), and a learned rate is divided as well.
func (g *group) share(e *entry) *retry.PaceState {
	decode(e)
	s := e.work
	if s.Rate != nil {
		r := *s.Rate
		r.Max /= g.divisor()
		s.Rate = &r
	}
	s.Recent /= g.divisor()
	e.scaled = make(map[retry.Source]time.Duration)
	e.local = &s
	g.rescale(e)
	return &s
}

// rescale divides the rate of e.local's windows that a response set anew
// (PaceState.Observe syncs them to the provider's figures).
func (g *group) rescale(e *entry) {
	for i := range e.local.Windows {
		w := &e.local.Windows[i]
		if want, ok := e.scaled[w.Reset]; !ok || w.Interval != want {
			w.Interval = time.Duration(float64(w.Interval) * g.divisor())
			e.scaled[w.Reset] = w.Interval
		}
	}
}

// of is how long Redis keeps s, written at now: the idle time to live past
// the last instant s names, within the maximum.
func (l ttls) of(s *retry.PaceState, now time.Time) time.Duration {
	h := s.Hold
	for _, w := range s.Windows {
		h = later(h, w.TAT)
	}
	for _, b := range s.Bookings {
		h = later(h, b.At.Add(time.Minute))
	}
	if s.Rate != nil {
		h = later(h, s.Rate.TAT)
	}
	h = later(h, s.ProbeUntil)
	if b := s.Block; b != nil {
		h = later(h, later(b.Until, b.Next.Add(b.Every)))
	}
	return min(l.idle+max(h.Sub(now), 0), l.max)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ask, verdict and observation move their times by the shift.
func (d shift) ask(a retry.Ask) retry.Ask {
	a.Now, a.NotBefore, a.Deadline = d.in(a.Now), d.in(a.NotBefore), d.in(a.Deadline)
	a.Booked, a.BookedAt = d.in(a.Booked), d.in(a.BookedAt)
	return a
}

func (d shift) verdict(v retry.Verdict) retry.Verdict {
	v.At, v.Until = d.out(v.At), d.out(v.Until)
	return v
}

func (d shift) observation(o retry.Observation) retry.Observation {
	o.Now, o.Sent = d.in(o.Now), d.in(o.Sent)
	return o
}
