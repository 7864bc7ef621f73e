package telemetry

import (
	"regexp"
	"strings"
)

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
//
// Every match contains one of secretWords; see mayHoldSecret.
var secrets = regexp.MustCompile(
	`\b(?:sk-|AIza)(?:[A-Za-z0-9_*\-]|…|\.\.+){6,}` +
		`|(?i:\bbearer)\s+[A-Za-z0-9._~+/*…\-]+=*` +
		`|\b((?i:[\w.\-]*?(?:api[-_ ]?key|authorization|secret|password|credentials?|token))["']?\s*[:=]\s*["']?)(?i:bearer\s+)?[^\s"',;}&]+` +
		`|([?&]key=)[^&\s"'#]+`)

// secretWords are words of which every match of secrets contains one, in
// lower case: each alternative of the pattern spells one out ("api-key",
// "api_key", "apikey" and "key=" all contain "key"; "credentials" contains
// "credential"). Matched without regard to case, they are a superset of
// what the pattern requires.
var secretWords = []string{"sk-", "aiza", "bearer", "key", "authorization", "secret", "password", "credential", "token"}

// wordsAt lists, for each byte, the words of secretWords that can begin
// with it: those whose first letter it is in either case, and for the first
// byte of the two non-ASCII runes that (?i) folds to an ASCII letter, K
// (U+212A, KELVIN SIGN) to k and ſ (U+017F, LATIN SMALL LETTER LONG S) to s,
// those that begin with k or s.
var wordsAt = func() (t [256][]string) {
	for _, w := range secretWords {
		t[w[0]] = append(t[w[0]], w)
		t[w[0]-'a'+'A'] = append(t[w[0]-'a'+'A'], w)
		switch w[0] {
		case 'k':
			t["\u212a"[0]] = append(t["\u212a"[0]], w)
		case 's':
			t["\u017f"[0]] = append(t["\u017f"[0]], w)
		}
	}
	return t
}()

// Redact returns s with everything that looks like a credential replaced by
// Redacted (see secrets for what that is). It is a last line of defense for
// the few free-text values emitted; the rule remains that secrets are never
// passed to telemetry, logs or reports.
//
// A string without any of the words a match needs (see secretWords) is
// returned as it is, without running the pattern: most of what is
// redacted, such as the engine's reasons and URLs, holds none.
func Redact(s string) string {
	if !mayHoldSecret(s) {
		return s
	}
	return secrets.ReplaceAllString(s, "${1}${2}"+Redacted)
}

// mayHoldSecret reports whether s contains one of secretWords under the
// case folding of the pattern's (?i): an ASCII letter in either case, and
// also K for k and ſ for s (Go's regexp folds with unicode.SimpleFold, and
// these are the only non-ASCII runes whose fold orbit holds an ASCII
// letter). When it reports false, secrets does not match s.
func mayHoldSecret(s string) bool {
	for i := 0; i < len(s); i++ {
		for _, w := range wordsAt[s[i]] {
			if hasFoldPrefix(s[i:], w) {
				return true
			}
		}
	}
	return false
}

// hasFoldPrefix reports whether s begins with word (lower-case ASCII) under
// the folding of mayHoldSecret.
func hasFoldPrefix(s, word string) bool {
	for j := 0; j < len(word); j++ {
		c := word[j]
		switch {
		case len(s) == 0:
			return false
		case s[0] == c || 'a' <= c && c <= 'z' && s[0] == c-'a'+'A':
			s = s[1:]
		case c == 'k' && strings.HasPrefix(s, "\u212a"):
			s = s[len("\u212a"):]
		case c == 's' && strings.HasPrefix(s, "\u017f"):
			s = s[len("\u017f"):]
		default:
			return false
		}
	}
	return true
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
