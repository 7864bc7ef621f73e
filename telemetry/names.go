package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	genai "go.opentelemetry.io/otel/semconv/v1.41.0"
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
	// AttrSent is a bool on attempt spans: false when the call ended before
	// the attempt was sent (retry.Event.Sent), true otherwise. Count only
	// sent attempts as attempts.
	AttrSent = "dynretry.sent"
	// AttrOutcome is the final outcome of a call on MetricCalls: "success"
	// or "failure".
	AttrOutcome = "dynretry.outcome"
	// AttrHold is what an outcome held its limit's calls back with
	// (retry.HoldKind: "hint", "overload", "long-hint check", "block"), on
	// MetricHolds.
	AttrHold = "dynretry.hold"
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
	// MetricAttempts counts attempts sent, by cohort, class, decision,
	// provider and model.
	MetricAttempts = "dynretry.attempts"
	// MetricCalls counts ended calls, by cohort, outcome, (on failure)
	// class, provider and model.
	MetricCalls = "dynretry.calls"
	// MetricGiveups counts calls the retry decision gave up on, by cohort,
	// class, provider and model.
	MetricGiveups = "dynretry.giveups"
	// MetricDelay records the delay chosen before each retry, in seconds, by
	// cohort, class, hint source, provider and model.
	MetricDelay = "dynretry.retry.delay"
	// MetricHolds counts the outcomes that held every call to their limit
	// back (a hint, an overload, a long-hint check, a block), by cohort,
	// class, hold, provider and model.
	MetricHolds = "dynretry.holds"
	// MetricCallWasted records, per ended call, its wasted attempts: those
	// sent that did not succeed. By cohort, provider and model.
	MetricCallWasted = "dynretry.call.wasted_attempts"
	// MetricCoordinationDegraded is a gauge: 1 while the shared pacing
	// store does not answer (Options.CoordinationDegraded), else 0.
	MetricCoordinationDegraded = "dynretry.coordination.degraded"
	// MetricRolloutPercent is a gauge: the share of runs in the treatment
	// cohort, from 0 to 100 (Options.RolloutPercent).
	MetricRolloutPercent = "dynretry.rollout.percent"
	// MetricOperationDuration is the GenAI client metric
	// gen_ai.client.operation.duration: each call's duration in seconds,
	// retries included, by operation, provider, model, cohort and (on
	// failure) error.type.
	MetricOperationDuration = "gen_ai.client.operation.duration"
	// MetricTokenUsage is the GenAI client metric gen_ai.client.token.usage:
	// the tokens a response reports, by gen_ai.token.type (input, output),
	// operation, provider, model and cohort.
	MetricTokenUsage = "gen_ai.client.token.usage"
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

// OperationChat is the gen_ai.operation.name of every call: a chat
// completion (OpenAI chat completions, Anthropic messages, Gemini
// generateContent).
const OperationChat = "chat"

// EventFlagEvaluation is the name of the span event on SpanCall that records
// the feature flag evaluation which chose the call's cohort.
const EventFlagEvaluation = "feature_flag.evaluation"

// Semantic-convention keys used. The GenAI keys come from semconv v1.41.0,
// the last Go semconv package that has them; the others from v1.43.0, the
// version the resource uses.
const (
	// KeyHTTPStatusCode is http.response.status_code.
	KeyHTTPStatusCode = semconv.HTTPResponseStatusCodeKey
	// KeyHTTPResendCount is http.request.resend_count.
	KeyHTTPResendCount = semconv.HTTPRequestResendCountKey
	// KeyHTTPMethod is http.request.method.
	KeyHTTPMethod = semconv.HTTPRequestMethodKey
	// KeyServerAddress is server.address.
	KeyServerAddress = semconv.ServerAddressKey
	// KeyServerPort is server.port.
	KeyServerPort = semconv.ServerPortKey
	// KeyURLFull is url.full, without credentials (see RedactURL).
	KeyURLFull = semconv.URLFullKey
	// KeyErrorType is error.type.
	KeyErrorType = semconv.ErrorTypeKey
	// KeyFlagKey is feature_flag.key.
	KeyFlagKey = semconv.FeatureFlagKeyKey
	// KeyFlagVariant is feature_flag.result.variant.
	KeyFlagVariant = semconv.FeatureFlagResultVariantKey
	// KeyFlagProvider is feature_flag.provider.name.
	KeyFlagProvider = semconv.FeatureFlagProviderNameKey
	// KeyFlagContextID is feature_flag.context.id.
	KeyFlagContextID = semconv.FeatureFlagContextIDKey
	// KeyGenAIOperation is gen_ai.operation.name.
	KeyGenAIOperation = genai.GenAIOperationNameKey
	// KeyGenAIProvider is gen_ai.provider.name.
	KeyGenAIProvider = genai.GenAIProviderNameKey
	// KeyGenAIRequestModel is gen_ai.request.model.
	KeyGenAIRequestModel = genai.GenAIRequestModelKey
	// KeyGenAIResponseModel is gen_ai.response.model.
	KeyGenAIResponseModel = genai.GenAIResponseModelKey
	// KeyGenAIInputTokens is gen_ai.usage.input_tokens.
	KeyGenAIInputTokens = genai.GenAIUsageInputTokensKey
	// KeyGenAIOutputTokens is gen_ai.usage.output_tokens.
	KeyGenAIOutputTokens = genai.GenAIUsageOutputTokensKey
	// KeyGenAITokenType is gen_ai.token.type.
	KeyGenAITokenType = genai.GenAITokenTypeKey
)

// ErrorTypeOther is the error.type of a failure without a dynretry class,
// and the value a bounded metric label takes past its bound.
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
	keyOutcome    = attribute.Key(AttrOutcome)
	keySent       = attribute.Key(AttrSent)
	keyHold       = attribute.Key(AttrHold)
	keyCoord      = attribute.Key(AttrCoordination)
)

// genAIProviders maps the providers dynretry knows (retry.Provider values)
// to their gen_ai.provider.name.
var genAIProviders = map[string]string{
	"openai":     "openai",
	"anthropic":  "anthropic",
	"gemini":     "gcp.gemini",
	"vertex":     "gcp.vertex_ai",
	"azure":      "azure.ai.openai",
	"openrouter": "openrouter",
	"groq":       "groq",
	"bedrock":    "aws.bedrock",
}

// GenAIProvider returns the gen_ai.provider.name of a provider as the
// runner or the engine names it ("openai", "gemini", ...): the
// convention's value ("openai", "gcp.gemini", ...), and whether the
// provider is one dynretry knows. Spans carry an unknown provider's name as
// given; metrics carry "_OTHER" for it, so that their labels stay bounded.
func GenAIProvider(p string) (name string, known bool) {
	if n, ok := genAIProviders[p]; ok {
		return n, true
	}
	return p, false
}
