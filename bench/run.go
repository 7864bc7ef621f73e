package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autopack/dynretry/sim"
)

// A Cell is one run: a scenario (and case) × policy × seed. The embedded
// Result holds the fields of the benchmark file; the rest are extra
// measures the goals need.
type Cell struct {
	Result
	// Case is the scenario's case (a lie mode), or "".
	Case string `json:"case,omitempty"`
	// Seed seeds the workload, the provider's faults and dynretry's jitter.
	Seed uint64 `json:"seed"`
	// GiveUpLagS is the longest a failed call went on after its own last
	// response (or after it started, without attempts), seconds. For
	// information: the call may have learned later from other calls.
	GiveUpLagS float64 `json:"give_up_lag_s"`
	// LateGiveUps counts calls told to wait longer than their deadline
	// allowed that did not end at once (see record.lateGiveUp).
	LateGiveUps int `json:"late_give_ups"`
	// XBound, WastedPerOK and AttemptsPerCall are the cell's makespan over
	// its bound, wasted attempts per successful call and attempts per call;
	// in a median row, the medians of the seeds' values.
	XBound          float64 `json:"x_bound"`
	WastedPerOK     float64 `json:"wasted_per_ok"`
	AttemptsPerCall float64 `json:"attempts_per_call"`
	// QuotaRetries counts attempts sent after a quota error to the same
	// call.
	QuotaRetries int `json:"quota_retries"`
	// OutageProbes is, for the client that sent the most, the number of
	// attempts that reached the provider during an overload window after
	// that client's first overload error; OutageProbeLimit is what one
	// probe per 5 s allows in that time, at least 1.
	OutageProbes     int `json:"outage_probes"`
	OutageProbeLimit int `json:"outage_probe_limit"`
	// BlockedProbes counts the attempts that reached the provider after the
	// cell's first long refusal (a quota error, or a 429 asking for more
	// than 2 minutes), started after that refusal was answered;
	// BlockedProbeLimit is what one probe per minute (dynretry's default
	// probe interval) allows from then to the last attempt, at least 1.
	BlockedProbes     int `json:"blocked_probes"`
	BlockedProbeLimit int `json:"blocked_probe_limit"`
	// RefusalLagS is the longest a call went on after its own first refusal
	// (a 429 or a quota error), seconds.
	RefusalLagS float64 `json:"refusal_lag_s"`
	// Stopped counts calls the harness ended because their policy ran
	// away (ErrHotLoop, ErrAttemptCap); they are failed calls too.
	Stopped int `json:"stopped,omitempty"`
	// Rejected counts the provider's rejections by reason.
	Rejected map[sim.Reason]int `json:"rejected,omitempty"`
}

// attemptCap is the most attempts per call a cell may send in all before
// the harness stops it (see ErrAttemptCap); far above what any bounded
// policy sends.
const attemptCap = 40

// probeEvery is the outage probe rate the goal allows per client.
const probeEvery = 5 * time.Second

// blockedProbeEvery is the probe rate the goals allow a blocked limit:
// dynretry's default probe interval.
const blockedProbeEvery = time.Minute

// longRefusal is the stated wait above which a 429 counts as a long
// refusal: dynretry's default max_hint.
const longRefusal = 2 * time.Minute

// RunCell runs the scenario's workload with policy p against a fresh
// provider and measures it. Call it inside a testing/synctest bubble: it
// takes the virtual time the workload takes.
func RunCell(s Scenario, mode sim.HintMode, p Policy, seed uint64) (Cell, error) {
	cfg := s.Config(p.Dialect, mode, seed)
	prov, err := sim.New(cfg)
	if err != nil {
		return Cell{}, err
	}
	reqs := s.Workload.Generate(seed)
	cellCtx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	turns, stopTurns := startTurns(seed)
	defer stopTurns()
	tr := tracker{base: sim.Transport{Handler: prov}, limit: attemptCap * int64(len(reqs)), sent: new(atomic.Int64), stop: stop, turns: turns}
	clients, err := p.New(Env{
		Transport: tr,
		Config:    cfg, Start: prov.Start(), Seed: seed, Clients: s.Workload.clients(),
		turns: turns,
	})
	if err != nil {
		return Cell{}, fmt.Errorf("%s: %w", p.Name, err)
	}

	recs := make([]*record, len(reqs))
	queues := make([][]int, len(clients))
	for i, r := range reqs {
		recs[i] = &record{req: r}
		queues[r.Client] = append(queues[r.Client], i)
	}
	var wg sync.WaitGroup
	for c, q := range queues {
		var mu sync.Mutex
		next := 0
		for range s.Workload.Concurrency {
			wg.Go(func() {
				for {
					mu.Lock()
					if next == len(q) {
						mu.Unlock()
						return
					}
					rec := recs[q[next]]
					next++
					mu.Unlock()
					time.Sleep(time.Until(prov.Start().Add(rec.req.Arrival)))
					rec.start = time.Now()
					rec.deadline = rec.start.Add(rec.req.Deadline)
					ctx, cancel := context.WithCancelCause(withRecord(cellCtx, rec))
					ctx, cancelDeadline := context.WithDeadline(ctx, rec.deadline)
					rec.cancel = cancel
					rec.err = clients[c].Call(ctx, rec.req)
					rec.end = time.Now()
					if cause := context.Cause(ctx); cause == ErrHotLoop || cause == ErrAttemptCap {
						rec.err = cause
					}
					cancelDeadline()
					cancel(nil)
				}
			})
		}
	}
	wg.Wait()

	st := prov.Stats()
	cell := Cell{
		Result: Result{
			Scenario: s.Name, Policy: p.Name, Requests: len(reqs),
			Attempts:       st.Received,
			WastedAttempts: st.Received - st.Succeeded,
			LowerBoundS:    LowerBound(cfg, s.Workload, reqs, s.QuotaBound).Seconds(),
		},
		Case: string(mode), Seed: seed, Rejected: st.Rejected,
	}
	var lat []float64
	for _, rec := range recs {
		if rec.err == nil {
			cell.Succeeded++
			lat = append(lat, rec.end.Sub(rec.start).Seconds())
			cell.MakespanS = max(cell.MakespanS, rec.end.Sub(prov.Start()).Seconds())
			continue
		}
		cell.Failed++
		if errors.Is(rec.err, ErrHotLoop) || errors.Is(rec.err, ErrAttemptCap) {
			cell.Stopped++
		}
		if rec.sleptPastDeadline() {
			cell.SleepsPastDeadline++
		}
		cell.GiveUpLagS = max(cell.GiveUpLagS, rec.giveUpLag().Seconds())
		if rec.lateGiveUp() {
			cell.LateGiveUps++
		}
		cell.QuotaRetries += rec.quotaRetries()
	}
	for _, rec := range recs {
		if rec.err == nil {
			cell.QuotaRetries += rec.quotaRetries()
		}
	}
	cell.XBound = cell.Ratio()
	cell.WastedPerOK = cell.WastePerSuccess()
	cell.AttemptsPerCall = cell.AttemptsPerRequest()
	slices.Sort(lat)
	cell.P50S, cell.P99S = quantile(lat, 0.50), quantile(lat, 0.99)
	cell.OutageProbes, cell.OutageProbeLimit = outageProbes(recs, len(clients), cfg.Overloads, prov.Start())
	cell.BlockedProbes, cell.BlockedProbeLimit = blockedProbes(recs)
	for _, rec := range recs {
		cell.RefusalLagS = max(cell.RefusalLagS, rec.refusalLag().Seconds())
	}
	return cell, nil
}

// quantile returns the q-quantile of sorted xs (nearest rank), 0 when
// empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// outageProbes returns, for the client that probed most, the attempts that
// reached the provider during an overload window after the client's first
// overload error in it, and the count one probe per probeEvery allows over
// the rest of the window (at least one).
func outageProbes(recs []*record, clients int, windows []sim.Window, start time.Time) (worst, limit int) {
	for _, w := range windows {
		from, end := start.Add(w.Start), start.Add(w.End)
		first := make([]time.Time, clients) // each client's first overload error
		for _, rec := range recs {
			rec.mu.Lock()
			for _, a := range rec.attempts {
				if a.overloaded && !a.start.Before(from) && a.start.Before(end) {
					if f := &first[rec.req.Client]; f.IsZero() || a.end.Before(*f) {
						*f = a.end
					}
				}
			}
			rec.mu.Unlock()
		}
		probes := make([]int, clients)
		for _, rec := range recs {
			rec.mu.Lock()
			for _, a := range rec.attempts {
				if f := first[rec.req.Client]; !f.IsZero() && a.start.After(f) && a.start.Before(end) {
					probes[rec.req.Client]++
				}
			}
			rec.mu.Unlock()
		}
		for c, n := range probes {
			if first[c].IsZero() {
				continue
			}
			allowed := max(1, int(math.Ceil(float64(end.Sub(first[c]))/float64(probeEvery))))
			if worst == 0 || n-allowed > worst-limit {
				worst, limit = n, allowed
			}
		}
	}
	return worst, limit
}

// blockedProbes returns the attempts that started after the cell's first
// long refusal (a quota error, or a 429 asking for more than longRefusal)
// was answered, and what one probe per blockedProbeEvery allows from then
// to the last of them (at least one).
func blockedProbes(recs []*record) (probes, limit int) {
	var first, last time.Time
	for _, rec := range recs {
		rec.mu.Lock()
		for _, a := range rec.attempts {
			if a.quota || a.status == 429 && a.hinted && a.hint > longRefusal {
				if first.IsZero() || a.end.Before(first) {
					first = a.end
				}
			}
		}
		rec.mu.Unlock()
	}
	if first.IsZero() {
		return 0, 0
	}
	for _, rec := range recs {
		rec.mu.Lock()
		for _, a := range rec.attempts {
			if a.start.After(first) {
				probes++
				last = later(last, a.start)
			}
		}
		rec.mu.Unlock()
	}
	return probes, max(1, int(math.Ceil(float64(last.Sub(first))/float64(blockedProbeEvery))))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
