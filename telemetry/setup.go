package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
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
// metrics are recorded and go nowhere.
type Options struct {
	// ServiceName is the resource's service.name. Empty means
	// OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) when
	// set, else DefaultServiceName. Other resource attributes come from
	// OTEL_RESOURCE_ATTRIBUTES and the SDK.
	ServiceName string
	// TraceFile, when not nil, receives every ended span as one JSON object
	// per line (the stdouttrace exporter, without pretty printing). Spans are
	// written synchronously as they end, so none is dropped and the file is
	// complete up to the last ended span; the writer must be safe to use
	// from the goroutines that end spans and is not closed by Shutdown.
	TraceFile io.Writer
	// OTLP, when true, exports traces (batched) and metrics (periodically)
	// with OTLP over HTTP, configured by the standard OTEL_EXPORTER_OTLP_*
	// environment variables (endpoint, headers, timeout, TLS).
	OTLP bool
	// Prometheus, when true, exports metrics through a Prometheus exporter
	// registered on a new registry of its own, served by MetricsHandler.
	Prometheus bool
	// SpanExporters are extra span exporters, each exported synchronously as
	// spans end (tests: tracetest.NewInMemoryExporter).
	SpanExporters []sdktrace.SpanExporter
	// MetricReaders are extra metric readers (tests:
	// sdkmetric.NewManualReader).
	MetricReaders []sdkmetric.Reader
}

// Telemetry holds the providers and instruments Setup built. Its methods are
// safe for concurrent use. A nil *Telemetry records nothing: StartCall and
// EndCall still carry the CallInfo, and Observer returns an observer that
// does nothing.
type Telemetry struct {
	tp      *sdktrace.TracerProvider
	mp      *sdkmetric.MeterProvider
	tracer  trace.Tracer
	handler http.Handler

	attempts metric.Int64Counter
	calls    metric.Int64Counter
	giveups  metric.Int64Counter
	delay    metric.Float64Histogram

	shutdownOnce sync.Once
	shutdownErr  error
}

// Setup builds a TracerProvider and a MeterProvider with the exporters o
// asks for. It never sets the global providers. Call Shutdown to flush
// them. On error, whatever was built is shut down.
func Setup(ctx context.Context, o Options) (*Telemetry, error) {
	res, err := newResource(ctx, o.ServiceName)
	if err != nil {
		return nil, err
	}
	var (
		tpOpts   = []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
		mpOpts   = []sdkmetric.Option{sdkmetric.WithResource(res)}
		cleanups []func(context.Context) error // exporters not yet owned by a provider
		t        = &Telemetry{}
	)
	fail := func(err error) (*Telemetry, error) {
		var errs []error
		for _, c := range cleanups {
			errs = append(errs, c(ctx))
		}
		return nil, errors.Join(append([]error{fmt.Errorf("telemetry: %w", err)}, errs...)...)
	}

	if o.TraceFile != nil {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(o.TraceFile))
		if err != nil {
			return fail(err)
		}
		tpOpts = append(tpOpts, sdktrace.WithSyncer(exp))
	}
	for _, exp := range o.SpanExporters {
		tpOpts = append(tpOpts, sdktrace.WithSyncer(exp))
	}
	for _, r := range o.MetricReaders {
		mpOpts = append(mpOpts, sdkmetric.WithReader(r))
	}
	if o.OTLP {
		texp, err := otlptracehttp.New(ctx)
		if err != nil {
			return fail(fmt.Errorf("otlp traces: %w", err))
		}
		cleanups = append(cleanups, texp.Shutdown)
		mexp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return fail(fmt.Errorf("otlp metrics: %w", err))
		}
		cleanups = append(cleanups, mexp.Shutdown)
		tpOpts = append(tpOpts, sdktrace.WithBatcher(texp))
		mpOpts = append(mpOpts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp)))
	}
	if o.Prometheus {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(
			otelprom.WithRegisterer(reg),
			otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
		)
		if err != nil {
			return fail(fmt.Errorf("prometheus: %w", err))
		}
		mpOpts = append(mpOpts, sdkmetric.WithReader(exp))
		t.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}

	t.tp = sdktrace.NewTracerProvider(tpOpts...)
	t.mp = sdkmetric.NewMeterProvider(mpOpts...)
	cleanups = []func(context.Context) error{t.Shutdown}
	t.tracer = t.tp.Tracer(ScopeName)
	if err := t.instruments(); err != nil {
		return fail(err)
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

func (t *Telemetry) instruments() error {
	m := t.mp.Meter(ScopeName)
	var errs [4]error
	t.attempts, errs[0] = m.Int64Counter(MetricAttempts, metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts sent, by cohort, class (failures only) and decision."))
	t.calls, errs[1] = m.Int64Counter(MetricCalls, metric.WithUnit("{call}"),
		metric.WithDescription("Calls ended, by cohort, final outcome and class (failures only)."))
	t.giveups, errs[2] = m.Int64Counter(MetricGiveups, metric.WithUnit("{call}"),
		metric.WithDescription("Calls the retry decision gave up on, by cohort and class."))
	t.delay, errs[3] = m.Float64Histogram(MetricDelay, metric.WithUnit("s"),
		metric.WithDescription("Delay chosen before each retry, by cohort and class."),
		metric.WithExplicitBucketBoundaries(DelayBuckets...))
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

// MetricsHandler serves the Prometheus exposition of the metrics; nil
// unless Options.Prometheus was set.
func (t *Telemetry) MetricsHandler() http.Handler {
	if t == nil {
		return nil
	}
	return t.handler
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
