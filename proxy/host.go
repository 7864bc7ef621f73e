package proxy

import (
	"net/http"

	"github.com/autopack/dynretry/hooks"
)

// host is the proxy's hooks.Host: the plugin registers its wrappers with
// it, as with a runner's, and the proxy applies them, the first registered
// innermost.
type host struct {
	llms       []func(hooks.LLMService) hooks.LLMService
	transports []func(http.RoundTripper) http.RoundTripper
}

// WrapLLM implements hooks.Host.
func (h *host) WrapLLM(w func(hooks.LLMService) hooks.LLMService) { h.llms = append(h.llms, w) }

// WrapTransport implements hooks.Host.
func (h *host) WrapTransport(w func(http.RoundTripper) http.RoundTripper) {
	h.transports = append(h.transports, w)
}

// WrapErrorReporter implements hooks.Host. The proxy reports no errors
// itself: a failed call's response carries its class, attempts and reason
// (the X-Dynretry-* headers) for the runner's own reporter.
func (h *host) WrapErrorReporter(func(hooks.ErrorReporter) hooks.ErrorReporter) {}

// llm returns s with every LLM-service wrapper applied.
func (h *host) llm(s hooks.LLMService) hooks.LLMService {
	for _, w := range h.llms {
		s = w(s)
	}
	return s
}

// transport returns rt with every transport wrapper applied.
func (h *host) transport(rt http.RoundTripper) http.RoundTripper {
	for _, w := range h.transports {
		rt = w(rt)
	}
	return rt
}
