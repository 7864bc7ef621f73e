package export_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/autopack/dynretry/telemetry/export"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// FromEnv follows the standard variables, except that nothing is exported
// when none asks for anything.
func TestFromEnv(t *testing.T) {
	for name, tc := range map[string]struct {
		env           map[string]string
		spans, meters int
		err           string
	}{
		"nothing set":         {},
		"endpoint":            {env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, spans: 1, meters: 1},
		"traces endpoint":     {env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, spans: 1},
		"exporter otlp":       {env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, spans: 1},
		"grpc":                {env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, spans: 1},
		"console":             {env: map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console"}, spans: 1, meters: 1},
		"none wins":           {env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}},
		"unknown exporter":    {env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin-ish"}, err: "export: traces:"},
		"unknown metrics one": {env: map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "statsd"}, err: "export: metrics:"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, k := range []string{
				"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL",
				"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
			} {
				t.Setenv(k, tc.env[k])
			}
			ctx := context.Background()
			env, err := export.FromEnv(ctx)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Len(t, env.SpanExporters, tc.spans)
			assert.Len(t, env.MetricReaders, tc.meters)
			for _, e := range env.SpanExporters {
				assert.NoError(t, e.Shutdown(ctx))
			}
			for _, r := range env.MetricReaders {
				assert.NoError(t, r.Shutdown(ctx))
			}
		})
	}
}
