// Package cohort compares the treatment and control cohorts from what
// telemetry recorded, and decides whether a rollout stage may advance.
//
// [Read] turns exported spans (one JSON object per line, as the demo's
// traces.jsonl) into a [Summary]: per cohort, the runs, calls, failures,
// attempts, wasted attempts, call latencies and a per-class breakdown, and
// the timeline of 429 responses and waits. The HTML report and the rollout
// guard both start from it.
//
// The statistics are small and standard: [Wilson] intervals for a
// proportion, the pooled two-proportion z-test ([TwoProportionZ]) for one
// look at the data, and, for a decision made again every day, a confidence
// sequence ([HalfWidth]) that stays valid however often it is checked.
// [Evaluate] applies them to the three guarded figures (error rate, wasted
// attempts per call, p95 time to answer) and returns a [Verdict]: advance,
// hold or rollback, with its reasons.
package cohort
