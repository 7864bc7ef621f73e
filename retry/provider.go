package retry

import (
	"net/http"
	"strings"
)

// A Provider names an API dialect. It selects nothing by itself: the
// classifier reads every dialect's fields, and the provider is recorded in
// decisions and used to key shared rate limits.
type Provider string

// The providers whose responses the classifier knows.
const (
	OpenAI     Provider = "openai"
	Anthropic  Provider = "anthropic"
	Gemini     Provider = "gemini"
	Vertex     Provider = "vertex"
	Azure      Provider = "azure"
	OpenRouter Provider = "openrouter"
	Groq       Provider = "groq"
	Bedrock    Provider = "bedrock"
	// Generic is any other OpenAI-compatible gateway.
	Generic Provider = "generic"
)

// ProviderForHost returns the provider that serves host (a host name, with
// or without a port), or Generic.
func ProviderForHost(host string) Provider {
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	host = strings.ToLower(host)
	switch {
	case host == "api.openai.com":
		return OpenAI
	case host == "api.anthropic.com":
		return Anthropic
	case host == "generativelanguage.googleapis.com":
		return Gemini
	case strings.HasSuffix(host, "aiplatform.googleapis.com"):
		return Vertex
	case strings.HasSuffix(host, ".openai.azure.com"), strings.HasSuffix(host, ".cognitiveservices.azure.com"):
		return Azure
	case host == "openrouter.ai":
		return OpenRouter
	case host == "api.groq.com":
		return Groq
	case strings.HasPrefix(host, "bedrock-runtime.") || strings.HasPrefix(host, "bedrock."):
		return Bedrock
	}
	return Generic
}

// DetectProvider guesses the provider from a response's headers and parsed
// body. It returns Generic when nothing is distinctive.
func DetectProvider(h http.Header, b *errorBody) Provider {
	switch {
	case h.Get("x-amzn-ErrorType") != "" || h.Get("x-amzn-RequestId") != "":
		return Bedrock
	case hasPrefixHeader(h, "Anthropic-Ratelimit-") || b.envelope == "error":
		return Anthropic
	case b.status != "":
		return Gemini
	case h.Get("apim-request-id") != "" || h.Get("x-ms-region") != "":
		return Azure
	case b.upstream != "":
		return OpenRouter
	case h.Get("x-groq-region") != "":
		return Groq
	case h.Get("openai-processing-ms") != "" || h.Get("x-ratelimit-limit-requests") != "" || h.Get("x-ratelimit-remaining-tokens") != "":
		return OpenAI
	}
	return Generic
}

func hasPrefixHeader(h http.Header, prefix string) bool {
	for k := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), prefix) {
			return true
		}
	}
	return false
}
