package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autopack/dynretry/bench"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/retry/redisstore"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/redis/go-redis/v9"
)

// workerArg is the first argument of a worker's command line.
const workerArg = "fleet-worker"

// IsWorker reports whether args (os.Args) start a fleet worker: a program
// that runs fleets calls Worker then, before anything else.
func IsWorker(args []string) bool { return len(args) > 1 && args[1] == workerArg }

// secret is the fleet's credential secret.
const secret = "the fleet benchmark's shared secret"

// A workerSpec is what the parent tells a worker, as JSON in its
// arguments.
type workerSpec struct {
	Provider  string         `json:"provider"`
	Process   int            `json:"process"`
	Processes int            `json:"processes"`
	Workload  bench.Workload `json:"workload"`
	Seed      uint64         `json:"seed"`
	Start     time.Time      `json:"start"`
	RedisURL  string         `json:"redis_url,omitempty"` // "": each process its own MemoryStore
	Prefix    string         `json:"prefix,omitempty"`
	Timeout   time.Duration  `json:"timeout,omitempty"`
}

// A callLine is a worker's report of one call.
type callLine struct {
	Index int           `json:"index"`
	OK    bool          `json:"ok"`
	Err   string        `json:"err,omitempty"`
	End   time.Duration `json:"end"` // since the start
}

// A statsLine is a worker's last line.
type statsLine struct {
	Stats    *workerStats `json:"stats"`
	Attempts int64        `json:"attempts"`
}

// workerStats are a worker's counts of Redis use.
type workerStats struct {
	RoundTrips int64 `json:"round_trips"` // commands sent, counted by a go-redis hook
	Local      int64 `json:"local"`       // verdicts answered from local state
	Conflicts  int64 `json:"conflicts"`
	Failures   int64 `json:"failures"`
}

// Worker runs a fleet worker: its share of the workload (calls i with
// i%Processes == Process), from the start instant, through the real
// openai-go client over retry.Transport, printing a JSON line per call and
// one with its counts. It returns the exit status.
func Worker(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(workerArg, flag.ContinueOnError)
	fs.SetOutput(stderr)
	specJSON := fs.String("spec", "", "the worker's spec, JSON")
	if err := fs.Parse(args[2:]); err != nil {
		return 2
	}
	var spec workerSpec
	if err := json.Unmarshal([]byte(*specJSON), &spec); err != nil {
		fmt.Fprintln(stderr, "fleet worker:", err)
		return 2
	}
	if err := work(spec, os.Getenv("FLEET_API_KEY"), stdout); err != nil {
		fmt.Fprintln(stderr, "fleet worker:", err)
		return 1
	}
	return 0
}

// counter counts the commands a go-redis client sends.
type counter struct{ n atomic.Int64 }

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// countingTransport counts the attempts sent.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(req)
}

func work(spec workerSpec, apiKey string, stdout io.Writer) error {
	var store retry.Store = new(retry.MemoryStore)
	var rs *redisstore.Store
	var rtts counter
	if spec.RedisURL != "" {
		o, err := redis.ParseURL(spec.RedisURL)
		if err != nil {
			return err
		}
		o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries = true, -1, 1
		client := redis.NewClient(o)
		defer client.Close()
		client.AddHook(&rtts)
		if rs, err = redisstore.New(client, redisstore.Options{Prefix: spec.Prefix, Timeout: spec.Timeout}); err != nil {
			return err
		}
		store = rs
	}
	creds, err := retry.NewCredentials([]byte(secret))
	if err != nil {
		return err
	}
	r, err := retry.New(retry.Config{}, retry.WithStore(store), retry.WithCredentials(creds))
	if err != nil {
		return err
	}
	sent := &countingTransport{base: &http.Transport{MaxIdleConnsPerHost: 64}}
	client := openai.NewClient(option.WithBaseURL(spec.Provider+"/v1"), option.WithAPIKey(apiKey), option.WithMaxRetries(0),
		option.WithHTTPClient(&http.Client{Transport: &retry.Transport{Base: sent, Retrier: r}}))

	var mine []bench.Request
	for _, req := range spec.Workload.Generate(spec.Seed) {
		if req.Index%spec.Processes == spec.Process {
			mine = append(mine, req)
		}
	}
	next := make(chan bench.Request, len(mine))
	for _, req := range mine {
		next <- req
	}
	close(next)

	time.Sleep(time.Until(spec.Start))
	var mu sync.Mutex
	enc := json.NewEncoder(stdout)
	var wg sync.WaitGroup
	for range max(spec.Workload.Concurrency, 1) {
		wg.Go(func() {
			for req := range next {
				ctx, cancel := context.WithTimeout(context.Background(), req.Deadline)
				_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
					Model:               "gpt-4o-mini",
					Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage(req.Prompt)},
					MaxCompletionTokens: openai.Int(int64(req.MaxTokens)),
				})
				cancel()
				line := callLine{Index: req.Index, OK: err == nil, End: time.Since(spec.Start)}
				if err != nil {
					line.Err = errText(err)
				}
				mu.Lock()
				enc.Encode(line)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	last := statsLine{Attempts: sent.n.Load(), Stats: new(workerStats)}
	if rs != nil {
		st := rs.Stats()
		if err := rs.Close(); err != nil {
			return err
		}
		*last.Stats = workerStats{RoundTrips: rtts.n.Load(), Local: st.Local, Conflicts: st.Conflicts, Failures: st.Failures}
	}
	return enc.Encode(last)
}

// errText is a short account of a failed call.
func errText(err error) string {
	var e *retry.Error
	if errors.As(err, &e) {
		return e.Decision.Reason
	}
	var ae *openai.Error
	if errors.As(err, &ae) {
		return fmt.Sprintf("HTTP %d", ae.StatusCode)
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
