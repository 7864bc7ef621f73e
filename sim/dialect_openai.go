package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// openAIDialect is the OpenAI chat completions API: POST /v1/chat/completions.
type openAIDialect struct{}

// openAIOrg is the organization named in rate-limit messages.
const openAIOrg = "org-sim"

type openAIRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	MaxTokens           int  `json:"max_tokens"`
	MaxCompletionTokens int  `json:"max_completion_tokens"`
	Stream              bool `json:"stream"`
}

func (openAIDialect) parse(body []byte) (*call, error) {
	var req openAIRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("We could not parse the JSON body of your request. (%v)", err)
	}
	var texts []string
	for _, m := range req.Messages {
		texts = append(texts, contentTexts(m.Content)...)
	}
	return &call{
		model:        req.Model,
		stream:       req.Stream,
		inputTokens:  EstimateInputTokens(texts...),
		outputTokens: outputTokens(req.MaxCompletionTokens, req.MaxTokens),
	}, nil
}

func (openAIDialect) dims() []dimension { return []dimension{dimRequests, dimTokens} }

// headers sets x-request-id and x-ratelimit-{limit,remaining,reset}-{requests,tokens};
// reset is the time until the bucket is full, as a Go duration.
func (openAIDialect) headers(h http.Header, dims []dimState, id int64, _ time.Time) {
	h.Set("x-request-id", fmt.Sprintf("req_sim%08d", id))
	for _, d := range dims {
		name := "requests"
		if d.dim == dimTokens {
			name = "tokens"
		}
		h.Set("x-ratelimit-limit-"+name, strconv.Itoa(d.limit))
		h.Set("x-ratelimit-remaining-"+name, strconv.Itoa(d.remaining))
		h.Set("x-ratelimit-reset-"+name, formatWait(d.reset))
	}
}

type openAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (openAIDialect) fail(w http.ResponseWriter, f failure) {
	status, e := openAIFailure(w.Header(), f)
	_ = writeJSON(w, status, struct {
		Error openAIError `json:"error"`
	}{e})
}

// openAIFailure returns the status and error object for f, setting hint
// headers on h.
func openAIFailure(h http.Header, f failure) (int, openAIError) {
	code := func(s string) *string { return &s }
	per := "requests per min (RPM)"
	kind := "requests"
	if f.dim == dimTokens {
		per, kind = "tokens per min (TPM)", "tokens"
	}
	switch f.reason {
	case ReasonRateLimited:
		msg := fmt.Sprintf("Rate limit reached for %s in organization %s on %s: Limit %d, Used %d, Requested %d.",
			f.model, openAIOrg, per, f.limit, f.used, f.requested)
		if d, ok := statedWait(f.hint, f.wait); ok {
			msg += " Please try again in " + formatWait(d) + "."
		}
		setHintHeaders(h, f.hint, f.wait, f.now, true)
		return http.StatusTooManyRequests, openAIError{Message: msg, Type: kind, Code: code("rate_limit_exceeded")}
	case ReasonTooLarge:
		msg := fmt.Sprintf("Request too large for %s in organization %s on %s: Limit %d, Requested %d. "+
			"The input or output tokens must be reduced in order to run successfully.",
			f.model, openAIOrg, per, f.limit, f.requested)
		return http.StatusTooManyRequests, openAIError{Message: msg, Type: kind, Code: code("rate_limit_exceeded")}
	case ReasonQuota:
		return http.StatusTooManyRequests, openAIError{
			Message: "You exceeded your current quota, please check your plan and billing details. " +
				"For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
			Type: "insufficient_quota", Code: code("insufficient_quota"),
		}
	case ReasonOverloaded:
		return orDefault(f.status, http.StatusServiceUnavailable), openAIError{
			Message: "The engine is currently overloaded, please try again later.", Type: "server_error",
		}
	case ReasonServerError:
		return http.StatusInternalServerError, openAIError{
			Message: "The server had an error while processing your request. Sorry about that!", Type: "server_error",
		}
	}
	e := openAIError{Message: f.message, Type: "invalid_request_error"}
	if f.status == http.StatusUnauthorized {
		e.Message = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
	}
	return f.status, e
}

// orDefault returns status, or def when status is zero.
func orDefault(status, def int) int {
	if status == 0 {
		return def
	}
	return status
}

type openAIMessage struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
	Refusal *string `json:"refusal"`
}

type openAIChoice struct {
	Index        int            `json:"index"`
	Message      *openAIMessage `json:"message,omitempty"`
	Delta        *openAIMessage `json:"delta,omitempty"`
	Logprobs     *struct{}      `json:"logprobs"`
	FinishReason *string        `json:"finish_reason"`
}

type openAIUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type openAICompletion struct {
	ID                string         `json:"id"`
	Object            string         `json:"object"`
	Created           int64          `json:"created"`
	Model             string         `json:"model"`
	Choices           []openAIChoice `json:"choices"`
	Usage             *openAIUsage   `json:"usage"`
	SystemFingerprint string         `json:"system_fingerprint"`
}

// reply writes a chat completion, or when streaming a role chunk, one
// chunk per reply piece, a finish chunk, a usage chunk (choices empty) and
// "data: [DONE]".
func (openAIDialect) reply(w http.ResponseWriter, c *call, now time.Time, cut bool) error {
	usage := &openAIUsage{c.inputTokens, c.outputTokens, c.inputTokens + c.outputTokens}
	base := openAICompletion{
		ID:                fmt.Sprintf("chatcmpl-sim%08d", c.id),
		Object:            "chat.completion",
		Created:           now.Unix(),
		Model:             c.model,
		SystemFingerprint: "fp_sim",
	}
	stop, text := "stop", ReplyText
	if !c.stream {
		base.Choices = []openAIChoice{{
			Message:      &openAIMessage{Role: "assistant", Content: &text},
			FinishReason: &stop,
		}}
		base.Usage = usage
		return writeJSON(w, http.StatusOK, base)
	}

	s := startSSE(w)
	chunk := func(delta openAIMessage, finish *string) openAICompletion {
		ch := base
		ch.Object = "chat.completion.chunk"
		ch.Choices = []openAIChoice{{Delta: &delta, FinishReason: finish}}
		return ch
	}
	empty := ""
	s.event("", chunk(openAIMessage{Role: "assistant", Content: &empty}, nil))
	for i, piece := range replyPieces {
		if cut && i == len(replyPieces)/2 {
			return s.err
		}
		s.event("", chunk(openAIMessage{Content: &piece}, nil))
	}
	s.event("", chunk(openAIMessage{}, &stop))
	last := base
	last.Object = "chat.completion.chunk"
	last.Choices = []openAIChoice{}
	last.Usage = usage
	s.event("", last)
	s.event("", "[DONE]")
	return s.err
}
