package telemetry

import "regexp"

// Redacted replaces whatever Redact removes.
const Redacted = "[REDACTED]"

// secrets matches what looks like a credential in free text: OpenAI and
// Anthropic keys (sk-…, sk-proj-…, sk-ant-…, also when partly masked with
// '*'), Google API keys (AIza…), bearer tokens, and the value after a
// key-naming word (api_key=…, x-api-key: …, authorization: …).
var secrets = regexp.MustCompile(`\bsk-[A-Za-z0-9_*\-]{6,}` +
	`|\bAIza[0-9A-Za-z_\-]{10,}` +
	`|(?i:\bbearer)\s+[A-Za-z0-9._~+/\-]+=*` +
	`|(?i:\b(?:x-goog-api-key|x-api-key|api[-_ ]?key|authorization|access[-_ ]?token|secret))["']?\s*[:=]\s*["']?(?:(?i:bearer)\s+)?[^\s"',;}]+`)

// Redact returns s with everything that looks like a credential replaced by
// Redacted. It is a last line of defense for the few free-text values
// emitted; the rule remains that secrets are never passed to telemetry.
func Redact(s string) string {
	return secrets.ReplaceAllString(s, Redacted)
}

// truncate cuts s to at most n bytes, keeping UTF-8 whole, and marks the
// cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
