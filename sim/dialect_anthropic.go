package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// anthropicDialect is the Anthropic messages API: POST /v1/messages.
type anthropicDialect struct{}

// statusOverloaded is Anthropic's overload status, 529.
const statusOverloaded = 529

type anthropicRequest struct {
	Model    string          `json:"model"`
	System   json.RawMessage `json:"system"`
	Messages []struct {
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	MaxTokens int  `json:"max_tokens"`
	Stream    bool `json:"stream"`
}

func (anthropicDialect) parse(body []byte) (*call, error) {
	var req anthropicRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("invalid request body: %v", err)
	}
	var texts []string
	if len(req.System) > 0 {
		texts = contentTexts(req.System)
	}
	for _, m := range req.Messages {
		texts = append(texts, contentTexts(m.Content)...)
	}
	return &call{
		model:        req.Model,
		stream:       req.Stream,
		inputTokens:  EstimateInputTokens(texts...),
		outputTokens: outputTokens(req.MaxTokens),
	}, nil
}

func (anthropicDialect) dims() []dimension {
	return []dimension{dimRequests, dimInputTokens, dimOutputTokens}
}

// anthropicNames are the header and message names of the dimensions.
var anthropicNames = [numDims]string{
	dimRequests:     "requests",
	dimInputTokens:  "input-tokens",
	dimOutputTokens: "output-tokens",
}

// headers sets request-id and
// anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,remaining,reset};
// reset is when the bucket is full again, in RFC 3339 rounded up to the
// second.
func (anthropicDialect) headers(h http.Header, dims []dimState, id int64, now time.Time) {
	h.Set("request-id", anthropicRequestID(id))
	for _, d := range dims {
		prefix := "anthropic-ratelimit-" + anthropicNames[d.dim] + "-"
		h.Set(prefix+"limit", strconv.Itoa(d.limit))
		h.Set(prefix+"remaining", strconv.Itoa(d.remaining))
		h.Set(prefix+"reset", resetTime(now, d.reset))
	}
}

func anthropicRequestID(id int64) string { return fmt.Sprintf("req_sim%08d", id) }

type anthropicErrorBody struct {
	Type      string         `json:"type"`
	Error     anthropicError `json:"error"`
	RequestID string         `json:"request_id"`
}

type anthropicError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Details *struct {
		ErrorCode string `json:"error_code"`
	} `json:"details,omitempty"`
}

func (anthropicDialect) fail(w http.ResponseWriter, f failure) {
	status, e := anthropicFailure(w.Header(), f)
	_ = writeJSON(w, status, anthropicErrorBody{Type: "error", Error: e, RequestID: anthropicRequestID(f.id)})
}

// anthropicFailure returns the status and error object for f, setting hint
// headers on h.
func anthropicFailure(h http.Header, f failure) (int, anthropicError) {
	unit := map[dimension]string{
		dimRequests: "requests", dimInputTokens: "input tokens", dimOutputTokens: "output tokens",
	}[f.dim]
	switch f.reason {
	case ReasonRateLimited:
		setHintHeaders(h, f.hint, f.wait, f.now, false)
		return http.StatusTooManyRequests, anthropicError{
			Type: "rate_limit_error",
			Message: fmt.Sprintf("This request would exceed the rate limit for your organization of %s %s per minute.",
				thousands(f.limit), unit),
		}
	case ReasonTooLarge:
		return http.StatusRequestEntityTooLarge, anthropicError{
			Type: "request_too_large",
			Message: fmt.Sprintf("Request exceeds the maximum allowed number of %s per minute: limit %s, requested %s.",
				unit, thousands(f.limit), thousands(f.requested)),
		}
	case ReasonQuota:
		e := anthropicError{Type: "rate_limit_error", Message: "You have reached your monthly spend limit."}
		e.Details = &struct {
			ErrorCode string `json:"error_code"`
		}{"enforced_spend_limit_reached"}
		return http.StatusTooManyRequests, e
	case ReasonOverloaded:
		return orDefault(f.status, statusOverloaded), anthropicError{Type: "overloaded_error", Message: "Overloaded"}
	case ReasonServerError:
		return http.StatusInternalServerError, anthropicError{Type: "api_error", Message: "Internal server error"}
	}
	switch f.status {
	case http.StatusUnauthorized:
		return f.status, anthropicError{Type: "authentication_error", Message: "x-api-key header is required"}
	case http.StatusNotFound:
		return f.status, anthropicError{Type: "not_found_error", Message: "Not found"}
	}
	return f.status, anthropicError{Type: "invalid_request_error", Message: f.message}
}

type anthropicText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type anthropicUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

type anthropicMessage struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Role         string          `json:"role"`
	Model        string          `json:"model"`
	Content      []anthropicText `json:"content"`
	StopReason   *string         `json:"stop_reason"`
	StopSequence *string         `json:"stop_sequence"`
	Usage        anthropicUsage  `json:"usage"`
}

// reply writes a message, or when streaming the events message_start,
// content_block_start, one content_block_delta per reply piece,
// content_block_stop, message_delta (stop reason, output tokens) and
// message_stop.
func (anthropicDialect) reply(w http.ResponseWriter, c *call, _ time.Time, cut bool) error {
	endTurn := "end_turn"
	msg := anthropicMessage{
		ID:         fmt.Sprintf("msg_sim%08d", c.id),
		Type:       "message",
		Role:       "assistant",
		Model:      c.model,
		Content:    []anthropicText{{Type: "text", Text: ReplyText}},
		StopReason: &endTurn,
		Usage:      anthropicUsage{InputTokens: c.inputTokens, OutputTokens: c.outputTokens},
	}
	if !c.stream {
		return writeJSON(w, http.StatusOK, msg)
	}

	s := startSSE(w)
	start := msg
	start.Content, start.StopReason = []anthropicText{}, nil
	start.Usage.OutputTokens = 1
	s.event("message_start", map[string]any{"type": "message_start", "message": start})
	s.event("content_block_start", map[string]any{
		"type": "content_block_start", "index": 0, "content_block": anthropicText{Type: "text", Text: ""},
	})
	for i, piece := range replyPieces {
		if cut && i == len(replyPieces)/2 {
			return s.err
		}
		s.event("content_block_delta", map[string]any{
			"type": "content_block_delta", "index": 0, "delta": map[string]string{"type": "text_delta", "text": piece},
		})
	}
	s.event("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	s.event("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": endTurn, "stop_sequence": nil},
		"usage": map[string]int{"output_tokens": c.outputTokens},
	})
	s.event("message_stop", map[string]string{"type": "message_stop"})
	return s.err
}
