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
// The names follow the OpenTelemetry semantic conventions where they
// exist: a call span carries the GenAI client attributes
// (gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model,
// gen_ai.response.model, gen_ai.usage.input_tokens/output_tokens), an
// attempt span the HTTP client ones (http.request.method, server.address,
// server.port, url.full without credentials, http.response.status_code,
// http.request.resend_count, error.type), and the flag evaluation is the
// feature-flag event OpenFeature's telemetry helper builds
// (feature_flag.key, .provider.name, .result.variant, .result.reason,
// .context.id). The dynretry.* attributes carry what no convention names;
// they and the metric names are the exported constants of names.go.
// Metrics carry gen_ai.provider.name and gen_ai.request.model, bounded
// (known providers, else "_OTHER"; the first MaxModels models, then
// "_OTHER"). On Prometheus (the exporter's default
// UnderscoreEscapingWithSuffixes strategy, set explicitly in
// telemetry/export), dots become underscores, counters gain "_total" and
// histograms their unit; every metric also has the labels
// gen_ai_provider_name and gen_ai_request_model:
//
//	dynretry.attempts                  dynretry_attempts_total{dynretry_cohort, dynretry_class, dynretry_decision}
//	dynretry.calls                     dynretry_calls_total{dynretry_cohort, dynretry_outcome, dynretry_class}
//	dynretry.giveups                   dynretry_giveups_total{dynretry_cohort, dynretry_class}
//	dynretry.holds                     dynretry_holds_total{dynretry_cohort, dynretry_class, dynretry_hold}
//	dynretry.retry.delay               dynretry_retry_delay_seconds_{bucket,sum,count}{dynretry_cohort, dynretry_class, dynretry_hint_source}
//	dynretry.call.wasted_attempts      dynretry_call_wasted_attempts_{bucket,sum,count}{dynretry_cohort}
//	gen_ai.client.operation.duration   gen_ai_client_operation_duration_seconds_{bucket,sum,count}{dynretry_cohort, gen_ai_operation_name, error_type}
//	gen_ai.client.token.usage          gen_ai_client_token_usage_{bucket,sum,count}{dynretry_cohort, gen_ai_operation_name, gen_ai_token_type}
//	dynretry.coordination.degraded     dynretry_coordination_degraded (gauge, 0 or 1)
//	dynretry.rollout.percent           dynretry_rollout_percent (gauge, 0 to 100)
//
// Setup serves them on Options.PrometheusListen (models.yaml's
// telemetry.prometheus_listen) when set.
//
// Secrets stay out: no attribute carries a credential, a request or
// response header, the provider's error message or an error's text. The
// only free text emitted is the engine's decision reason and a flag
// evaluation's error message, both passed through Redact first, and the
// request's URL, whose credentials RedactURL removes.
package telemetry
