package plugin

import "testing"

func TestOTLPWanted(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		want bool
	}{
		"nothing set":        {nil, false},
		"endpoint":           {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		"traces endpoint":    {map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		"exporter otlp":      {map[string]string{"OTEL_TRACES_EXPORTER": " OTLP "}, true},
		"exporter none wins": {map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false},
		"other exporter":     {map[string]string{"OTEL_TRACES_EXPORTER": "console"}, false},
	}
	for name, tt := range tests {
		if got := otlpWanted(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("%s: otlpWanted = %v, want %v", name, got, tt.want)
		}
	}
}
