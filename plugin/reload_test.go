package plugin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/internal/testutil"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
)

// TestReloadAppliesToTheNextCall edits models.yaml under a registered
// plugin: the next call uses the new rollout percentage and the new engine
// setting; a broken edit is logged with its key and counted, and the last
// good configuration stays in force.
func TestReloadAppliesToTheNextCall(t *testing.T) {
	// server_error retried without waiting, so that attempts are counted
	// in real time.
	const head = sectionHead + "    policies:\n      server_error: {base: 0s, max: 0s, max_attempts: "
	path := writeFile(t, head+"3}\n    rollout_percent: 0\n")
	reader := sdkmetric.NewManualReader()
	logs := new(testutil.SyncBuffer)
	host := new(recordingHost)
	p := register(t, host, plugin.Options{
		ConfigPath: path,
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
		Telemetry:  telemetry.Options{MetricReaders: []sdkmetric.Reader{reader}},
	})

	// A provider that always fails with a 500, counting attempts.
	var sent atomic.Int32
	rt := host.transport[0](roundTripFunc(func(req *http.Request) (*http.Response, error) {
		sent.Add(1)
		return &http.Response{StatusCode: 500, Status: "500 Internal Server Error", Request: req,
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   io.NopCloser(strings.NewReader(`{"error":{"message":"boom","type":"server_error"}}`))}, nil
	}))
	attempts := func() int32 {
		sent.Store(0)
		ctx := hooks.WithCohort(context.Background(), rollout.Treatment)
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "https://api.openai.com/v1/chat/completions", nil)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		return sent.Load()
	}
	const run = "run-reload"
	require.Equal(t, rollout.Control, cohortOf(t, host.llm[0], run))
	require.EqualValues(t, 3, attempts())

	edit := func(body string, ok func() bool) {
		t.Helper()
		require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
		require.Eventually(t, ok, 10*time.Second, 10*time.Millisecond, "the change is applied")
	}
	edit(head+"2}\n    rollout_percent: 100\n", func() bool { return p.Settings().RolloutPercent == 100 })
	assert.Equal(t, rollout.Treatment, cohortOf(t, host.llm[0], run), "the new percentage")
	assert.EqualValues(t, 2, attempts(), "the new engine setting")

	edit(head+"lots}\n    rollout_percent: 0\n", func() bool { return strings.Contains(logs.String(), "refused") })
	log := logs.String()
	assert.Contains(t, log, "policies.server_error.max_attempts")
	assert.Contains(t, log, "the last good configuration stays in force")
	assert.Equal(t, 100.0, p.Settings().RolloutPercent)
	assert.Equal(t, rollout.Treatment, cohortOf(t, host.llm[0], run), "the last good percentage")
	assert.EqualValues(t, 2, attempts(), "the last good engine setting")

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != plugin.MetricConfigReload {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value(telemetry.AttrOutcome)
				got[v.AsString()] += dp.Value
			}
		}
	}
	assert.Equal(t, map[string]int64{"ok": 1, "error": 1}, got)
}
