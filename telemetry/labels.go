package telemetry

import "sync"

// MaxModels is how many distinct models a Telemetry's metrics name in
// gen_ai.request.model: the first MaxModels it sees; every later one is
// counted as "_OTHER", so that a runner asking for many models cannot
// multiply the metrics' series without bound. Spans always carry the
// model as asked.
const MaxModels = 20

// modelLabels hands out the model label of the metrics, bounded by
// MaxModels. The zero value is ready to use; it is safe for concurrent use.
type modelLabels struct {
	mu   sync.Mutex
	seen map[string]bool
}

// label returns model if it is among the first MaxModels distinct models
// seen, "" for "", else ErrorTypeOther.
func (m *modelLabels) label(model string) string {
	if model == "" {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[model] {
		return model
	}
	if len(m.seen) >= MaxModels {
		return ErrorTypeOther
	}
	if m.seen == nil {
		m.seen = make(map[string]bool)
	}
	m.seen[model] = true
	return model
}

// providerLabel returns the gen_ai.provider.name of p for metrics: the
// convention's name of a provider dynretry knows, else ErrorTypeOther (an
// empty p included; see GenAIProvider).
func providerLabel(p string) string {
	if name, ok := GenAIProvider(p); ok {
		return name
	}
	return ErrorTypeOther
}
