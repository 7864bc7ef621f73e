package bench

import (
	"math/rand/v2"
	"strings"
	"time"

	"github.com/autopack/dynretry/sim"
)

// A Workload is the calls one scenario makes: Requests calls, split round
// robin over Clients clients, each client running its share on Concurrency
// workers that take the next call as soon as the previous one returns. Every
// call is available at time zero (unless Every spreads them), so demand far
// exceeds what a binding limit admits: the queue, not the arrivals, sets
// the pace.
type Workload struct {
	// Requests is the number of calls.
	Requests int
	// Clients is the number of independent clients (SDK clients, Retriers);
	// 0 means 1.
	Clients int
	// Concurrency is the number of workers per client.
	Concurrency int
	// Input is the range, inclusive, of a call's input tokens (its prompt's
	// characters divided by 4).
	Input [2]int
	// Output is the range, inclusive, of a call's max_tokens.
	Output [2]int
	// Deadline is the range, inclusive, of a call's deadline, counted from
	// when a worker starts it.
	Deadline [2]time.Duration
	// Every, when positive, spreads the calls over time: call i becomes
	// available Index·Every after the start, so that a scenario can last
	// longer than its limit takes to answer.
	Every time.Duration
}

// A Request is one call of a workload.
type Request struct {
	// Index is the call's position in the workload.
	Index int
	// Client is the client that makes it.
	Client int
	// Prompt is the user message.
	Prompt string
	// Input is Prompt's input tokens as the provider counts them.
	Input int
	// MaxTokens is the output allowance (max_completion_tokens, max_tokens).
	MaxTokens int
	// Deadline is the call's timeout, from when it starts.
	Deadline time.Duration
	// Arrival is when the call becomes available, from the start.
	Arrival time.Duration
}

// clients returns the number of clients, at least 1.
func (w Workload) clients() int { return max(w.Clients, 1) }

// workers returns the total number of workers over all clients.
func (w Workload) workers() int { return w.clients() * w.Concurrency }

// Generate returns the workload's calls for seed: the same seed gives the
// same calls.
func (w Workload) Generate(seed uint64) []Request {
	rng := rand.New(rand.NewPCG(seed, 0x5bd1e995))
	between := func(r [2]int) int { return r[0] + rng.IntN(r[1]-r[0]+1) }
	reqs := make([]Request, w.Requests)
	for i := range reqs {
		in := between(w.Input)
		d := w.Deadline[0]
		if span := w.Deadline[1] - w.Deadline[0]; span > 0 {
			d += time.Duration(rng.Int64N(int64(span) + 1))
		}
		// A prompt of 4·in characters counts as exactly in tokens.
		prompt := strings.Repeat("abc ", in)
		reqs[i] = Request{
			Index:     i,
			Client:    i % w.clients(),
			Prompt:    prompt,
			Input:     sim.EstimateInputTokens(prompt),
			MaxTokens: between(w.Output),
			Deadline:  d,
			Arrival:   time.Duration(i) * w.Every,
		}
	}
	return reqs
}
