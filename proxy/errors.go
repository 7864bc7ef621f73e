package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/telemetry"
)

// refuse answers a request the proxy does not forward.
func (p *Proxy) refuse(w http.ResponseWriter, rt routeTo, bad *refusal) {
	h := w.Header()
	h.Set(HeaderCohort, CohortNone)
	h.Set("X-Should-Retry", "false")
	if bad.status == http.StatusMethodNotAllowed {
		h.Set("Allow", allow)
	}
	setFailure(h, retry.InvalidRequest, 0, bad.msg)
	p.log.Debug("dynretry proxy: request refused", "status", bad.status, "reason", clean(bad.msg))
	writeError(w, rt.name, bad.status, retry.InvalidRequest, "dynretry proxy: "+clean(bad.msg))
}

// setFailure sets the headers of a failed call.
func setFailure(h http.Header, class retry.Class, attempts int, reason string) {
	h.Set(HeaderClass, string(class))
	h.Set(HeaderAttempts, strconv.Itoa(attempts))
	h.Set(HeaderReason, ascii(clean(reason)))
}

// maxReason is the longest X-Dynretry-Reason, in bytes.
const maxReason = 512

// clean returns s redacted, on one line, at most maxReason bytes.
func clean(s string) string {
	s = strings.Join(strings.Fields(telemetry.Redact(s)), " ")
	if len(s) > maxReason {
		cut := maxReason
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// ascii replaces what is not printable ASCII in s, as a header value must
// be for every client to read it alike.
func ascii(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r == '–' || r == '—':
			b.WriteByte('-')
		case r == '…':
			b.WriteString("...")
		case r == 'µ' || r == 'μ':
			b.WriteByte('u')
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// statusOf is the status the proxy answers a call of class with when it has
// no response to return.
func statusOf(class retry.Class, route string) int {
	switch class {
	case retry.RateLimited, retry.QuotaExhausted:
		return http.StatusTooManyRequests
	case retry.Overloaded:
		if route == "anthropic" {
			return 529
		}
		return http.StatusServiceUnavailable
	case retry.Timeout:
		return http.StatusGatewayTimeout
	case retry.Canceled:
		return 499 // the client closed the request
	}
	return http.StatusBadGateway
}

// writeError writes an error in the JSON shape of the route's API (OpenAI's
// for an unknown route), so that the client's SDK reports msg as the
// provider's message.
func writeError(w http.ResponseWriter, route string, status int, class retry.Class, msg string) {
	var body any
	switch route {
	case "anthropic":
		body = map[string]any{"type": "error", "error": map[string]any{"type": anthropicType(status), "message": msg}}
	case "gemini":
		body = map[string]any{"error": map[string]any{"code": status, "message": msg, "status": geminiStatus(status)}}
	default:
		body = map[string]any{"error": map[string]any{"message": msg, "type": openAIType(status), "param": nil, "code": "dynretry_" + string(class)}}
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func openAIType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limit_exceeded"
	case status < 500:
		return "invalid_request_error"
	}
	return "server_error"
}

func anthropicType(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case 529, http.StatusServiceUnavailable:
		return "overloaded_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	}
	if status < 500 {
		return "invalid_request_error"
	}
	return "api_error"
}

func geminiStatus(status int) string {
	switch status {
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusMethodNotAllowed, http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	case 499:
		return "CANCELLED"
	}
	return "INTERNAL"
}
