// Package fleet measures dynretry in a fleet, for real: a workload shared
// by several OS processes of one program on one API key, against the
// simulated provider served on loopback, in real time, each process with
// its own pacing state (a MemoryStore) or all sharing one through Redis
// (retry/redisstore), with a real redis-server that Run starts, and may
// kill and restart mid-run.
//
// The processes are the running program itself, started again with
// arguments that make IsWorker true: a program (or a test binary's
// TestMain) that runs fleets calls Worker first when they do.
package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/autopack/dynretry/bench"
	"github.com/autopack/dynretry/internal/redistest"
	"github.com/autopack/dynretry/sim"
)

// A Case is one way to run the fleet.
type Case struct {
	// Name names the case in tables.
	Name string
	// Processes is the number of processes, each a client of the workload
	// with Workload.Concurrency workers.
	Processes int
	// Redis reports that the processes share their pacing state through
	// Redis; otherwise each keeps its own.
	Redis bool
	// KillAt, when positive, kills the Redis server that long after the
	// start; it is restarted, empty, DownFor later.
	KillAt, DownFor time.Duration
}

// A Config is what every case of a fleet benchmark shares.
type Config struct {
	// Sim is the provider (OpenAI dialect).
	Sim sim.Config
	// Workload is the calls; its Clients is set from each case's
	// Processes.
	Workload bench.Workload
	// Seed seeds the workload.
	Seed uint64
	// Timeout is the Redis store's round-trip timeout (0: its default).
	Timeout time.Duration
	// Stderr receives the workers' errors; nil means os.Stderr.
	Stderr io.Writer
}

// A Result is one case's figures.
type Result struct {
	Case
	// Requests, Succeeded and Failed count calls; FailedCalls lists the
	// indices of those that failed, with their reasons.
	Requests, Succeeded, Failed int
	FailedCalls                 map[int]string
	// Attempts counts the requests the provider received; Wasted those
	// that did not succeed.
	Attempts, Wasted int
	// Makespan runs from the start to the last successful call's end;
	// Bound is bench.LowerBound's for the workload.
	Makespan, Bound time.Duration
	// RoundTrips counts the commands the processes sent to Redis; Sent the
	// attempts they sent; Local the verdicts answered from local state,
	// Conflicts the compare-and-sets that met another process's change.
	RoundTrips, Sent, Local, Conflicts int64
	// Failures counts the round trips to Redis that failed or timed out.
	Failures int64
	// Rejected counts the provider's refusals by reason.
	Rejected map[sim.Reason]int
}

// WastedPerSuccess, XBound and RoundTripsPerAttempt are the ratios the
// goals judge.
func (r Result) WastedPerSuccess() float64 { return float64(r.Wasted) / float64(max(r.Succeeded, 1)) }
func (r Result) XBound() float64           { return r.Makespan.Seconds() / r.Bound.Seconds() }
func (r Result) RoundTripsPerAttempt() float64 {
	return float64(r.RoundTrips) / float64(max(r.Sent, 1))
}

// startDelay is how long after launching its workers the fleet starts:
// time for every process to be up, so that they start together.
const startDelay = 2 * time.Second

// Run runs one case: it serves the provider, starts Redis when the case
// needs it, launches the processes (this program, os.Executable) and
// gathers their reports.
func Run(ctx context.Context, cfg Config, c Case) (Result, error) {
	res := Result{Case: c, FailedCalls: map[int]string{}}
	stderr := cfg.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	w := cfg.Workload
	w.Clients = c.Processes
	reqs := w.Generate(cfg.Seed)
	res.Requests = len(reqs)
	res.Bound = bench.LowerBound(cfg.Sim, w, reqs, false)

	provider, err := sim.New(cfg.Sim)
	if err != nil {
		return res, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: provider, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	spec := workerSpec{Provider: "http://" + ln.Addr().String(), Processes: c.Processes, Workload: w, Seed: cfg.Seed, Timeout: cfg.Timeout}
	var rdb *redistest.Server
	if c.Redis {
		if rdb, err = redistest.Start(); err != nil {
			return res, err
		}
		defer rdb.Stop()
		spec.RedisURL, spec.Prefix = rdb.URL(), "fleet:"
	}
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	spec.Start = time.Now().Add(startDelay)

	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, c.Processes+1) // the processes', then the restart's
	for k := range c.Processes {
		spec.Process = k
		js, err := json.Marshal(spec)
		if err != nil {
			return res, err
		}
		cmd := exec.CommandContext(ctx, exe, workerArg, "-spec", string(js))
		cmd.Env = append(os.Environ(), "FLEET_API_KEY=sk-fleet-"+strconv.FormatUint(cfg.Seed, 10))
		cmd.Stderr = stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return res, err
		}
		if err := cmd.Start(); err != nil {
			return res, err
		}
		wg.Go(func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var line struct {
					callLine
					Stats    *workerStats `json:"stats"`
					Attempts int64        `json:"attempts"`
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					continue
				}
				mu.Lock()
				if line.Stats != nil {
					res.Sent += line.Attempts
					res.RoundTrips += line.Stats.RoundTrips
					res.Local += line.Stats.Local
					res.Conflicts += line.Stats.Conflicts
					res.Failures += line.Stats.Failures
				} else if line.OK {
					res.Succeeded++
					res.Makespan = max(res.Makespan, line.End)
				} else {
					res.Failed++
					res.FailedCalls[line.Index] = line.Err
				}
				mu.Unlock()
			}
			if err := cmd.Wait(); err != nil {
				errs[k] = fmt.Errorf("fleet process %d: %w", k, err)
			}
		})
	}
	if c.KillAt > 0 && rdb != nil {
		wg.Go(func() {
			select {
			case <-time.After(time.Until(spec.Start.Add(c.KillAt))):
			case <-ctx.Done():
				return
			}
			rdb.Kill()
			select {
			case <-time.After(c.DownFor):
			case <-ctx.Done():
			}
			errs[c.Processes] = rdb.Restart()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	st := provider.Stats()
	res.Rejected = st.Rejected
	res.Attempts = st.Received
	res.Wasted = st.Received - st.Succeeded
	if got := res.Succeeded + res.Failed; got != res.Requests {
		return res, fmt.Errorf("fleet: %d calls reported, want %d", got, res.Requests)
	}
	return res, nil
}

// NewFailures returns the calls that failed in r but not in base (the same
// workload run by one process): the failures the fleet added.
func NewFailures(r, base Result) []int {
	var out []int
	for i := range r.FailedCalls {
		if _, ok := base.FailedCalls[i]; !ok {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// Cases are the fleet benchmark's cases for n processes: one process
// alone (the baseline), n each with its own pacing state, n sharing Redis,
// and n sharing Redis that is killed at killAt and restarted, empty,
// downFor later.
func Cases(n int, killAt, downFor time.Duration) []Case {
	return []Case{
		{Name: "1 process", Processes: 1},
		{Name: fmt.Sprintf("%d processes, each its own state", n), Processes: n},
		{Name: fmt.Sprintf("%d processes sharing Redis", n), Processes: n, Redis: true},
		{Name: fmt.Sprintf("%d processes sharing Redis, killed at %v for %v", n, killAt, downFor), Processes: n, Redis: true, KillAt: killAt, DownFor: downFor},
	}
}

// RunAll runs the cases in turn.
func RunAll(ctx context.Context, cfg Config, cases []Case) ([]Result, error) {
	var out []Result
	for _, c := range cases {
		r, err := Run(ctx, cfg, c)
		if err != nil {
			return out, fmt.Errorf("%s: %w", c.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// A Check is one goal, judged on one case.
type Check struct {
	Case, What string
	Got, Want  float64
	OK         bool
}

// The fleet's goals with Redis.
const (
	GoalWastedPerSuccess = 0.05
	GoalXBound           = 1.15
)

// Judge judges the results of Cases (in its order) against the goals: with
// Redis, no call fails that one process did not fail, at most
// GoalWastedPerSuccess wasted attempts per success and a makespan of at
// most GoalXBound times the bound; with Redis killed mid-run and
// restarted, no call fails that one process did not (none fails for it).
func Judge(rs []Result) []Check {
	base := rs[0]
	var out []Check
	add := func(r Result, what string, got, want float64) {
		out = append(out, Check{Case: r.Name, What: what, Got: got, Want: want, OK: got <= want})
	}
	for _, r := range rs[1:] {
		if !r.Redis {
			continue
		}
		add(r, "calls failed that one process did not fail", float64(len(NewFailures(r, base))), 0)
		if r.KillAt > 0 {
			continue
		}
		add(r, "wasted attempts per success", r.WastedPerSuccess(), GoalWastedPerSuccess)
		add(r, "makespan over the bound", r.XBound(), GoalXBound)
	}
	return out
}
