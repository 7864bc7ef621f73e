package telemetry

import (
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

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

// A series is the labels of one metric data point: the call's cohort,
// provider and model labels, and what the instrument adds. Each field has
// few values (see providerLabel, MaxModels; the rest are names of the
// engine), so a process records few series; Telemetry.options keeps the
// measurement options of each, so that recording a measurement builds no
// attribute set.
type series struct {
	// op adds gen_ai.operation.name "chat" (the GenAI client metrics).
	op bool
	// cohort, provider and model are dynretry.cohort, gen_ai.provider.name
	// and gen_ai.request.model; a model of "" is left out.
	cohort, provider, model string
	// class is dynretry.class; "" is left out.
	class string
	// key, when not "", adds the label key with the value value.
	key   attribute.Key
	value string
}

// set returns the attribute set of s.
func (s series) set() attribute.Set {
	kvs := make([]attribute.KeyValue, 0, 6)
	kvs = append(kvs, keyCohort.String(s.cohort), KeyGenAIProvider.String(s.provider))
	if s.op {
		kvs = append(kvs, KeyGenAIOperation.String(OperationChat))
	}
	if s.model != "" {
		kvs = append(kvs, KeyGenAIRequestModel.String(s.model))
	}
	if s.class != "" {
		kvs = append(kvs, keyClass.String(s.class))
	}
	if s.key != "" {
		kvs = append(kvs, s.key.String(s.value))
	}
	return attribute.NewSet(kvs...)
}

// seriesOptions are the measurement options of one series, for counters
// and for histograms.
type seriesOptions struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

// maxSeries bounds the series whose options are kept: beyond it (which
// the bounded labels should never reach), options are built per
// measurement.
const maxSeries = 4096

// seriesCache keeps the options of up to maxSeries series. The zero value
// is ready to use; it is safe for concurrent use.
type seriesCache struct {
	m sync.Map // series → *seriesOptions
	n atomic.Int64
}

// options returns the measurement options of s.
func (c *seriesCache) options(s series) *seriesOptions {
	if o, ok := c.m.Load(s); ok {
		return o.(*seriesOptions)
	}
	opt := metric.WithAttributeSet(s.set())
	o := &seriesOptions{add: []metric.AddOption{opt}, record: []metric.RecordOption{opt}}
	if c.n.Add(1) <= maxSeries {
		if prev, loaded := c.m.LoadOrStore(s, o); loaded {
			return prev.(*seriesOptions)
		}
	}
	return o
}
