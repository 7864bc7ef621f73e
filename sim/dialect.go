package sim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultOutputTokens is a request's output tokens when it sets no maximum
// (max_tokens, max_completion_tokens, generationConfig.maxOutputTokens).
const DefaultOutputTokens = 16

// EstimateInputTokens returns the input tokens the provider counts for a
// request whose message text (system prompt included) is texts: the total
// number of characters (Unicode code points) divided by 4, rounded up, and at
// least 1.
func EstimateInputTokens(texts ...string) int {
	n := 0
	for _, t := range texts {
		n += utf8.RuneCountInString(t)
	}
	return max(1, (n+3)/4)
}

// replyPieces is the reply text, in the pieces a stream sends.
var replyPieces = []string{"ok,", " this", " is", " a", " simulated", " reply."}

// ReplyText is the text of every successful reply.
var ReplyText = strings.Join(replyPieces, "")

// call is a parsed request.
type call struct {
	id           int64
	name         string // the CallHeader, if any
	credential   string
	model        string
	stream       bool
	inputTokens  int
	outputTokens int
}

// cost returns what c costs in dimension d.
func (c *call) cost(d dimension) float64 {
	switch d {
	case dimRequests:
		return 1
	case dimTokens:
		return float64(c.inputTokens + c.outputTokens)
	case dimInputTokens:
		return float64(c.inputTokens)
	case dimOutputTokens:
		return float64(c.outputTokens)
	}
	return 0
}

// outputTokens returns the first positive maximum, else DefaultOutputTokens.
func outputTokens(maxima ...int) int {
	for _, m := range maxima {
		if m > 0 {
			return m
		}
	}
	return DefaultOutputTokens
}

// failure describes an error response.
type failure struct {
	reason  Reason
	status  int // ReasonInvalid: 400, 401 or 404; ReasonOverloaded: 0 or the window's status
	message string
	model   string
	id      int64
	now     time.Time

	// Rate limits (ReasonRateLimited, ReasonTooLarge).
	dim       dimension
	limit     int
	used      int
	requested int
	wait      time.Duration
	hint      HintMode
}

// dialect is one provider's wire format.
type dialect interface {
	// parse reads the model, token counts and stream flag from a body.
	parse(body []byte) (*call, error)
	// dims lists the limit dimensions that apply, in header order.
	dims() []dimension
	// headers sets the request id and rate-limit headers; dims holds the
	// limited dimensions only.
	headers(h http.Header, dims []dimState, id int64, now time.Time)
	// fail writes an error response.
	fail(w http.ResponseWriter, f failure)
	// reply writes a success response. When cut, it flushes about half of
	// the stream and returns without finishing it. It returns the first
	// write error.
	reply(w http.ResponseWriter, c *call, now time.Time, cut bool) error
}

var (
	dialectOpenAI    dialect = openAIDialect{}
	dialectAnthropic dialect = anthropicDialect{}
	dialectGemini    dialect = geminiDialect{}
)

// route returns the dialect of path and the model it names (Gemini). When
// ok is false the dialect is still the one whose error shape fits best.
func route(path string) (d dialect, model string, ok bool) {
	switch path {
	case "/v1/chat/completions", "/chat/completions":
		return dialectOpenAI, "", true
	case "/v1/messages":
		return dialectAnthropic, "", true
	}
	for _, prefix := range []string{"/v1beta/models/", "/v1/models/"} {
		if rest, found := strings.CutPrefix(path, prefix); found {
			model, method, _ := strings.Cut(rest, ":")
			return dialectGemini, model, model != "" && method == "generateContent"
		}
	}
	if strings.HasPrefix(path, "/v1/messages") {
		return dialectAnthropic, "", false
	}
	return dialectOpenAI, "", false
}

// credentialOf returns the request's API key: the Authorization bearer
// token, else x-api-key, else x-goog-api-key, else the key query parameter.
func credentialOf(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	for _, name := range []string{"x-api-key", "x-goog-api-key"} {
		if v := r.Header.Get(name); v != "" {
			return v
		}
	}
	return r.URL.Query().Get("key")
}

// contentTexts returns the text of an OpenAI or Anthropic message content:
// a string, or an array of parts whose "text" fields are taken.
func contentTexts(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}
	}
	var parts []struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return nil
	}
	texts := make([]string, 0, len(parts))
	for _, p := range parts {
		texts = append(texts, p.Text)
	}
	return texts
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

// sse writes a server-sent event stream, flushing after each event. After
// the first write error it writes nothing more.
type sse struct {
	w   http.ResponseWriter
	err error
}

// startSSE writes the 200 header of an event stream.
func startSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return &sse{w: w}
}

// event writes one event; an empty name writes a data-only event. A string
// v is written as is; anything else as JSON.
func (s *sse) event(name string, v any) {
	if s.err != nil {
		return
	}
	var data []byte
	if str, ok := v.(string); ok {
		data = []byte(str)
	} else if data, s.err = json.Marshal(v); s.err != nil {
		return
	}
	var b strings.Builder
	if name != "" {
		b.WriteString("event: " + name + "\n")
	}
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\n\n")
	if _, s.err = s.w.Write([]byte(b.String())); s.err == nil {
		if f, ok := s.w.(http.Flusher); ok {
			f.Flush()
		}
	}
}
