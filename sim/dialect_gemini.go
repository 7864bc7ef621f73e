package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// geminiDialect is the Gemini API: POST /v1beta/models/{model}:generateContent.
// It sends no rate-limit state headers, as Gemini does not.
type geminiDialect struct{}

type geminiContent struct {
	Parts []struct {
		Text string `json:"text"`
	} `json:"parts"`
}

type geminiRequest struct {
	Contents          []geminiContent `json:"contents"`
	SystemInstruction *geminiContent  `json:"systemInstruction"`
	GenerationConfig  struct {
		MaxOutputTokens int `json:"maxOutputTokens"`
	} `json:"generationConfig"`
}

func (geminiDialect) parse(body []byte) (*call, error) {
	var req geminiRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("Invalid JSON payload received. %v", err)
	}
	var texts []string
	contents := req.Contents
	if req.SystemInstruction != nil {
		contents = append(contents, *req.SystemInstruction)
	}
	for _, c := range contents {
		for _, p := range c.Parts {
			texts = append(texts, p.Text)
		}
	}
	return &call{
		inputTokens:  EstimateInputTokens(texts...),
		outputTokens: outputTokens(req.GenerationConfig.MaxOutputTokens),
	}, nil
}

func (geminiDialect) dims() []dimension { return []dimension{dimRequests, dimTokens} }

func (geminiDialect) headers(http.Header, []dimState, int64, time.Time) {}

type geminiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []any  `json:"details,omitempty"`
}

type geminiQuotaFailure struct {
	Type       string           `json:"@type"`
	Violations []geminiQuotaHit `json:"violations"`
}

type geminiQuotaHit struct {
	QuotaMetric     string            `json:"quotaMetric"`
	QuotaID         string            `json:"quotaId"`
	QuotaDimensions map[string]string `json:"quotaDimensions"`
	QuotaValue      string            `json:"quotaValue"`
}

type geminiRetryInfo struct {
	Type       string `json:"@type"`
	RetryDelay string `json:"retryDelay"`
}

func (geminiDialect) fail(w http.ResponseWriter, f failure) {
	e := geminiFailure(w.Header(), f)
	_ = writeJSON(w, e.Code, struct {
		Error geminiError `json:"error"`
	}{e})
}

// geminiQuotaMessage is the message of every Gemini 429.
const geminiQuotaMessage = "You exceeded your current quota, please check your plan and billing details."

// geminiFailure returns the error object for f, setting hint headers on h.
func geminiFailure(h http.Header, f failure) geminiError {
	quota := func(metric, id string, value int) geminiQuotaFailure {
		return geminiQuotaFailure{
			Type: "type.googleapis.com/google.rpc.QuotaFailure",
			Violations: []geminiQuotaHit{{
				QuotaMetric:     "generativelanguage.googleapis.com/" + metric,
				QuotaID:         id,
				QuotaDimensions: map[string]string{"location": "global", "model": f.model},
				QuotaValue:      strconv.Itoa(value),
			}},
		}
	}
	switch f.reason {
	case ReasonRateLimited:
		v := quota("generate_content_requests", "GenerateRequestsPerMinutePerProjectPerModel", f.limit)
		if f.dim == dimTokens {
			v = quota("generate_content_tokens", "GenerateContentTokensPerMinutePerProjectPerModel", f.limit)
		}
		e := geminiError{Code: http.StatusTooManyRequests, Message: geminiQuotaMessage, Status: "RESOURCE_EXHAUSTED", Details: []any{v}}
		if d, ok := statedWait(f.hint, f.wait); ok {
			e.Message += " Please retry in " + protoDuration(d) + "."
			e.Details = append(e.Details, geminiRetryInfo{Type: "type.googleapis.com/google.rpc.RetryInfo", RetryDelay: protoDuration(d)})
		}
		setHintHeaders(h, f.hint, f.wait, f.now, false)
		return e
	case ReasonQuota:
		return geminiError{
			Code: http.StatusTooManyRequests, Message: geminiQuotaMessage, Status: "RESOURCE_EXHAUSTED",
			Details: []any{quota("generate_content_requests", "GenerateRequestsPerDayPerProjectPerModel", f.limit)},
		}
	case ReasonTooLarge:
		return geminiError{
			Code: http.StatusBadRequest, Status: "INVALID_ARGUMENT",
			Message: fmt.Sprintf("The request needs %d tokens per minute, more than the limit of %d.", f.requested, f.limit),
		}
	case ReasonOverloaded:
		return geminiError{
			Code: orDefault(f.status, http.StatusServiceUnavailable), Status: "UNAVAILABLE",
			Message: "The model is overloaded. Please try again later.",
		}
	case ReasonServerError:
		return geminiError{
			Code: http.StatusInternalServerError, Status: "INTERNAL",
			Message: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
		}
	}
	switch f.status {
	case http.StatusUnauthorized:
		return geminiError{
			Code: http.StatusForbidden, Status: "PERMISSION_DENIED",
			Message: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
		}
	case http.StatusNotFound:
		return geminiError{Code: f.status, Status: "NOT_FOUND", Message: f.message}
	}
	return geminiError{Code: f.status, Status: "INVALID_ARGUMENT", Message: f.message}
}

// reply writes a generateContent response.
func (geminiDialect) reply(w http.ResponseWriter, c *call, _ time.Time, _ bool) error {
	type part struct {
		Text string `json:"text"`
	}
	type content struct {
		Parts []part `json:"parts"`
		Role  string `json:"role"`
	}
	type candidate struct {
		Content      content `json:"content"`
		FinishReason string  `json:"finishReason"`
		Index        int     `json:"index"`
	}
	type usage struct {
		PromptTokenCount     int `json:"promptTokenCount"`
		CandidatesTokenCount int `json:"candidatesTokenCount"`
		TotalTokenCount      int `json:"totalTokenCount"`
	}
	return writeJSON(w, http.StatusOK, struct {
		Candidates    []candidate `json:"candidates"`
		UsageMetadata usage       `json:"usageMetadata"`
		ModelVersion  string      `json:"modelVersion"`
		ResponseID    string      `json:"responseId"`
	}{
		Candidates:    []candidate{{Content: content{Parts: []part{{ReplyText}}, Role: "model"}, FinishReason: "STOP"}},
		UsageMetadata: usage{c.inputTokens, c.outputTokens, c.inputTokens + c.outputTokens},
		ModelVersion:  c.model,
		ResponseID:    fmt.Sprintf("sim%08d", c.id),
	})
}
