// Package export builds the exporters that telemetry.Setup can be given:
// those the standard OpenTelemetry variables ask for (through the contrib
// autoexport module), a JSON-lines trace file, and a Prometheus registry.
//
// It is a package of its own so that a program importing only retry, or
// hooks and plugin, compiles no exporter, no gRPC and no Prometheus client:
// the runner or command that wants them imports this package and passes
// what it returns in telemetry.Options (plugin.Options.Telemetry).
//
//	env, err := export.FromEnv(ctx)
//	if err != nil { … }
//	p, err := plugin.Register(ctx, host, plugin.Options{Telemetry: telemetry.Options{
//		BatchSpanExporters: env.SpanExporters, MetricReaders: env.MetricReaders,
//	}})
//
// telemetry.Setup owns what it is given: Telemetry.Shutdown flushes and shuts
// it down, and so does a Setup (or a plugin.Register) that fails.
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Env is what the standard variables ask for.
type Env struct {
	// SpanExporters holds the traces exporter, if any: export its spans in
	// batches (telemetry.Options.BatchSpanExporters).
	SpanExporters []sdktrace.SpanExporter
	// MetricReaders holds the metrics reader, if any (periodic for OTLP and
	// console, a pull server for prometheus).
	MetricReaders []sdkmetric.Reader
}

// FromEnv returns the exporters the standard OpenTelemetry variables ask
// for, built by go.opentelemetry.io/contrib/exporters/autoexport:
// OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER name them ("otlp",
// "console", "prometheus" for metrics, "none"), OTEL_EXPORTER_OTLP_PROTOCOL
// picks HTTP (the default) or gRPC, and the other OTEL_EXPORTER_OTLP_* and
// OTEL_EXPORTER_PROMETHEUS_* variables configure them.
//
// One difference from the specification's default: when OTEL_TRACES_EXPORTER
// (OTEL_METRICS_EXPORTER) is unset or empty, OTLP is used only when an OTLP
// endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT, or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _METRICS_ENDPOINT); otherwise nothing is
// exported, rather than sending to a collector on localhost that is
// usually not there. An unknown exporter name is an error; on error, what
// was built is shut down.
func FromEnv(ctx context.Context) (Env, error) {
	var env Env
	var spanOpts []autoexport.SpanOption
	if !endpoint("TRACES") {
		spanOpts = append(spanOpts, autoexport.WithFallbackSpanExporter(func(context.Context) (sdktrace.SpanExporter, error) { return nil, nil }))
	}
	se, err := autoexport.NewSpanExporter(ctx, spanOpts...)
	if err != nil {
		return Env{}, fmt.Errorf("export: traces: %w", err)
	}
	if se != nil && !autoexport.IsNoneSpanExporter(se) {
		env.SpanExporters = append(env.SpanExporters, se)
	}
	var metricOpts []autoexport.MetricOption
	if !endpoint("METRICS") {
		metricOpts = append(metricOpts, autoexport.WithFallbackMetricReader(func(context.Context) (sdkmetric.Reader, error) { return nil, nil }))
	}
	mr, err := autoexport.NewMetricReader(ctx, metricOpts...)
	if err != nil {
		return Env{}, errors.Join(fmt.Errorf("export: metrics: %w", err), env.shutdown(ctx))
	}
	if mr != nil && !autoexport.IsNoneMetricReader(mr) {
		env.MetricReaders = append(env.MetricReaders, mr)
	}
	return env, nil
}

// endpoint reports whether an OTLP endpoint is set for the signal
// ("TRACES" or "METRICS").
func endpoint(signal string) bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

func (e Env) shutdown(ctx context.Context) error {
	var errs []error
	for _, s := range e.SpanExporters {
		errs = append(errs, s.Shutdown(ctx))
	}
	for _, r := range e.MetricReaders {
		errs = append(errs, r.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// TraceFile returns a span exporter that writes each span to w as one JSON
// object per line (the stdouttrace exporter, without pretty printing): the
// format dynretry report reads. Give it to telemetry.Options.SpanExporters,
// which exports synchronously, so that the file is complete up to the last
// ended span. w must be safe to use from the goroutines that end spans;
// Shutdown does not close it.
func TraceFile(w io.Writer) (sdktrace.SpanExporter, error) {
	exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
	if err != nil {
		return nil, fmt.Errorf("export: trace file: %w", err)
	}
	return exp, nil
}

// Prometheus returns a metric reader registered on a new registry of its
// own, and the handler serving that registry (the /metrics page). Metric
// names follow Prometheus's conventions (UnderscoreEscapingWithSuffixes):
// dots become underscores, counters gain _total and the histogram its unit,
// as telemetry's documentation lists.
func Prometheus() (sdkmetric.Reader, http.Handler, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("export: prometheus: %w", err)
	}
	return exp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}
