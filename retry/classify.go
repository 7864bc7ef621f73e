package retry

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Classify returns the class of a failed outcome, or "" for a success. It
// reads the status, the headers and the error body of every dialect the
// package knows; see the package documentation for the rules.
func Classify(o Outcome) Class {
	if !o.Failed() {
		return ""
	}
	return classify(o, parseBody(o.Body))
}

// classify applies the rules in order; the first that matches wins.
func classify(o Outcome, eb *errorBody) Class {
	if o.Status == 0 {
		return classifyError(o.Err)
	}
	if c, ok := bedrockClass(o.Header.Get("x-amzn-ErrorType")); ok {
		if c == InvalidRequest && contextLengthText(eb.text()) {
			return ContextLength
		}
		return c
	}
	text := eb.text()
	switch {
	case o.Status == http.StatusPaymentRequired || quotaExhausted(eb, text):
		return QuotaExhausted
	case o.Status == http.StatusRequestEntityTooLarge || tooLarge(eb.message, text):
		return RequestTooLarge
	case o.Status == 529 || ((o.Status >= 500 || o.Status == 429) && overloadText(eb, text)):
		return Overloaded
	case o.Status == http.StatusUnauthorized || o.Status == http.StatusForbidden:
		return Auth // also when the text mentions a rate limit: the key is refused
	case o.Status == http.StatusTooManyRequests || throttleText(text):
		return RateLimited
	case o.Status == http.StatusRequestTimeout || o.Status == http.StatusGatewayTimeout || o.Status == 524:
		return Timeout
	case o.Status == http.StatusConflict:
		return Conflict
	case o.Status == http.StatusServiceUnavailable:
		return Overloaded
	case o.Status >= 500:
		return ServerError
	case contextLengthText(text):
		return ContextLength
	}
	return InvalidRequest
}

// quotaExhausted reports a limit that no wait within a run clears: billing,
// spend caps, credits, daily or monthly quotas. Gemini says "exceeded your
// current quota … billing" for per-minute limits too, so its QuotaFailure
// quota ids decide when present.
func quotaExhausted(eb *errorBody, text string) bool {
	if len(eb.quotaIDs) > 0 {
		for _, id := range eb.quotaIDs {
			id = strings.ToLower(id)
			if strings.Contains(id, "perday") || strings.Contains(id, "permonth") {
				return true
			}
		}
		return false
	}
	if eb.status == "RESOURCE_EXHAUSTED" && len(eb.retryDelay) > 0 {
		return false // Gemini: a limit that tells when to come back refills
	}
	return containsAny(text, quotaPhrases)
}

// quotaPhrases has no bare "billing": OpenAI's per-minute rate-limit message
// links to …/account/billing.
var quotaPhrases = []string{
	"insufficient_quota", "billing_hard_limit", "billing_not_active", "spend_limit", "spend limit",
	"exceeded your current quota", "credit balance", "insufficient credits", "insufficient balance",
	"out of credits", "per day", "(tpd)", "(rpd)", "daily limit", "daily quota",
	"per month", "monthly limit", "monthly quota",
}

// limitRequested matches OpenAI's "Limit 30000, Requested 34307" (with an
// optional "Used N," between).
var limitRequested = regexp.MustCompile(`(?i)limit:? ([\d,]+)(?:, used:? [\d,]+)?, requested:? ([\d,]+)`)

// tooLarge reports a request that alone exceeds a limit.
func tooLarge(message, text string) bool {
	if strings.Contains(text, "request too large") || strings.Contains(text, "request_too_large") {
		return true
	}
	m := limitRequested.FindStringSubmatch(message)
	if m == nil {
		return false
	}
	limit, err1 := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	req, err2 := strconv.ParseInt(strings.ReplaceAll(m[2], ",", ""), 10, 64)
	return err1 == nil && err2 == nil && req > limit
}

// overloadText reports provider-wide overload in a 429 or 5xx body.
func overloadText(eb *errorBody, text string) bool {
	return eb.kind == "overloaded_error" || eb.status == "UNAVAILABLE" ||
		containsAny(text, []string{"overloaded", "capacity", "model_not_ready", "model is loading"})
}

// throttleText reports a refilling limit described in a non-429 response
// (e.g. Bedrock's "Too many tokens", AWS-style "slow_down").
func throttleText(text string) bool {
	return containsAny(text, []string{"too many tokens", "too many requests", "throttl", "slow_down", "slow down", "rate limit", "rate_limit"})
}

// contextLengthText reports a prompt longer than the model's context.
func contextLengthText(text string) bool {
	return containsAny(text, []string{
		"context_length", "context length", "context window", "prompt is too long",
		"input is too long", "exceeds the maximum number of tokens", "maximum number of tokens allowed",
	})
}

// bedrockClass maps an x-amzn-ErrorType value ("ThrottlingException:http://…").
func bedrockClass(v string) (Class, bool) {
	if v == "" {
		return "", false
	}
	name, _, _ := strings.Cut(v, ":")
	switch name {
	case "ThrottlingException":
		return RateLimited, true
	case "ServiceQuotaExceededException":
		return QuotaExhausted, true
	case "ServiceUnavailableException", "ModelNotReadyException":
		return Overloaded, true
	case "ModelTimeoutException":
		return Timeout, true
	case "InternalServerException", "ModelErrorException", "ModelStreamErrorException":
		return ServerError, true
	case "AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException":
		return Auth, true
	case "ValidationException", "ResourceNotFoundException":
		return InvalidRequest, true
	}
	return "", false
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// A Scope is what a block holds: one limit (provider, model, credential), or
// every limit of a credential.
type Scope string

const (
	// ScopeLimit: the limit the failure came from. The zero Scope.
	ScopeLimit Scope = ""
	// ScopeCredential: every model reached with the credential.
	ScopeCredential Scope = "credential"
)

// billingPhrases name a quota of the whole credential: money, not a model's
// daily allowance.
var billingPhrases = []string{
	"insufficient_quota", "billing", "spend_limit", "spend limit", "credit balance",
	"insufficient credits", "insufficient balance", "out of credits", "exceeded your current quota",
}

// quotaScope says what a quota_exhausted failure exhausted: the credential
// for billing, credits and spend caps (and 402); the limit's model for a
// per-model daily or monthly quota (Gemini says which in its quota ids).
func quotaScope(status int, eb *errorBody) Scope {
	for _, id := range eb.quotaIDs {
		if l := strings.ToLower(id); strings.Contains(l, "perday") || strings.Contains(l, "permonth") {
			if strings.Contains(l, "permodel") {
				return ScopeLimit
			}
			return ScopeCredential
		}
	}
	text := eb.text()
	if status == http.StatusPaymentRequired || containsAny(text, billingPhrases) && !containsAny(text, []string{"per day", "per month", "daily", "monthly", "(rpd)", "(tpd)"}) {
		return ScopeCredential
	}
	return ScopeLimit
}

func scopeName(s Scope) string {
	if s == ScopeCredential {
		return "credential"
	}
	return "limit"
}

func quotaKind(s Scope) string {
	if s == ScopeCredential {
		return "billing, credits or a spend cap"
	}
	return "a daily or monthly quota of this model"
}

// windowText finds a limit's window written in error text: "requests per
// min (RPM)", "tokens per minute", "TPM", "per second".
var windowText = regexp.MustCompile(`\bper\s+(sec|second|min|minute|hour)\b|\b[io]?[rt]p([smh])\b`)

// statedWindow is the window error text (lower-cased) states, or 0.
func statedWindow(text string) time.Duration {
	m := windowText.FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	switch unit := m[1] + m[2]; unit {
	case "sec", "second", "s":
		return time.Second
	case "hour", "h":
		return time.Hour
	}
	return time.Minute
}
