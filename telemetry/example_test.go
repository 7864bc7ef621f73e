package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
	"github.com/autopack/dynretry/telemetry/export"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// A call's span, the engine's attempts as its children, and the metrics on
// a Prometheus handler.
func Example() {
	ctx := context.Background()
	prom, metrics, err := export.Prometheus()
	if err != nil {
		panic(err)
	}
	tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceName: "runner", MetricReaders: []sdkmetric.Reader{prom}})
	if err != nil {
		panic(err)
	}
	defer tel.Shutdown(ctx)
	r, err := retry.New(retry.DefaultConfig(), retry.WithObserver(tel.Observer()))
	if err != nil {
		panic(err)
	}

	ctx, span := tel.StartCall(ctx, telemetry.CallInfo{
		RunID: "run-1", Provider: "openai", Model: "gpt-test",
		Flag: rollout.Assignment{Cohort: rollout.Treatment, FlagKey: rollout.FlagKey, Variant: "on"},
	})
	key := retry.Key{Provider: retry.OpenAI, Model: "gpt-test", Credential: retry.CredentialID("the key")}
	err = r.Do(ctx, key, func(ctx context.Context) error { return nil })
	var class retry.Class
	if re := (*retry.Error)(nil); errors.As(err, &re) {
		class = re.Decision.Class
	}
	tel.EndCall(ctx, span, class, err)

	rec := httptest.NewRecorder()
	metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, line := range strings.Split(string(body), "\n") {
		name, _, _ := strings.Cut(line, "{")
		if strings.HasSuffix(name, "_total") || strings.HasSuffix(name, "_count") {
			fmt.Println(name, line[strings.LastIndex(line, " ")+1:])
		}
	}
	// Output:
	// dynretry_attempts_total 1
	// dynretry_call_wasted_attempts_count 1
	// dynretry_calls_total 1
	// gen_ai_client_operation_duration_seconds_count 1
}
