package telemetry

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/autopack/dynretry/telemetry/export"
)

// traceFile is the exporter of a JSON-lines trace file written to w.
func traceFile(t *testing.T, w io.Writer) []sdktrace.SpanExporter {
	t.Helper()
	exp, err := export.TraceFile(w)
	require.NoError(t, err)
	return []sdktrace.SpanExporter{exp}
}

// harness is a Telemetry with an in-memory span exporter, a manual metric
// reader and a Prometheus handler.
type harness struct {
	tel    *Telemetry
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	prom   http.Handler
}

func newHarness(t *testing.T, o Options) *harness {
	t.Helper()
	h := &harness{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	prom, handler, err := export.Prometheus()
	require.NoError(t, err)
	h.prom = handler
	o.SpanExporters = append(o.SpanExporters, h.spans)
	o.MetricReaders = append(o.MetricReaders, h.reader, prom)
	tel, err := Setup(context.Background(), o)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	h.tel = tel
	t.Cleanup(func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return h
}

// attrMap renders attributes as key → value (int64, string, ...).
func attrMap(kvs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

// labelKey renders a metric point's attributes as "k=v,k=v", sorted.
func labelKey(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// histPoint is what the tests check of a histogram point.
type histPoint struct {
	Count uint64
	Sum   float64
}

// metrics collects the reader's data as instrument → labels → value: int64
// for sums, histPoint for histograms.
func (h *harness) metrics(t *testing.T) map[string]map[string]any {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := map[string]map[string]any{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			pts := map[string]any{}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					pts[labelKey(p.Attributes)] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					pts[labelKey(p.Attributes)] = histPoint{p.Count, p.Sum}
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					pts[labelKey(p.Attributes)] = histPoint{p.Count, float64(p.Sum)}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					pts[labelKey(p.Attributes)] = p.Value
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					pts[labelKey(p.Attributes)] = p.Value
				}
			default:
				t.Fatalf("metric %s: unexpected data %T", m.Name, m.Data)
			}
			out[m.Name] = pts
		}
	}
	return out
}

// metricAttrs returns every attribute value of every data point.
func (h *harness) metricAttrs(t *testing.T) []string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	var vals []string
	add := func(s attribute.Set) {
		for _, kv := range s.ToSlice() {
			vals = append(vals, string(kv.Key)+"="+kv.Value.String())
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes)
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes)
				}
			}
		}
	}
	return vals
}
