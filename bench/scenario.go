package bench

import (
	"math"
	"time"

	"github.com/autopack/dynretry/sim"
)

// A Dialect is the wire format a policy speaks, and so the limits the
// provider applies to it.
type Dialect string

const (
	// OpenAI: chat completions; limits RPM and TPM (input + output tokens).
	OpenAI Dialect = "openai"
	// Anthropic: messages; limits RPM, ITPM (input) and OTPM (output).
	Anthropic Dialect = "anthropic"
)

// A Scenario is one provider behaviour and one workload, faced alike by
// every policy.
type Scenario struct {
	// Name is the scenario's name in design.md's vocabulary.
	Name string
	// About says in a line what the scenario tests.
	About string
	// Sim is the provider in the OpenAI dialect: RPM and TPM, faults and
	// hints. Seed is set per run. The Anthropic dialect gets the same
	// config with TPM split into ITPM and OTPM (see Config).
	Sim sim.Config
	// Workload is the calls every policy makes.
	Workload Workload
	// Cases, when set, are variants run as separate cells (the lie modes
	// of lying-retry-after); each changes the provider's hint mode.
	Cases []sim.HintMode
	// QuotaBound, when set, computes the lower bound over the calls that can
	// succeed before the quota or the block runs out (Sim.QuotaAfter,
	// Sim.BlockAfter), not all of them.
	QuotaBound bool
	// Statistical marks a scenario whose goal is a rate that only many
	// seeds pin down (random-500s): it keeps all its seeds under the race
	// detector.
	Statistical bool
}

// seeds is how many seeds each scenario runs.
const seeds = 5

// Seeds returns the seeds the scenario runs: 1 to 5; with the race detector
// on, only seed 1 unless the scenario is Statistical (the race detector
// makes every call about seven times slower, and the suite must stay within
// its time budget).
func (s Scenario) Seeds() []uint64 {
	n := seeds
	if raceEnabled && !s.Statistical {
		n = 1
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// Config returns the provider config of the scenario for dialect d, hint
// mode mode ("" keeps Sim's) and seed.
//
// For the Anthropic dialect TPM becomes ITPM and OTPM in proportion to the
// workload's mean input and output tokens, so that a workload of mean calls
// meets the same token limit in either dialect and the two lower bounds
// agree to within the seed's deviation from the mean.
func (s Scenario) Config(d Dialect, mode sim.HintMode, seed uint64) sim.Config {
	c := s.Sim
	c.Seed = seed
	if mode != "" {
		c.HintMode = mode
	}
	if d == Anthropic && c.TPM > 0 {
		in := float64(s.Workload.Input[0]+s.Workload.Input[1]) / 2
		out := float64(s.Workload.Output[0]+s.Workload.Output[1]) / 2
		c.ITPM = int(math.Round(float64(c.TPM) * in / (in + out)))
		c.OTPM = c.TPM - c.ITPM
		c.TPM = 0
	}
	return c
}

// latency returns the provider's response latency for c.
func latency(c sim.Config) time.Duration {
	switch {
	case c.Latency == 0:
		return sim.DefaultLatency
	case c.Latency < 0:
		return 0
	}
	return c.Latency
}

// burst returns c's effective Burst.
func burst(c sim.Config) float64 {
	if c.Burst == 0 {
		return 1
	}
	return c.Burst
}

// A dim is one limited dimension of a provider config: its per-minute limit
// and what a call costs in it.
type dim struct {
	name  string
	limit int
	cost  func(Request) float64
}

// dims returns the limited dimensions of c (zero limits are unlimited).
func dims(c sim.Config) []dim {
	all := []dim{
		{"requests", c.RPM, func(Request) float64 { return 1 }},
		{"tokens", c.TPM, func(r Request) float64 { return float64(r.Input + r.MaxTokens) }},
		{"input-tokens", c.ITPM, func(r Request) float64 { return float64(r.Input) }},
		{"output-tokens", c.OTPM, func(r Request) float64 { return float64(r.MaxTokens) }},
	}
	var out []dim
	for _, d := range all {
		if d.limit > 0 {
			out = append(out, d)
		}
	}
	return out
}

// schedule is a provider's limit schedule over elapsed time since its
// start: capacity steps and overload windows, as sim applies them.
type schedule struct {
	burst     float64
	steps     []sim.Step
	overloads []sim.Window
}

func scheduleOf(c sim.Config) schedule {
	return schedule{burst: burst(c), steps: c.Capacity, overloads: c.Overloads}
}

// factor returns the capacity factor in effect at t.
func (s schedule) factor(t time.Duration) float64 {
	f := 1.0
	for _, st := range s.steps {
		if st.At > t {
			break
		}
		f = st.Factor
	}
	return f
}

// next returns the first step boundary strictly after t.
func (s schedule) next(t time.Duration) (time.Duration, bool) {
	for _, st := range s.steps {
		if st.At > t {
			return st.At, true
		}
	}
	return 0, false
}

// rate returns a limit's refill rate in units per second at t.
func (s schedule) rate(limit int, t time.Duration) float64 {
	return float64(limit) * s.factor(t) / 60
}

// capacity returns a limit's bucket capacity at t.
func (s schedule) capacity(limit int, t time.Duration) float64 {
	return float64(limit) * s.factor(t) * s.burst
}

// overloaded returns the end of the overload window containing t, if any.
func (s schedule) overloaded(t time.Duration) (time.Duration, bool) {
	for _, w := range s.overloads {
		if t >= w.Start && t < w.End {
			return w.End, true
		}
	}
	return 0, false
}

// bucket mirrors sim's token bucket for one dimension: it starts full and
// refills lazily, segment by segment between capacity steps.
type bucket struct {
	level float64
	last  time.Duration
}

// advance refills b to t exactly as sim does.
func (b *bucket) advance(s schedule, limit int, t time.Duration) {
	for b.last < t {
		end := t
		if n, ok := s.next(b.last); ok && n < t {
			end = n
		}
		b.level = min(b.level+s.rate(limit, b.last)*(end-b.last).Seconds(), s.capacity(limit, b.last))
		b.last = end
	}
	b.level = min(b.level, s.capacity(limit, t))
}
