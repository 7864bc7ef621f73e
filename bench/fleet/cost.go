package fleet

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/retry/redisstore"
	"github.com/redis/go-redis/v9"
)

// A CostCase is one way to load a store: Callers goroutines, split evenly
// over Stores stores (processes, as Redis sees them: each its own client,
// cache and worker), make attempts on one limit for Duration: back to back
// (the most the store does), or at Rate attempts a second in all, each
// caller waiting its turn as a caller of an LLM waits for the answer.
type CostCase struct {
	Name     string
	Stores   int
	Callers  int
	Redis    bool    // else one MemoryStore per store
	Rate     float64 // attempts a second in all; 0: back to back
	Duration time.Duration
}

// A CostResult is what a CostCase measured. An attempt is what a call
// costs the store per attempt: a Book, then an Observe of its success.
type CostResult struct {
	CostCase
	// Attempts made; PerSecond of them.
	Attempts  int64
	PerSecond float64
	// P50 and P99 are the latency of Book.
	P50, P99 time.Duration
	// RoundTrips counts the commands sent to Redis (a go-redis hook).
	RoundTrips int64
	// Conflicts counts the compare-and-sets that met another store's change.
	Conflicts int64
	// ScriptMicros is the Redis CPU time per compare-and-set script, in
	// microseconds (INFO commandstats: evalsha's usec_per_call).
	ScriptMicros float64
}

// warmUp is how long a cost case runs before it is measured.
const warmUp = 500 * time.Millisecond

// RoundTripsPerAttempt is RoundTrips over Attempts.
func (r CostResult) RoundTripsPerAttempt() float64 {
	return float64(r.RoundTrips) / float64(max(r.Attempts, 1))
}

// Cost loads the stores of c (on the Redis at redisURL when c.Redis) and
// measures them. The limit states windows with room to spare, so that every
// booking is for now: the store's own cost, not pacing, is measured.
func Cost(ctx context.Context, c CostCase, redisURL string) (CostResult, error) {
	res := CostResult{CostCase: c}
	var rtts counter
	stores := make([]retry.Store, c.Stores)
	var shared []*redisstore.Store
	for i := range stores {
		if !c.Redis {
			stores[i] = new(retry.MemoryStore)
			continue
		}
		o, err := redis.ParseURL(redisURL)
		if err != nil {
			return res, err
		}
		o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries = true, -1, 1
		client := redis.NewClient(o)
		defer client.Close()
		client.AddHook(&rtts)
		s, err := redisstore.New(client, redisstore.Options{Prefix: "cost:" + c.Name + ":"})
		if err != nil {
			return res, err
		}
		defer s.Close()
		stores[i], shared = s, append(shared, s)
	}
	key := retry.Key{Provider: retry.OpenAI, Model: "gpt-4o-mini", Credential: "cost"}
	roomy := retry.Limits{{Reset: retry.SourceResetRequests, Limit: 1_000_000, Remaining: 999_000, Until: time.Second}}

	var attempts atomic.Int64
	lat := make([][]time.Duration, c.Callers)
	begin := time.Now()
	measure := begin.Add(warmUp) // connections dialled, the script loaded, the clock read
	stop := measure.Add(c.Duration)
	var admin *redis.Client
	if c.Redis {
		o, _ := redis.ParseURL(redisURL)
		admin = redis.NewClient(o)
		defer admin.Close()
	}
	var rtts0, conflicts0 int64
	var wg sync.WaitGroup
	wg.Go(func() { // the counts when the measure begins
		time.Sleep(time.Until(measure))
		rtts0 = rtts.n.Load()
		for _, s := range shared {
			conflicts0 += s.Stats().Conflicts
		}
		if admin != nil {
			admin.ConfigResetStat(ctx)
		}
	})
	for i := range c.Callers {
		s := stores[i%c.Stores]
		wg.Go(func() {
			var every time.Duration
			if c.Rate > 0 {
				every = time.Duration(float64(c.Callers) / c.Rate * float64(time.Second))
			}
			next := begin.Add(every * time.Duration(i) / time.Duration(c.Callers)) // callers spread over one turn
			for time.Now().Before(stop) && ctx.Err() == nil {
				if every > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(every)
				}
				start := time.Now()
				v, err := s.Book(ctx, key, retry.Ask{Now: start, Cost: retry.Cost{Requests: 1}})
				took := time.Since(start)
				if err != nil {
					return
				}
				s.Observe(ctx, key, retry.Observation{Now: time.Now(), Sent: v.At, Limits: roomy})
				if start.After(measure) {
					lat[i] = append(lat[i], took)
					attempts.Add(1)
				}
			}
		})
	}
	wg.Wait()
	for _, s := range shared {
		res.Conflicts += s.Stats().Conflicts
	}
	res.Conflicts -= conflicts0
	if admin != nil {
		info, err := admin.Info(ctx, "commandstats").Result()
		if err != nil {
			return res, err
		}
		res.ScriptMicros = usecPerCall(info, "evalsha")
	}
	res.RoundTrips = rtts.n.Load() - rtts0
	all := slices.Concat(lat...)
	slices.Sort(all)
	res.Attempts = attempts.Load()
	res.PerSecond = float64(res.Attempts) / c.Duration.Seconds()
	if n := len(all); n > 0 {
		res.P50, res.P99 = all[n/2], all[min(n-1, n*99/100)]
	}
	return res, ctx.Err()
}

// usecPerCall reads a command's usec_per_call from INFO commandstats, or 0.
func usecPerCall(info, command string) float64 {
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+command+":")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "usec_per_call="); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
	}
	return 0
}
