package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/semconv/v1.41.0/genaiconv"
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

// DurationBuckets are the bucket boundaries of MetricOperationDuration, in
// seconds: the GenAI conventions' advice.
var DurationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}

// TokenBuckets are the bucket boundaries of MetricTokenUsage: the GenAI
// conventions' advice.
var TokenBuckets = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}

// WastedBuckets are the bucket boundaries of MetricCallWasted: one per
// whole number up to 10, so that the count of calls with each number of
// wasted attempts up to 10 is exact.
var WastedBuckets = []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 50, 100}

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
	// their own (network exporters: export.FromEnv's), through the SDK's
	// batch span processor (OTEL_BSP_* apply), which a buffer feeds 200ms
	// after the first span waiting ended, or sooner when 512 are waiting:
	// a span that ends costs its caller a mutex, not a goroutine's wake.
	BatchSpanExporters []sdktrace.SpanExporter
	// MetricReaders read the metrics (export.Prometheus, export.FromEnv's,
	// tests: sdkmetric.NewManualReader).
	MetricReaders []sdkmetric.Reader
	// PrometheusListen, when not empty, is an address ("127.0.0.1:9464",
	// ":9464"; port 0 picks a free one, see Telemetry.MetricsAddr) on which
	// Setup serves Prometheus's /metrics, with the reader and handler
	// Prometheus returns, until Shutdown. An address that cannot be
	// listened on fails Setup.
	PrometheusListen string
	// Prometheus builds a Prometheus metric reader and the handler that
	// serves it (export.Prometheus). It is needed when PrometheusListen is
	// set, and not called otherwise.
	Prometheus func() (sdkmetric.Reader, http.Handler, error)
	// CoordinationDegraded, when not nil, reports whether the shared pacing
	// store is degraded (answering from local state): the gauge
	// MetricCoordinationDegraded reads it at each collection, and attempt
	// spans carry AttrCoordination. nil means no shared store: the gauge is
	// always 0 and spans carry no AttrCoordination.
	CoordinationDegraded func() bool
	// RolloutPercent reports the share of runs in the treatment cohort,
	// from 0 to 100; the gauge MetricRolloutPercent reads it at each
	// collection. nil, or a NaN it returns, means not known: the gauge is
	// not reported.
	RolloutPercent func() float64
}

// Shutdown shuts down every exporter and reader of o. Setup owns them, and
// shuts them down with Telemetry.Shutdown or when it fails; call this only
// for Options that will not be given to Setup.
func (o Options) Shutdown(ctx context.Context) error {
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
	holds    metric.Int64Counter
	delay    metric.Float64Histogram
	wasted   metric.Int64Histogram
	duration genaiconv.ClientOperationDuration
	tokens   genaiconv.ClientTokenUsage
	models   modelLabels
	series   seriesCache

	metrics *http.Server // serves /metrics when Options.PrometheusListen is set
	addr    string

	shutdownOnce sync.Once
	shutdownErr  error
}

// Setup builds a TracerProvider and a MeterProvider with the exporters and
// readers of o, and serves /metrics when o.PrometheusListen is set. It
// never sets the global providers. Call Shutdown to flush them. On error,
// every exporter and reader of o is shut down.
func Setup(ctx context.Context, o Options) (*Telemetry, error) {
	res, err := newResource(ctx, o.ServiceName)
	if err != nil {
		return nil, errors.Join(err, o.Shutdown(ctx))
	}
	var ln net.Listener
	var handler http.Handler
	if o.PrometheusListen != "" {
		if o.Prometheus == nil {
			return nil, errors.Join(fmt.Errorf("telemetry: prometheus_listen is %s, but no Prometheus exporter was given (Options.Prometheus = export.Prometheus)", o.PrometheusListen), o.Shutdown(ctx))
		}
		var reader sdkmetric.Reader
		if reader, handler, err = o.Prometheus(); err != nil {
			return nil, errors.Join(fmt.Errorf("telemetry: %w", err), o.Shutdown(ctx))
		}
		o.MetricReaders = append(slices.Clip(o.MetricReaders), reader)
		if ln, err = net.Listen("tcp", o.PrometheusListen); err != nil {
			return nil, errors.Join(fmt.Errorf("telemetry: prometheus_listen: %w", err), o.Shutdown(ctx))
		}
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	for _, exp := range o.SpanExporters {
		tpOpts = append(tpOpts, sdktrace.WithSyncer(exp))
	}
	for _, exp := range o.BatchSpanExporters {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(newSpanBuffer(sdktrace.NewBatchSpanProcessor(exp))))
	}
	for _, r := range o.MetricReaders {
		mpOpts = append(mpOpts, sdkmetric.WithReader(r))
	}
	t := &Telemetry{tp: sdktrace.NewTracerProvider(tpOpts...), mp: sdkmetric.NewMeterProvider(mpOpts...)}
	t.tracer = t.tp.Tracer(ScopeName)
	if ln != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", handler)
		t.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		t.addr = ln.Addr().String()
		go t.metrics.Serve(ln)
	}
	if err := t.instruments(o); err != nil {
		return nil, errors.Join(fmt.Errorf("telemetry: %w", err), t.Shutdown(ctx))
	}
	return t, nil
}

// MetricsAddr returns the address /metrics is served on (see
// Options.PrometheusListen; with port 0, the port picked), or "" when it is
// not served.
func (t *Telemetry) MetricsAddr() string {
	if t == nil {
		return ""
	}
	return t.addr
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

func (t *Telemetry) instruments(o Options) error {
	m := t.mp.Meter(ScopeName)
	var errs [10]error
	t.attempts, errs[0] = m.Int64Counter(MetricAttempts, metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts sent, by cohort, class (failures only), decision, provider and model."))
	t.calls, errs[1] = m.Int64Counter(MetricCalls, metric.WithUnit("{call}"),
		metric.WithDescription("Calls ended, by cohort, final outcome, class (failures only), provider and model."))
	t.giveups, errs[2] = m.Int64Counter(MetricGiveups, metric.WithUnit("{call}"),
		metric.WithDescription("Calls the retry decision gave up on, by cohort, class, provider and model."))
	t.delay, errs[3] = m.Float64Histogram(MetricDelay, metric.WithUnit("s"),
		metric.WithDescription("Delay chosen before each retry, by cohort, class, hint source, provider and model."),
		metric.WithExplicitBucketBoundaries(DelayBuckets...))
	t.holds, errs[4] = m.Int64Counter(MetricHolds, metric.WithUnit("{hold}"),
		metric.WithDescription("Outcomes that held every call to their limit back, by cohort, class, hold, provider and model."))
	t.wasted, errs[5] = m.Int64Histogram(MetricCallWasted, metric.WithUnit("{attempt}"),
		metric.WithDescription("Wasted attempts (sent, not successful) per ended call, by cohort, provider and model."),
		metric.WithExplicitBucketBoundaries(WastedBuckets...))
	t.duration, errs[6] = genaiconv.NewClientOperationDuration(m, metric.WithExplicitBucketBoundaries(DurationBuckets...))
	t.tokens, errs[7] = genaiconv.NewClientTokenUsage(m, metric.WithExplicitBucketBoundaries(TokenBuckets...))
	t.coordinated = o.CoordinationDegraded != nil
	_, errs[8] = m.Int64ObservableGauge(MetricCoordinationDegraded,
		metric.WithDescription("1 while the shared pacing store does not answer (each process paces alone), else 0."),
		metric.WithInt64Callback(func(_ context.Context, obs metric.Int64Observer) error {
			if o.CoordinationDegraded != nil && o.CoordinationDegraded() {
				obs.Observe(1)
			} else {
				obs.Observe(0)
			}
			return nil
		}))
	_, errs[9] = m.Float64ObservableGauge(MetricRolloutPercent,
		metric.WithDescription("Share of runs in the treatment cohort, from 0 to 100."),
		metric.WithFloat64Callback(func(_ context.Context, obs metric.Float64Observer) error {
			if o.RolloutPercent != nil {
				if p := o.RolloutPercent(); !math.IsNaN(p) {
					obs.Observe(p)
				}
			}
			return nil
		}))
	return errors.Join(errs[:]...)
}

// Shutdown stops serving /metrics, then flushes and shuts down the tracer
// and meter providers, and with them every exporter and reader. Calls after the first do nothing and
// return the first call's error.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.shutdownOnce.Do(func() {
		var serr error
		if t.metrics != nil {
			serr = t.metrics.Shutdown(ctx)
		}
		t.shutdownErr = errors.Join(serr, t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
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
