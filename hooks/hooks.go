// Package hooks holds what the runner exposes to plugins — its LLM service,
// its error reporter, its HTTP transport and the startup host that plugins
// register with — and the adapters that put the dynretry engine into them.
//
// At startup the runner hands a Host to plugin.Register, which installs an
// LLM-service middleware (it evaluates the rollout flag per call, opens the
// call's span and keeps the call's retry summary), a transport for the SDK
// clients (treatment calls go through the engine; control calls keep the
// SDK's own retries and are only observed), and an error-reporter decorator
// (a failed call's report carries its class, attempts, waits, hint and
// reason).
package hooks

import (
	"context"
	"net/http"
)

// A Call is one LLM call of the runner.
type Call struct {
	// RunID names the run; it is the rollout's targeting key.
	RunID string
	// PhaseID names the phase within the run.
	PhaseID string
	// Role is the caller's role: builder, auditor, doctor.
	Role string
	// Provider is the API the call goes to: "openai", "anthropic", "gemini".
	Provider string
	// Model is the model asked.
	Model string
	// Attributes are what else the runner knows of the call and a flag rule
	// may target, e.g. {"codebase_size": 120000}: they join the rollout
	// flag's evaluation context (see EvaluationContext). Values should be
	// strings, numbers or booleans. Nil means none.
	Attributes map[string]any
}

// EvaluationContext returns the attributes the rollout flag is evaluated
// with, besides the run id (the targeting key): c.Attributes, then
// "provider", "model", "role" and "phase_id" from c's fields when not empty
// (these win over an attribute of the same name). The map is new.
func (c Call) EvaluationContext() map[string]any {
	m := make(map[string]any, len(c.Attributes)+4)
	for k, v := range c.Attributes {
		m[k] = v
	}
	for _, kv := range [...][2]string{{"provider", c.Provider}, {"model", c.Model}, {"role", c.Role}, {"phase_id", c.PhaseID}} {
		if kv[1] != "" {
			m[kv[0]] = kv[1]
		}
	}
	return m
}

// A Request is what the runner asks of a model.
type Request struct {
	System    string
	Prompt    string
	MaxTokens int
	// Stream asks for a streamed response (the runner's builder calls do).
	Stream bool
}

// A Response is a model's answer and its token usage.
type Response struct {
	Text string
	// Model is the model that answered, as the response names it ("" when
	// it does not).
	Model string
	// InputTokens and OutputTokens are the tokens the response reports (0
	// when it does not).
	InputTokens, OutputTokens int64
}

// LLMService is the runner's LLM service: one per executor, routing each
// call to a provider's client. Implementations must be safe for concurrent
// use.
type LLMService interface {
	Complete(ctx context.Context, call Call, req Request) (Response, error)
}

// LLMFunc adapts a function to the LLMService interface.
type LLMFunc func(ctx context.Context, call Call, req Request) (Response, error)

// Complete calls f.
func (f LLMFunc) Complete(ctx context.Context, call Call, req Request) (Response, error) {
	return f(ctx, call, req)
}

// An ErrorReport is what the runner's report_error receives.
type ErrorReport struct {
	Err       error
	RunID     string
	PhaseID   string
	Component string // e.g. "llm_service"
	Operation string // e.g. "complete"
	// Context is free-form data for the report; values are cut to 200
	// characters and secrets redacted when written.
	Context map[string]any
}

// ErrorReporter is the runner's error reporter. Report returns where the
// report was written, if anywhere. Implementations must be safe for
// concurrent use.
type ErrorReporter interface {
	Report(ctx context.Context, r ErrorReport) (path string, err error)
}

// ReporterFunc adapts a function to the ErrorReporter interface.
type ReporterFunc func(ctx context.Context, r ErrorReport) (string, error)

// Report calls f.
func (f ReporterFunc) Report(ctx context.Context, r ErrorReport) (string, error) { return f(ctx, r) }

// Host is what the runner offers plugins at startup: each method adds a
// wrapper around one of its parts, applied in registration order (the
// first registered is the innermost). The runner builds its parts after
// every plugin has registered.
type Host interface {
	WrapLLM(func(LLMService) LLMService)
	WrapErrorReporter(func(ErrorReporter) ErrorReporter)
	WrapTransport(func(http.RoundTripper) http.RoundTripper)
}
