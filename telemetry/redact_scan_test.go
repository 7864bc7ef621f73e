package telemetry

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"pgregory.net/rapid"
)

// redactByPattern is Redact without its pre-scan: the pattern run on every
// string.
func redactByPattern(s string) string {
	return secrets.ReplaceAllString(s, "${1}${2}"+Redacted)
}

// The pre-scan lets no credential through that the pattern alone would
// catch, also when (?i) folds a non-ASCII rune to a letter of the words.
func TestRedactFoldedWords(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"kelvin sign in token":   {"to\u212aen=" + canary, "to\u212aen=[REDACTED]"},
		"long s in secret":       {"client_\u017fecret: " + canary, "client_\u017fecret: [REDACTED]"},
		"long s in password":     {"pa\u017f\u017fword=" + canary, "pa\u017f\u017fword=[REDACTED]"},
		"kelvin sign in api key": {"api\u212aey: " + canary, "api\u212aey: [REDACTED]"},
		"upper case":             {"AUTHORIZATION: " + canary, "AUTHORIZATION: [REDACTED]"},
		"mixed case bearer":      {"BeArEr " + canary, "[REDACTED]"},
		"nothing to find":        {"rate_limited (HTTP 429): retrying in 1.2s (range 1s–1.5s), attempt 2 of at most 5", "rate_limited (HTTP 429): retrying in 1.2s (range 1s–1.5s), attempt 2 of at most 5"},
		"url":                    {"http://127.0.0.1:8080/v1/chat/completions", "http://127.0.0.1:8080/v1/chat/completions"},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, Redact(tc.in))
			assert.Equal(t, redactByPattern(tc.in), Redact(tc.in))
		})
	}
}

// Text for the property test is built of chunks: noise, a name, a
// separator, a value. The names are the words of secretWords and the
// pattern's other parts in several spellings (cases, the runes (?i) folds
// to k and s, cut short), so that most chunks come near a match.
var (
	redactNoise = []string{"", " ", "\t", "\n", ",", ";", "}", "\"", "'", ".", "..", "…", "*", "_", "-", "?", "&", "#",
		"abc", "x-", "max_", "openai_", "–", "µs", "é", "\xff", "https://h/v1?", "/v1/chat"}
	redactNames = []string{"sk-", "sk", "s", "k-", "AIza", "aiza", "AIz", "bearer", "Bearer", "BEARER", "beare",
		"key", "KEY", "Key", "ke", "\u212aey", "to\u212aen", "\u017fecret", "\u017f", "\u212a", "api", "API", "api_",
		"api-", "api ", "x-api-key", "apikey", "api_key", "authorization", "Authorization", "authorizatio", "secret",
		"SECRET", "secre", "password", "passwor", "pa\u017f\u017fword", "credential", "credentials", "CREDENTIAL",
		"credentia", "token", "tokens", "TOKEN", "toke", "max_tokens", "?key", "&key"}
	redactSeps   = []string{"", "=", ":", ": ", "\":\"", "\" : '", " ", "proj-", "ant-"}
	redactValues = []string{"", "CANARY7f3q", "abcdefgh", "ABCDEF123456", "…****…", "...", "x"}
)

// Redact with its pre-scan gives what the pattern alone gives on every
// chunk of a few noises, each name, separator and value.
func TestRedactScanEveryChunk(t *testing.T) {
	for _, noise := range []string{"", "a ", "x_", "é"} {
		for _, name := range redactNames {
			for _, sep := range redactSeps {
				for _, value := range redactValues {
					s := noise + name + sep + value
					if got, want := Redact(s), redactByPattern(s); got != want {
						t.Fatalf("Redact(%q) = %q, the pattern gives %q", s, got, want)
					}
				}
			}
		}
	}
}

// Redact with its pre-scan gives what the pattern alone gives, on text
// built from every part the pattern looks for, in any order.
func TestRedactScanMatchesPattern(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var b strings.Builder
		for range rapid.IntRange(1, 4).Draw(t, "chunks") {
			for _, set := range [][]string{redactNoise, redactNames, redactSeps, redactValues} {
				b.WriteString(rapid.SampledFrom(set).Draw(t, "part"))
			}
		}
		s := b.String()
		if got, want := Redact(s), redactByPattern(s); got != want {
			t.Fatalf("Redact(%q) = %q, the pattern gives %q", s, got, want)
		}
		if secrets.MatchString(s) && !mayHoldSecret(s) {
			t.Fatalf("the pattern matches %q, the pre-scan finds no word", s)
		}
	})
}

// FuzzRedact compares Redact with the pattern alone on arbitrary text.
func FuzzRedact(f *testing.F) {
	for _, s := range redactNames {
		f.Add(s + ": " + canary)
	}
	f.Add("Authorization: Bearer " + fakeOpenAIKey)
	f.Add("to\u212aen=" + canary)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Redact(s), redactByPattern(s); got != want {
			t.Fatalf("Redact(%q) = %q, the pattern gives %q", s, got, want)
		}
	})
}
