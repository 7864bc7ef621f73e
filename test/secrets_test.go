package test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/autopack/dynretry/internal/testutil"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/autopack/dynretry/examples/runner"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/sim"
	"github.com/autopack/dynretry/telemetry"
	"github.com/autopack/dynretry/telemetry/export"
)

// canaryKey returns a distinctive fake API key and its random part.
func canaryKey(t *testing.T) (key, random string) {
	t.Helper()
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	random = hex.EncodeToString(b)
	return "sk-canary-" + random, random
}

// revoking answers requests made with a revoked key with the provider's
// 401, echoing the key in the message as a careless gateway would; other
// requests go to next.
type revoking struct {
	next    http.Handler
	revoked string
}

func (h revoking) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if bearer != h.revoked && r.Header.Get("x-api-key") != h.revoked {
		h.next.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	if strings.HasSuffix(r.URL.Path, "/messages") {
		fmt.Fprintf(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key: %s"}}`, h.revoked)
		return
	}
	fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, h.revoked)
}

// TestNoSecretsAnywhere runs both cohorts against a provider that rate
// limits, fails, cuts streams, runs out of quota and refuses a revoked key
// with a message that echoes it, then looks for the keys in every exported
// span, the trace file, every metric, the Prometheus scrape, every log line
// and every error report.
func TestNoSecretsAnywhere(t *testing.T) {
	key, keyRandom := canaryKey(t)
	revoked, revokedRandom := canaryKey(t)
	needles := []string{key, keyRandom, revoked, revokedRandom}

	// Everything logged through slog's default logger, too (the OpenFeature
	// SDK logs there).
	defaultLogs := new(testutil.SyncBuffer)
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(defaultLogs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })

	prom, metrics, err := export.Prometheus()
	require.NoError(t, err)
	e := setup(t, plugin.Options{
		ConfigPath: modelsYAML, Environ: []string{"DYNRETRY_ROLLOUT_PERCENT=50"}, RunID: "canary-run-00",
		Telemetry: telemetry.Options{MetricReaders: []sdkmetric.Reader{prom}},
	})

	var st sim.Stats
	results := map[string]runner.Result{}
	synctest.Test(t, func(t *testing.T) {
		p := newSim(t, sim.Config{
			Seed: 7, RPM: 60, TPM: 100_000, Burst: 0.05, QuotaAfter: 40,
			ErrorRate: 0.1, ResetRate: 0.05, StreamErrorRate: 0.2,
		})
		h := revoking{next: p, revoked: revoked}
		good, bad := e.runner(h, key), e.runner(h, revoked)
		work := map[string][]runner.Phase{}
		for i := range 12 {
			work[fmt.Sprintf("canary-run-%02d", i)] = phases(3)
		}
		for id, res := range runAll(context.Background(), good, work) {
			results[id] = res
		}
		for _, id := range []string{"canary-revoked-a", "canary-revoked-b", "canary-revoked-c", "canary-revoked-d"} {
			results[id] = bad.Run(context.Background(), id, phases(1))
		}
		st = p.Stats()
	})

	// The run did what it should: both cohorts, both keys, every failure.
	cohorts := map[string]bool{}
	for _, c := range e.calls() {
		cohorts[c.str(telemetry.AttrCohort)] = true
	}
	assert.Equal(t, map[string]bool{"treatment": true, "control": true}, cohorts)
	assert.Positive(t, st.ByCredential[sim.CredentialID(key)].Received, "the canary key was sent")
	assert.Positive(t, st.Rejected[sim.ReasonRateLimited], "429s")
	assert.Positive(t, st.Rejected[sim.ReasonQuota], "quota errors")
	classes := map[string]bool{}
	for _, as := range e.attempts() {
		for _, a := range as {
			classes[a.str(telemetry.AttrClass)] = true
		}
	}
	for _, c := range []string{"auth", "rate_limited", "quota_exhausted"} {
		assert.True(t, classes[c], "an attempt of class %s", c)
	}
	var reports []string
	for _, res := range results {
		reports = append(reports, res.Reports...)
	}
	require.NotEmpty(t, reports)
	t.Logf("%d requests, rejected %v, %d error reports, classes %v", st.Received, st.Rejected, len(reports), classes)

	lookFor := func(what, text string) {
		t.Helper()
		for _, n := range needles {
			assert.NotContains(t, text, n, "%s holds a key", what)
		}
	}

	// Spans, whole: attributes, events, status, resource.
	for _, s := range e.spans.GetSpans() {
		b, err := json.Marshal(s)
		require.NoError(t, err)
		lookFor("span "+s.Name, string(b))
		for _, kv := range s.Attributes {
			lookFor("span attribute "+string(kv.Key), kv.Value.String())
		}
	}
	require.NotEmpty(t, e.traces.String())
	lookFor("the trace file", e.traces.String())

	// Metrics: every point's attributes, and the Prometheus scrape.
	var rm metricdata.ResourceMetrics
	require.NoError(t, e.reader.Collect(context.Background(), &rm))
	points := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			b, err := json.Marshal(m)
			require.NoError(t, err)
			lookFor("metric "+m.Name, string(b))
		}
	}
	for _, sets := range e.metrics(t) {
		for _, set := range sets {
			points++
			for _, kv := range set.ToSlice() {
				lookFor("metric attribute "+string(kv.Key), kv.Value.String())
			}
		}
	}
	assert.Positive(t, points)
	rec := httptest.NewRecorder()
	metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "dynretry_attempts")
	lookFor("the Prometheus scrape", rec.Body.String())

	// Logs.
	require.Contains(t, e.logs.String(), "dynretry registered")
	lookFor("the plugin's log", e.logs.String())
	lookFor("the default logger's output", defaultLogs.String())

	// Error reports, every file under the runner's directory.
	var files, redacted int
	err = filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if strings.Contains(string(b), "[REDACTED]") {
			redacted++
		}
		lookFor("error report "+filepath.Base(path), string(b))
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 2*len(reports), files, "each report and its .txt twin")
	assert.Positive(t, redacted, "the echoed key was redacted from the 401 reports")
	auth, err := filepath.Glob(filepath.Join(e.dir, ".autonomous_runs", "canary-revoked-*", "errors", "*_llm_service_Auth*.json"))
	require.NoError(t, err)
	assert.Len(t, auth, 8, "every call with the revoked key failed with auth")

	// The limit key names the credential by a hash that reveals nothing of it.
	id := retry.CredentialID(key)
	assert.Len(t, id, 16)
	for _, n := range needles {
		assert.NotContains(t, id, n)
	}
	assert.NotEqual(t, retry.CredentialID(key), retry.CredentialID(revoked))

	// The startup log names the run's cohort.
	want := rollout.Control
	if rollout.Bucket("canary-run-00") < 50 {
		want = rollout.Treatment
	}
	assert.Contains(t, e.logs.String(), `"cohort":"`+string(want)+`"`)
}
