package telemetry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/autopack/dynretry/telemetry"

// DefaultServiceName is the resource's service.name when neither
// Options.ServiceName nor OTEL_SERVICE_NAME gives one.
const DefaultServiceName = "dynretry"

// DelayBuckets are the bucket boundaries of MetricDelay, in seconds.
var DelayBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300}

// Options says where telemetry goes. The zero Options is valid: spans and
// metrics are recorded and go nowhere. The exporters themselves are built
// elsewhere (package telemetry/export: the standard OTEL_* variables, a
// trace file, Prometheus), so that this package compiles none of them.
//
// Setup owns the exporters and readers it is given: Telemetry.Shutdown
// flushes and shuts them down, and a Setup that fails shuts them down too.
type Options struct {
	// ServiceName is the resource's service.name. Empty means
	// OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) when
	// set, else DefaultServiceName. Other resource attributes come from
	// OTEL_RESOURCE_ATTRIBUTES and the SDK.
	ServiceName string
	// SpanExporters receive each span synchronously as it ends, so none is
	// dropped (a trace file: export.TraceFile; tests:
	// tracetest.NewInMemoryExporter).
	SpanExporters []sdktrace.SpanExporter
	// BatchSpanExporters receive spans in batches, from a goroutine of
	// their own (network exporters: export.FromEnv's).
	BatchSpanExporters []sdktrace.SpanExporter
	// MetricReaders read the metrics (export.Prometheus, export.FromEnv's,
	// tests: sdkmetric.NewManualReader).
	MetricReaders []sdkmetric.Reader
	// CoordinationDegraded, when not nil, reports whether the shared pacing
	// store is degraded (answering from local state): the gauge
	// MetricCoordinationDegraded reads it at each collection, and attempt
	// spans carry AttrCoordination. nil means no shared store: neither.
	CoordinationDegraded func() bool
}

// shutdown shuts down every exporter and reader of o, for a Setup that
// fails before a provider owns them.
func (o Options) shutdown(ctx context.Context) error {
	var errs []error
	for _, e := range slices.Concat(o.SpanExporters, o.BatchSpanExporters) {
		errs = append(errs, e.Shutdown(ctx))
	}
	for _, r := range o.MetricReaders {
		errs = append(errs, r.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// Telemetry holds the providers and instruments Setup built. Its methods are
// safe for concurrent use. A nil *Telemetry records nothing: StartCall and
// EndCall still carry the CallInfo, and Observer returns an observer that
// does nothing.
type Telemetry struct {
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	tracer trace.Tracer
	// coordinated reports that a shared pacing store is in use.
	coordinated bool

	attempts metric.Int64Counter
	calls    metric.Int64Counter
	giveups  metric.Int64Counter
	delay    metric.Float64Histogram

	shutdownOnce sync.Once
	shutdownErr  error
}

// Setup builds a TracerProvider and a MeterProvider with the exporters and
// readers of o. It never sets the global providers. Call Shutdown to flush
// them. On error, every exporter and reader of o is shut down.
func Setup(ctx context.Context, o Options) (*Telemetry, error) {
	res, err := newResource(ctx, o.ServiceName)
	if err != nil {
		return nil, errors.Join(err, o.shutdown(ctx))
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	for _, exp := range o.SpanExporters {
		tpOpts = append(tpOpts, sdktrace.WithSyncer(exp))
	}
	for _, exp := range o.BatchSpanExporters {
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	for _, r := range o.MetricReaders {
		mpOpts = append(mpOpts, sdkmetric.WithReader(r))
	}
	t := &Telemetry{tp: sdktrace.NewTracerProvider(tpOpts...), mp: sdkmetric.NewMeterProvider(mpOpts...)}
	t.tracer = t.tp.Tracer(ScopeName)
	if err := t.instruments(o.CoordinationDegraded); err != nil {
		return nil, errors.Join(fmt.Errorf("telemetry: %w", err), t.Shutdown(ctx))
	}
	return t, nil
}

// newResource describes the service: the SDK's attributes, service.name
// DefaultServiceName, then OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES,
// then name when not empty; later ones win. Malformed environment values are
// skipped.
func newResource(ctx context.Context, name string) (*resource.Resource, error) {
	opts := []resource.Option{
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(DefaultServiceName)),
		resource.WithFromEnv(),
	}
	if name != "" {
		opts = append(opts, resource.WithAttributes(semconv.ServiceName(name)))
	}
	res, err := resource.New(ctx, opts...)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

func (t *Telemetry) instruments(degraded func() bool) error {
	m := t.mp.Meter(ScopeName)
	var errs [5]error
	t.attempts, errs[0] = m.Int64Counter(MetricAttempts, metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts sent, by cohort, class (failures only) and decision."))
	t.calls, errs[1] = m.Int64Counter(MetricCalls, metric.WithUnit("{call}"),
		metric.WithDescription("Calls ended, by cohort, final outcome and class (failures only)."))
	t.giveups, errs[2] = m.Int64Counter(MetricGiveups, metric.WithUnit("{call}"),
		metric.WithDescription("Calls the retry decision gave up on, by cohort and class."))
	t.delay, errs[3] = m.Float64Histogram(MetricDelay, metric.WithUnit("s"),
		metric.WithDescription("Delay chosen before each retry, by cohort and class."),
		metric.WithExplicitBucketBoundaries(DelayBuckets...))
	if degraded != nil {
		t.coordinated = true
		_, errs[4] = m.Int64ObservableGauge(MetricCoordinationDegraded,
			metric.WithDescription("1 while the shared pacing store is degraded (each process paces on local state), else 0."),
			metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
				var v int64
				if degraded() {
					v = 1
				}
				o.Observe(v)
				return nil
			}))
	}
	return errors.Join(errs[:]...)
}

// Shutdown flushes and shuts down the tracer and meter providers, and with
// them every exporter and reader. Calls after the first do nothing and
// return the first call's error.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.shutdownOnce.Do(func() {
		t.shutdownErr = errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
	})
	return t.shutdownErr
}

// TracerProvider returns the tracer provider Setup built (a no-op one for a
// nil Telemetry).
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t == nil {
		return noopTracerProvider
	}
	return t.tp
}

// MeterProvider returns the meter provider Setup built (a no-op one for a
// nil Telemetry).
func (t *Telemetry) MeterProvider() metric.MeterProvider {
	if t == nil {
		return noopMeterProvider
	}
	return t.mp
}
