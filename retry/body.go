package retry

import (
	"encoding/json"
	"strconv"
	"strings"
)

// maxBody is how much of an error body the classifier reads.
const maxBody = 64 << 10

// errorBody holds the fields of a provider's error body that matter for
// classification, from any of the dialects:
//
//	OpenAI, Azure, Groq, gateways: {"error":{"message","type","code","param"}}
//	Anthropic:  {"type":"error","error":{"type","message","details":{"error_code"}}}
//	Gemini:     {"error":{"code","message","status","details":[QuotaFailure, RetryInfo]}}
//	Vertex:     the Gemini shape, possibly wrapped in a JSON array
//	OpenRouter: {"error":{"message","code","metadata":{"raw"}}}
//	Bedrock:    {"message": ...} with the type in the x-amzn-ErrorType header
type errorBody struct {
	envelope string   // top-level "type" (Anthropic: "error")
	message  string   // error.message, or a top-level message
	kind     string   // error.type
	code     string   // error.code, as text
	status   string   // error.status (Gemini: RESOURCE_EXHAUSTED, UNAVAILABLE…)
	detail   string   // error.details.error_code (Anthropic)
	upstream string   // error.metadata.raw (OpenRouter)
	quotaIDs []string // QuotaFailure violations' quotaId (Gemini)
	// retryDelay is RetryInfo.retryDelay as sent ("37s", or seconds/nanos).
	retryDelay json.RawMessage
}

// parseBody extracts errorBody from b. It never fails: whatever cannot be
// read is left empty.
func parseBody(b []byte) *errorBody {
	var eb errorBody
	if len(b) > maxBody {
		b = b[:maxBody]
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		eb.message = strings.TrimSpace(string(b))
		return &eb
	}
	if arr, ok := v.([]any); ok && len(arr) > 0 { // Vertex wraps errors in an array
		v = arr[0]
	}
	top, _ := v.(map[string]any)
	eb.envelope = str(top["type"])
	eb.message = str(top["message"])
	switch e := top["error"].(type) {
	case string:
		eb.message = e
	case map[string]any:
		if m := str(e["message"]); m != "" {
			eb.message = m
		}
		eb.kind = str(e["type"])
		eb.code = str(e["code"])
		eb.status = str(e["status"])
		if d, ok := e["details"].(map[string]any); ok {
			eb.detail = str(d["error_code"])
		}
		if md, ok := e["metadata"].(map[string]any); ok {
			eb.upstream = str(md["raw"])
		}
		if ds, ok := e["details"].([]any); ok {
			eb.readDetails(ds)
		}
	}
	return &eb
}

// readDetails reads google.rpc error details.
func (eb *errorBody) readDetails(ds []any) {
	for _, d := range ds {
		m, _ := d.(map[string]any)
		t := str(m["@type"])
		switch {
		case strings.HasSuffix(t, "google.rpc.RetryInfo"):
			eb.retryDelay, _ = json.Marshal(m["retryDelay"])
		case strings.HasSuffix(t, "google.rpc.QuotaFailure"):
			vs, _ := m["violations"].([]any)
			for _, v := range vs {
				vm, _ := v.(map[string]any)
				if id := str(vm["quotaId"]); id != "" {
					eb.quotaIDs = append(eb.quotaIDs, id)
				}
			}
		}
	}
}

// text is every free-text field, lower-cased, for phrase matching.
func (eb *errorBody) text() string {
	return strings.ToLower(strings.Join([]string{eb.message, eb.kind, eb.code, eb.status, eb.detail, eb.upstream}, " "))
}

// str renders a JSON scalar as text; other values give "".
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}
