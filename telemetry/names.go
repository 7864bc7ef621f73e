package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Span attribute keys of the dynretry namespace. They are a fixed contract
// (see the design notes, "Telemetry names").
const (
	// AttrRunID is the run's id.
	AttrRunID = "dynretry.run_id"
	// AttrCohort is "treatment" or "control".
	AttrCohort = "dynretry.cohort"
	// AttrAttempt is the 1-based number of the attempt.
	AttrAttempt = "dynretry.attempt"
	// AttrClass is the failure's class (retry.Class); absent on success.
	AttrClass = "dynretry.class"
	// AttrDecision is "success", "retry" or "give_up" (retry.Action).
	AttrDecision = "dynretry.decision"
	// AttrHintSource is where the delay's floor came from (retry.Source);
	// absent on success.
	AttrHintSource = "dynretry.hint_source"
	// AttrHintMS is the provider's hint in whole milliseconds, present only
	// when the hint was usable.
	AttrHintMS = "dynretry.hint_ms"
	// AttrDelayMS is the wait before the next attempt in whole milliseconds:
	// 0 unless the decision is "retry".
	AttrDelayMS = "dynretry.delay_ms"
	// AttrReason is the engine's explanation of the decision, redacted.
	AttrReason = "dynretry.reason"
	// AttrPhaseID is the runner's phase id.
	AttrPhaseID = "dynretry.phase_id"
	// AttrRole is the runner's role for the call (builder, auditor, ...).
	AttrRole = "dynretry.role"
	// AttrProvider is the LLM provider.
	AttrProvider = "dynretry.provider"
	// AttrModel is the model.
	AttrModel = "dynretry.model"
	// AttrSent is a bool on attempt spans: false when the call ended before
	// the attempt was sent (retry.Event.Sent), true otherwise. Count only
	// sent attempts as attempts.
	AttrSent = "dynretry.sent"
	// AttrOutcome is the final outcome of a call on MetricCalls: "success"
	// or "failure".
	AttrOutcome = "dynretry.outcome"
	// AttrCoordination is on attempt spans when a shared pacing store is in
	// use (Options.CoordinationDegraded set): "shared", or "local" when the
	// store answered from its process's own state because the shared one
	// was unavailable (retry.Event.Local).
	AttrCoordination = "dynretry.coordination"
)

// Values of AttrCoordination.
const (
	CoordinationShared = "shared"
	CoordinationLocal  = "local"
)

// Metric instrument names (OpenTelemetry names; see the package doc for the
// names Prometheus exports).
const (
	// MetricAttempts counts attempts sent, by cohort, class and decision.
	MetricAttempts = "dynretry.attempts"
	// MetricCalls counts ended calls, by cohort, outcome and (on failure)
	// class.
	MetricCalls = "dynretry.calls"
	// MetricGiveups counts calls the retry decision gave up on, by cohort and
	// class.
	MetricGiveups = "dynretry.giveups"
	// MetricDelay records the delay chosen before each retry, in seconds, by
	// cohort and class.
	MetricDelay = "dynretry.retry.delay"
	// MetricCoordinationDegraded is a gauge, 1 while the shared pacing store
	// is degraded (Options.CoordinationDegraded reports true), else 0;
	// exported only when Options.CoordinationDegraded is set.
	MetricCoordinationDegraded = "dynretry.coordination.degraded"
)

// Span names.
const (
	// SpanCall is the span of one logical LLM call, across its attempts.
	SpanCall = "dynretry.call"
	// SpanAttempt is the span of one attempt, a child of SpanCall.
	SpanAttempt = "dynretry.attempt"
)

// Values of AttrOutcome.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// EventFlagEvaluation is the name of the span event on SpanCall that records
// the feature flag evaluation which chose the call's cohort.
const EventFlagEvaluation = "feature_flag.evaluation"

// Semantic-convention keys used (semconv v1.43.0, the version the SDK's
// resource uses).
const (
	// KeyHTTPStatusCode is http.response.status_code.
	KeyHTTPStatusCode = semconv.HTTPResponseStatusCodeKey
	// KeyHTTPResendCount is http.request.resend_count.
	KeyHTTPResendCount = semconv.HTTPRequestResendCountKey
	// KeyErrorType is error.type.
	KeyErrorType = semconv.ErrorTypeKey
	// KeyFlagKey is feature_flag.key.
	KeyFlagKey = semconv.FeatureFlagKeyKey
	// KeyFlagVariant is feature_flag.result.variant.
	KeyFlagVariant = semconv.FeatureFlagResultVariantKey
	// KeyFlagProvider is feature_flag.provider.name.
	KeyFlagProvider = semconv.FeatureFlagProviderNameKey
	// KeyFlagReason is feature_flag.result.reason.
	KeyFlagReason = semconv.FeatureFlagResultReasonKey
	// KeyFlagError is feature_flag.error.message.
	KeyFlagError = semconv.FeatureFlagErrorMessageKey
)

// ErrorTypeOther is the error.type of a failure without a dynretry class.
const ErrorTypeOther = "_OTHER"

// The dynretry keys as attribute.Keys.
var (
	keyRunID      = attribute.Key(AttrRunID)
	keyCohort     = attribute.Key(AttrCohort)
	keyAttempt    = attribute.Key(AttrAttempt)
	keyClass      = attribute.Key(AttrClass)
	keyDecision   = attribute.Key(AttrDecision)
	keyHintSource = attribute.Key(AttrHintSource)
	keyHintMS     = attribute.Key(AttrHintMS)
	keyDelayMS    = attribute.Key(AttrDelayMS)
	keyReason     = attribute.Key(AttrReason)
	keyPhaseID    = attribute.Key(AttrPhaseID)
	keyRole       = attribute.Key(AttrRole)
	keyProvider   = attribute.Key(AttrProvider)
	keyModel      = attribute.Key(AttrModel)
	keyOutcome    = attribute.Key(AttrOutcome)
	keySent       = attribute.Key(AttrSent)
	keyCoord      = attribute.Key(AttrCoordination)
)
