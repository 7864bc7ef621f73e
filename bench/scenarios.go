package bench

import (
	"fmt"
	"time"

	"github.com/autopack/dynretry/sim"
)

// The shared shape of the workloads: prompts of 50–250 input tokens and
// max_tokens of 200–800, about 650 tokens a call. Prompts are kept short
// because every layer encodes and decodes them (the suite's time goes
// mostly to JSON); max_tokens costs nothing to send but counts against TPM
// in full, as OpenAI charges it.
var (
	inputTokens  = [2]int{50, 250}
	outputTokens = [2]int{200, 800}
)

// Scenarios returns the suite, in design.md's order. Every policy faces the
// same provider and workload in a scenario; nothing is tuned per policy.
func Scenarios() []Scenario {
	long := [2]time.Duration{5 * time.Minute, 5 * time.Minute}
	return []Scenario{
		{
			Name:  "steady-overload",
			About: "RPM and TPM both far below demand; 429s carry truthful hints",
			Sim:   sim.Config{RPM: 30, TPM: 18_000},
			Workload: Workload{Requests: 150, Concurrency: 16,
				Input: inputTokens, Output: outputTokens, Deadline: long},
		},
		{
			Name:  "no-hints",
			About: "steady-overload without retry-after or waits in messages (rate-limit headers stay)",
			Sim:   sim.Config{RPM: 30, TPM: 18_000, HintMode: sim.HintOmit},
			Workload: Workload{Requests: 150, Concurrency: 16,
				Input: inputTokens, Output: outputTokens, Deadline: long},
		},
		{
			Name:  "random-500s",
			About: "5% of admitted calls answer 500 after the latency; limits far from binding",
			Sim:   sim.Config{RPM: 100_000, TPM: 100_000_000, ErrorRate: 0.05},
			Workload: Workload{Requests: 400, Concurrency: 16,
				Input: inputTokens, Output: outputTokens, Deadline: long},
			Statistical: true,
		},
		{
			Name:  "overload-burst",
			About: "every call is answered 503 (529 for Anthropic) from 20 s to 50 s; RPM binding",
			Sim: sim.Config{RPM: 60, TPM: 1_000_000,
				Overloads: []sim.Window{{Start: 20 * time.Second, End: 50 * time.Second}}},
			Workload: Workload{Requests: 150, Concurrency: 16,
				Input: inputTokens, Output: outputTokens, Deadline: [2]time.Duration{10 * time.Minute, 10 * time.Minute}},
		},
		{
			Name:  "lying-retry-after",
			About: "steady overload whose 429s lie: 1 h, a date 1 h in the past, 0 (rate-limit headers stay truthful)",
			Sim:   sim.Config{RPM: 30, TPM: 18_000},
			Cases: []sim.HintMode{sim.HintLieLong, sim.HintLiePast, sim.HintLieZero},
			Workload: Workload{Requests: 120, Concurrency: 16,
				Input: inputTokens, Output: outputTokens, Deadline: [2]time.Duration{3 * time.Minute, 3 * time.Minute}},
		},
		{
			Name:  "quota-exhausted",
			About: "after 60 admitted calls every call gets OpenAI's insufficient_quota 429",
			Sim:   sim.Config{RPM: 600, TPM: 1_000_000, QuotaAfter: 60},
			Workload: Workload{Requests: 100, Concurrency: 16,
				Input: inputTokens, Output: outputTokens, Deadline: long},
			QuotaBound: true,
		},
		{
			Name:  "short-deadlines",
			About: "steady overload with deadlines of 2–20 s, shorter than most waits the provider asks for",
			Sim:   sim.Config{RPM: 30, TPM: 18_000},
			Workload: Workload{Requests: 100, Concurrency: 16,
				Input: inputTokens, Output: outputTokens, Deadline: [2]time.Duration{2 * time.Second, 20 * time.Second}},
		},
		{
			Name:  "capacity-step",
			About: "steady overload whose limits halve from 60 s to 150 s",
			Sim: sim.Config{RPM: 30, TPM: 18_000,
				Capacity: []sim.Step{{At: 60 * time.Second, Factor: 0.5}, {At: 150 * time.Second, Factor: 1}}},
			Workload: Workload{Requests: 150, Concurrency: 16,
				Input: inputTokens, Output: outputTokens, Deadline: long},
		},
		{
			Name:  "fleet-8",
			About: "8 clients (8 Retriers sharing one MemoryStore; peers: 8 independent clients) on one key",
			Sim:   sim.Config{RPM: 60, TPM: 36_000},
			Workload: Workload{Requests: 240, Clients: 8, Concurrency: 4,
				Input: inputTokens, Output: outputTokens, Deadline: long},
		},
		{
			Name:  "blind",
			About: "steady-overload behind a gateway: no hint on 429s and no rate-limit headers on any response",
			Sim:   sim.Config{RPM: 30, TPM: 18_000, HintMode: sim.HintOmit, NoRateHeaders: true},
			Workload: Workload{Requests: 150, Concurrency: 16,
				Input: inputTokens, Output: outputTokens, Deadline: long},
		},
		{
			Name:  "long-hint-lie",
			About: "RPM binding (a request refills in 1 s); every 429 says 1 h, and no rate-limit header contradicts it",
			Sim:   sim.Config{RPM: 60, TPM: 1_000_000, HintMode: sim.HintLieLong, NoRateHeaders: true},
			Workload: Workload{Requests: 150, Concurrency: 16,
				Input: inputTokens, Output: outputTokens, Deadline: long},
		},
		{
			Name:  "long-hint-true",
			About: "after 30 admitted calls the key is blocked for 1 h: every 429 says so truthfully (no rate-limit headers); calls arrive 1 s apart for 150 s",
			Sim:   sim.Config{RPM: 60, TPM: 1_000_000, BlockAfter: 30, BlockFor: time.Hour, NoRateHeaders: true},
			Workload: Workload{Requests: 150, Concurrency: 16, Every: time.Second,
				Input: inputTokens, Output: outputTokens, Deadline: long},
			QuotaBound: true,
		},
		outage(5 * time.Second),
		outage(30 * time.Second),
		outage(60 * time.Second),
		coldBurst(false),
		coldBurst(true),
		blindBurst(32, false),
		blindBurst(200, false),
		blindBurst(32, true),
		blindBurst(200, true),
	}
}

// blindBurst is the scenario blind-burst (n workers: 32), or
// blind-burst-<n>: 200 calls into a bucket of 10 requests refilling at 20
// a second, behind a gateway that strips the rate-limit headers and the
// hints (blind, as issue 7 defines it). With hints, it is the scenario
// burst-no-headers or burst-no-headers-<n> (429s keep their truthful
// hints). The bucket holds half a second of its rate, far less than the
// minute a provider states its limits over: a client that learns the rate
// must find it well above a minute's successes.
func blindBurst(n int, hints bool) Scenario {
	s := Scenario{
		Name:  "blind-burst",
		About: fmt.Sprintf("200 calls, %d at a time, into a bucket of 10 requests refilling at 20/s: no hint on 429s and no rate-limit headers on any response", n),
		Sim:   sim.Config{RPM: 1200, Burst: 10.0 / 1200, HintMode: sim.HintOmit, NoRateHeaders: true},
		Workload: Workload{Requests: 200, Concurrency: n,
			Input: inputTokens, Output: outputTokens, Deadline: [2]time.Duration{15 * time.Minute, 15 * time.Minute}},
	}
	if hints {
		s.Name = "burst-no-headers"
		s.About = fmt.Sprintf("200 calls, %d at a time, into a bucket of 10 requests refilling at 20/s, behind a gateway that strips the rate-limit headers (429s keep their truthful hints)", n)
		s.Sim.HintMode = ""
	}
	if n != 32 {
		s.Name = fmt.Sprintf("%s-%d", s.Name, n)
	}
	return s
}

// coldBurst is the scenario cold-burst, or cold-burst-no-headers: 200
// calls at once, as when many runs start together on one key, into a limit
// no call has reached yet, 50 ms of network away: every answer, a refusal's
// too, comes a round trip after the call was sent, so all 200 are sent
// before the first answer unless the client holds them back. cold-burst's
// bucket holds 10 requests and refills at 50 a second, and the provider
// states it in its headers. cold-burst-no-headers's states nothing but a
// truthful hint on a refusal, as a gateway that strips the rate-limit
// headers does; its bucket holds 20 requests, the minute's limit.
func coldBurst(noHeaders bool) Scenario {
	s := Scenario{
		Name:  "cold-burst",
		About: "200 calls at once into a limit not yet reached: a bucket of 10 requests refilling at 50/s, 50 ms of network away; truthful hints and headers",
		Sim:   sim.Config{RPM: 3000, Burst: 10.0 / 3000, Transit: 50 * time.Millisecond},
		Workload: Workload{Requests: 200, Concurrency: 200,
			Input: inputTokens, Output: outputTokens, Deadline: [2]time.Duration{15 * time.Minute, 15 * time.Minute}},
	}
	if noHeaders {
		s.Name = "cold-burst-no-headers"
		s.About = "200 calls at once into a limit of 20 requests a minute not yet reached, 50 ms of network away, behind a gateway that strips the rate-limit headers (429s keep their truthful hints)"
		s.Sim = sim.Config{RPM: 20, NoRateHeaders: true, Transit: 50 * time.Millisecond}
	}
	return s
}

// outage is the scenario outage-<d>: RPM binding, every call answered 503
// (529 for Anthropic) from 20 s for d.
func outage(d time.Duration) Scenario {
	return Scenario{
		Name:  fmt.Sprintf("outage-%ds", int(d.Seconds())),
		About: fmt.Sprintf("RPM binding; every call is answered 503 (529 for Anthropic) for %s from 20 s", d),
		Sim: sim.Config{RPM: 60, TPM: 1_000_000,
			Overloads: []sim.Window{{Start: 20 * time.Second, End: 20*time.Second + d}}},
		Workload: Workload{Requests: 150, Concurrency: 16,
			Input: inputTokens, Output: outputTokens, Deadline: [2]time.Duration{10 * time.Minute, 10 * time.Minute}},
	}
}
