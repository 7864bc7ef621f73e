// Package telemetry sets up OpenTelemetry for dynretry and turns the
// engine's decisions into spans and metrics.
//
// Setup builds a TracerProvider and a MeterProvider of its own (it never
// touches the global ones) with the exporters and readers given in Options.
// Package telemetry/export builds them — those the standard OTEL_* variables
// ask for, a JSON-lines trace file, a Prometheus registry — so that this
// package, and every package importing it, compiles no exporter.
//
// A logical LLM call is one span, SpanCall, started by StartCall and ended by
// EndCall. Each attempt of the call is one child span, SpanAttempt, made by
// the retry.Observer that Observer returns from a retry.Event, with the
// event's own start and end times. The same observer serves both cohorts:
// the treatment cohort's retry.Retrier calls it directly, and the control
// cohort's transport builds one retry.Event per attempt of the SDK's own
// retries.
//
// The span attribute and metric names are a fixed contract shared with the
// dashboards and the rest of the project; they are the exported constants of
// names.go. On metrics, Prometheus (the exporter's default
// UnderscoreEscapingWithSuffixes strategy, set explicitly here) turns dots
// into underscores and adds "_total" to counters and the unit to the
// histogram:
//
//	dynretry.attempts      counter    dynretry_attempts_total{dynretry_cohort, dynretry_class, dynretry_decision}
//	dynretry.calls         counter    dynretry_calls_total{dynretry_cohort, dynretry_outcome, dynretry_class}
//	dynretry.giveups       counter    dynretry_giveups_total{dynretry_cohort, dynretry_class}
//	dynretry.retry.delay   histogram  dynretry_retry_delay_seconds_{bucket,sum,count}{dynretry_cohort, dynretry_class}
//
// Secrets stay out: no attribute carries a credential, a request or
// response header, the provider's error message or an error's text. The
// only free text emitted is the engine's decision reason and a flag
// evaluation's error message, both passed through Redact first.
package telemetry
