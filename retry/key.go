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
	"sync"
	"unicode/utf8"
)

// A Key names one rate limit: the calls that share a provider's bucket.
type Key struct {
	Provider Provider
	Model    string
	// Credential identifies the API key, as Credentials.ID makes it;
	// never the key itself.
	Credential string
}

// String renders the key as provider/model/credential.
func (k Key) String() string {
	return string(k.Provider) + "/" + k.Model + "/" + k.Credential
}

// CredentialScope returns the key of k's credential: the provider and the
// credential, without a model. A Store keeps there what holds every limit
// of the credential (a block for billing or credits).
func (k Key) CredentialScope() Key {
	return Key{Provider: k.Provider, Credential: k.Credential}
}

// maxKeyBody is the most of a request body RequestKey and RequestTokens read.
const maxKeyBody = 4 << 20

// RequestKey derives the limit key of an HTTP request to an LLM API: the
// provider from the host (then the path and headers for unknown hosts),
// the model from a Gemini path (models/{model}:…) or else the first
// "model" key of the JSON body, and the credential from the Authorization
// bearer token, x-api-key, x-goog-api-key or api-key header, or else the
// key query parameter (Gemini), named by CredentialID. The body is read
// through req.GetBody, never req.Body, and only about as far as the model
// (what was read is scanned each time it has doubled); without GetBody the
// model stays unknown. It is shorthand for
// (*Credentials)(nil).RequestKey(req).
func RequestKey(req *http.Request) Key { return (*Credentials)(nil).RequestKey(req) }

// requestCredential returns the API key a request carries, or "".
func requestCredential(req *http.Request) string {
	cred := strings.TrimSpace(strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
	for _, h := range []string{"X-Api-Key", "X-Goog-Api-Key", "Api-Key"} {
		if cred == "" {
			cred = req.Header.Get(h)
		}
	}
	if cred == "" && req.URL.RawQuery != "" {
		cred = req.URL.Query().Get("key") // Gemini also takes ?key=
	}
	return cred
}

// requestModel returns the model a request names, or "".
func requestModel(req *http.Request) string {
	if _, rest, ok := strings.Cut(req.URL.Path, "/models/"); ok {
		model, _, _ := strings.Cut(rest, ":")
		return modelName([]byte(model))
	}
	var model string
	readBody(req, func(body []byte, whole bool) bool {
		model = jsonModel(body) // a value found whole is the same in the whole body
		return model != "" || whole
	})
	return model
}

// RequestTokens estimates the tokens of an HTTP request to an LLM API from
// its JSON body (see EstimateTokens), read through req.GetBody; it returns
// 0 without GetBody.
func RequestTokens(req *http.Request) int64 {
	var n int64
	readBody(req, func(body []byte, whole bool) bool {
		if whole {
			n = EstimateTokens(body)
		}
		return whole
	})
	return n
}

// bodies recycles the buffers request bodies are read into.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads req's body through GetBody, if it has one of at most
// maxKeyBody bytes, and calls f with what was read so far and whether that
// is the whole body — after the first read, then each time what was read
// has doubled, and at the end — until f returns true: the body is read
// only about as far as f needs. f must not keep the slice.
func readBody(req *http.Request, f func(body []byte, whole bool) bool) {
	if req.GetBody == nil || req.ContentLength > maxKeyBody {
		return
	}
	rc, err := req.GetBody()
	if err != nil {
		return
	}
	defer rc.Close()
	buf := bodies.Get().(*bytes.Buffer)
	defer bodies.Put(buf)
	buf.Reset()
	var r io.Reader = rc
	if req.ContentLength < 0 { // unknown: bound it
		r = io.LimitReader(rc, maxKeyBody)
	}
	for next := 1; ; { // f sees the body again when it has doubled: linear however small the reads
		if buf.Available() < bytes.MinRead {
			buf.Grow(max(bytes.MinRead, buf.Len()))
		}
		b := buf.AvailableBuffer()
		n, err := r.Read(b[:cap(b)])
		buf.Write(b[:n])
		whole := err == io.EOF
		if err != nil && !whole {
			return
		}
		if whole || buf.Len() >= next {
			if f(buf.Bytes(), whole) || whole {
				return
			}
			next = 2 * buf.Len()
		}
	}
}

// jsonModel returns the string value of the first "model" key in a JSON
// body, or "". It scans rather than parses: request bodies are large and
// this runs for every request.
func jsonModel(body []byte) string {
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(`"model"`))
		if j < 0 {
			return ""
		}
		p := i + j + len(`"model"`)
		i = p
		if q := i - len(`"model"`); q > 0 && body[q-1] == '\\' {
			continue // an escaped quote inside a string
		}
		p = skipSpace(body, p)
		if p >= len(body) || body[p] != ':' {
			continue // "model" was a value, not a key
		}
		p = skipSpace(body, p+1)
		if p >= len(body) || body[p] != '"' {
			return ""
		}
		end := bytes.IndexByte(body[p+1:], '"')
		if end < 0 {
			return ""
		}
		v := body[p+1 : p+1+end]
		if bytes.IndexByte(v, '\\') < 0 {
			return modelName(v)
		}
		var s string // escapes: let encoding/json read the whole string
		dec := json.NewDecoder(bytes.NewReader(body[p:]))
		if dec.Decode(&s) != nil {
			return ""
		}
		return modelName([]byte(s))
	}
}

// Model names cost bounded memory whatever the requests say: a name longer
// than maxModelLen is named by its first bytes and a hash of the whole (so
// distinct names stay distinct), and at most maxModels names of at most
// maxInternLen bytes are interned.
const (
	maxModelLen  = 256
	maxInternLen = 128
	maxModels    = 1024
)

// models interns model names: a process uses a few, on every request.
var models struct {
	sync.RWMutex
	m map[string]string
}

// modelName returns b as a model name: interned when short and among the
// first maxModels, shortened when longer than maxModelLen.
func modelName(b []byte) string {
	if len(b) > maxModelLen {
		sum := sha256.Sum256(b)
		return truncate(string(b[:68]), 64) + "#" + hex.EncodeToString(sum[:8]) // truncate keeps UTF-8 whole
	}
	if len(b) > maxInternLen {
		return string(b)
	}
	models.RLock()
	s, ok := models.m[string(b)]
	models.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	models.Lock()
	if models.m == nil {
		models.m = make(map[string]string)
	}
	if len(models.m) < maxModels {
		models.m[s] = s
	}
	models.Unlock()
	return s
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func requestProvider(req *http.Request) Provider {
	if p := ProviderForHost(req.URL.Host); p != Generic {
		return p
	}
	h, path := req.Header, req.URL.Path
	switch {
	case h.Get("Anthropic-Version") != "" || strings.HasSuffix(path, "/messages"):
		return Anthropic
	case h.Get("X-Goog-Api-Key") != "" || strings.Contains(path, ":generateContent") || strings.Contains(path, ":streamGenerateContent"):
		return Gemini
	case h.Get("Api-Key") != "":
		return Azure
	}
	return Generic
}

// mediaTokens is what EstimateTokens counts for one image, audio or file
// part: providers charge media by size (OpenAI 85–1,105 tokens for an
// image, Anthropic up to about 1,600), not by the bytes of its encoding.
const mediaTokens = 1000

// EstimateTokens estimates the tokens a provider's rate limiter charges for
// a JSON request body, the way providers document it: one token per four
// characters of text (every string under "content", "text", "system",
// "input", "prompt" or "parts"), rounded up; mediaTokens for each media part
// inside them ("image_url", "image", "source", "inline_data"/"inlineData",
// "file_data"/"fileData", "input_audio": its base64 data is not text); plus
// the output allowance (max_tokens, max_completion_tokens, max_output_tokens
// or maxOutputTokens). It returns 0 for a body that is not JSON.
func EstimateTokens(body []byte) int64 {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return 0
	}
	var chars, media, out int64
	var walk func(v any, textual bool)
	walk = func(v any, textual bool) {
		switch x := v.(type) {
		case string:
			if textual {
				chars += int64(utf8.RuneCountInString(x))
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
				case "content", "text", "system", "input", "prompt", "parts":
					walk(e, true)
				case "image_url", "image", "source", "inline_data", "inlineData", "file_data", "fileData", "input_audio":
					if textual {
						media++
					} else {
						walk(e, false)
					}
				default:
					walk(e, textual && k != "type" && k != "role")
				}
			}
		}
	}
	walk(v, false)
	return satAdd((chars+3)/4, satMul(media, mediaTokens), out)
}

// satAdd adds non-negative numbers, saturating rather than wrapping around.
func satAdd(xs ...int64) int64 {
	var sum int64
	for _, x := range xs {
		if x > math.MaxInt64-sum {
			return math.MaxInt64
		}
		sum += x
	}
	return sum
}

// satMul multiplies non-negative numbers, saturating.
func satMul(a, b int64) int64 {
	if b != 0 && a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}
