package retry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
)

// A Key names one rate limit: the calls that share a provider's bucket.
type Key struct {
	Provider Provider
	Model    string
	// Credential identifies the API key, as CredentialID makes it; never
	// the secret itself.
	Credential string
}

// String renders the key as provider/model/credential, the form used to
// name its state in a Store.
func (k Key) String() string {
	return string(k.Provider) + "/" + k.Model + "/" + k.Credential
}

// CredentialID returns a stable identifier for a secret that does not
// reveal it: the first 16 hex digits of its SHA-256. An empty secret gives
// "none".
func CredentialID(secret string) string {
	if secret == "" {
		return "none"
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:8])
}

// maxKeyBody is the most of a request body RequestKey reads.
const maxKeyBody = 4 << 20

// RequestKey derives the limit key and cost of an HTTP request to an LLM
// API: the provider from the host (then the path and headers for unknown
// hosts), the model from the JSON body's "model" or a Gemini path
// (models/{model}:…), the credential from the Authorization bearer token,
// x-api-key, x-goog-api-key or api-key header, and the tokens from the body
// (see EstimateTokens). The body is read through req.GetBody, never
// req.Body; without GetBody the model and tokens stay unknown.
func RequestKey(req *http.Request) (Key, Cost) {
	k := Key{Provider: requestProvider(req)}
	cred := strings.TrimSpace(strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
	for _, h := range []string{"x-api-key", "x-goog-api-key", "api-key"} {
		if cred == "" {
			cred = req.Header.Get(h)
		}
	}
	k.Credential = CredentialID(cred)
	if _, rest, ok := strings.Cut(req.URL.Path, "/models/"); ok {
		k.Model, _, _ = strings.Cut(rest, ":")
	}
	cost := Cost{Requests: 1}
	if req.GetBody != nil && req.ContentLength <= maxKeyBody {
		if rc, err := req.GetBody(); err == nil {
			body, _ := io.ReadAll(io.LimitReader(rc, maxKeyBody))
			rc.Close()
			var m struct {
				Model string `json:"model"`
			}
			if json.Unmarshal(body, &m) == nil && m.Model != "" {
				k.Model = m.Model
			}
			cost.Tokens = EstimateTokens(body)
		}
	}
	return k, cost
}

func requestProvider(req *http.Request) Provider {
	if p := ProviderForHost(req.URL.Host); p != Generic {
		return p
	}
	h, path := req.Header, req.URL.Path
	switch {
	case h.Get("anthropic-version") != "" || strings.HasSuffix(path, "/messages"):
		return Anthropic
	case h.Get("x-goog-api-key") != "" || strings.Contains(path, ":generateContent") || strings.Contains(path, ":streamGenerateContent"):
		return Gemini
	case h.Get("api-key") != "":
		return Azure
	}
	return Generic
}

// EstimateTokens estimates the tokens a provider's rate limiter charges for
// a JSON request body, the way providers document it: one token per four
// characters of text (every string under "content", "text", "system",
// "input" or "prompt"), rounded up, plus the output allowance (max_tokens,
// max_completion_tokens, max_output_tokens or maxOutputTokens). It returns
// 0 for a body that is not JSON.
func EstimateTokens(body []byte) int64 {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return 0
	}
	var chars, out int64
	var walk func(v any, textual bool)
	walk = func(v any, textual bool) {
		switch x := v.(type) {
		case string:
			if textual {
				chars += int64(len([]rune(x)))
			}
		case []any:
			for _, e := range x {
				walk(e, textual)
			}
		case map[string]any:
			for k, e := range x {
				switch k {
				case "max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens":
					if n, ok := e.(json.Number); ok {
						if i, err := n.Int64(); err == nil && i > 0 {
							out = max(out, i)
						}
					}
				case "content", "text", "system", "input", "prompt":
					walk(e, true)
				default:
					walk(e, textual && k != "type" && k != "role")
				}
			}
		}
	}
	walk(v, false)
	in := (chars + 3) / 4
	if out > math.MaxInt64-in { // saturate rather than wrap around
		return math.MaxInt64
	}
	return in + out
}
