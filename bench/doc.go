// Package bench is dynretry's scenario suite: every retry policy against
// the same simulated provider, in virtual time.
//
// TestScenarios runs each scenario (Scenarios) with each policy (Policies)
// for several seeds. Each run, a cell (RunCell), has its own
// testing/synctest bubble and a fresh sim.Provider reached through
// sim.Transport, in-process and without sockets, so hours of rate limiting
// take milliseconds. A scenario fixes the provider (limits, hints, faults)
// and the workload (Workload: calls that are all available at time zero,
// run by a fixed number of workers per client, each call with a deadline);
// every policy faces the same ones. The policies are the real libraries
// used the way their documentation shows, and an oracle that knows the
// provider's buckets: the physical limit.
//
// # Measures
//
// A tracking RoundTripper sits between every policy's retry layer and the
// provider and records each attempt in its call's record. From the
// provider's counters and those records a cell reports the fields of the
// benchmark file (Result) and the extra measures the goals need (Cell):
// attempts are the requests the provider received, wasted attempts those
// that did not succeed, the makespan is the time until the last successful
// call completed, latencies run from a call's start (time held included) to
// its end, and a sleep past a deadline is a call that was waiting between
// attempts when its deadline passed (record.sleptPastDeadline). The lower
// bound is documented on LowerBound.
//
// The tracker also stops runaway policies (ErrHotLoop, ErrAttemptCap):
// rejections take no time, so a policy that retries at once would keep
// virtual time from advancing forever.
//
// # Determinism
//
// The same seed gives the same cell: the workload, the provider's faults
// (drawn per call and attempt), dynretry's jitter and the order in which
// calls that meet at one virtual instant act on what they share (turns)
// all follow from it. TestSameSeedSameResult checks it. The peers' own
// jitter comes from their libraries' unseeded generators: their figures
// move a little from run to run.
//
// # Goals
//
// Goals evaluates dynretry's goals. TestScenarios asserts them as subtests
// goal/<scenario>, which fail with the unmet figures.
//
// # Running
//
//	go test ./bench -run TestScenarios -count=1 -v          # the table, the goals
//	BENCH_OUT=out.json go test ./bench -run TestScenarios -count=1
//	go test -run '^$' -bench SuccessPath -benchmem ./bench  # overhead
//	go run ./bench/cmd/benchmd                               # regenerate BENCHMARKS.md
//
// With the race detector on, every call is several times slower: the suite
// then runs one seed per scenario instead of five, except random-500s,
// whose goal is a rate that needs all five (Scenario.Seeds).
package bench
