package telemetry

import "regexp"

// Redacted replaces whatever Redact removes.
const Redacted = "[REDACTED]"

// secrets matches what looks like a credential in free text. It is the one
// pattern set of the project: spans, logs, error reports and header dumps
// all go through Redact.
//
//   - API keys, whole or as providers print them masked: sk-… (OpenAI's
//     sk-proj-…, Anthropic's sk-ant-…) and Google's AIza…, with '*' and '…'
//     (or "...") standing for hidden characters, as in
//     "sk-proj-********…fGzz" or "sk-ant-…****…": the shown characters of a
//     real key go too.
//   - Bearer tokens.
//   - The value after a name that says it is secret — api_key, x-api-key,
//     x-goog-api-key, authorization, …secret, password, credentials,
//     …token — written name: value or name=value (a header line, JSON,
//     a query string); the name is kept. max_tokens is not such a name: the
//     word must end it.
//   - A key in a URL query (?key=…, &key=…), as Gemini takes it.
var secrets = regexp.MustCompile(
	`\b(?:sk-|AIza)(?:[A-Za-z0-9_*\-]|…|\.\.+){6,}` +
		`|(?i:\bbearer)\s+[A-Za-z0-9._~+/*…\-]+=*` +
		`|\b((?i:[\w.\-]*?(?:api[-_ ]?key|authorization|secret|password|credentials?|token))["']?\s*[:=]\s*["']?)(?i:bearer\s+)?[^\s"',;}&]+` +
		`|([?&]key=)[^&\s"'#]+`)

// Redact returns s with everything that looks like a credential replaced by
// Redacted (see secrets for what that is). It is a last line of defense for
// the few free-text values emitted; the rule remains that secrets are never
// passed to telemetry, logs or reports.
func Redact(s string) string {
	return secrets.ReplaceAllString(s, "${1}${2}"+Redacted)
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
