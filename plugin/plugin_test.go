package plugin_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/autopack/dynretry/internal/testutil"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
	"github.com/autopack/dynretry/telemetry/export"
)

// TestMain checks that the tests leave no goroutine behind.
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

// modelsYAML is the repository's models.yaml.
const modelsYAML = "../models.yaml"

// recordingHost records the wrappers plugins install.
type recordingHost struct {
	llm       []func(hooks.LLMService) hooks.LLMService
	reporter  []func(hooks.ErrorReporter) hooks.ErrorReporter
	transport []func(http.RoundTripper) http.RoundTripper
}

func (h *recordingHost) WrapLLM(w func(hooks.LLMService) hooks.LLMService) { h.llm = append(h.llm, w) }
func (h *recordingHost) WrapErrorReporter(w func(hooks.ErrorReporter) hooks.ErrorReporter) {
	h.reporter = append(h.reporter, w)
}
func (h *recordingHost) WrapTransport(w func(http.RoundTripper) http.RoundTripper) {
	h.transport = append(h.transport, w)
}

func (h *recordingHost) installed() int { return len(h.llm) + len(h.reporter) + len(h.transport) }

func register(t *testing.T, host hooks.Host, o plugin.Options) *plugin.Plugin {
	t.Helper()
	if o.Environ == nil {
		o.Environ = []string{} // not the process's environment
	}
	p, err := plugin.Register(context.Background(), host, o)
	require.NoError(t, err)
	require.NotNil(t, p)
	t.Cleanup(func() { assert.NoError(t, p.Shutdown(context.Background())) })
	return p
}

// cohortOf calls svc and returns the cohort the call was in.
func cohortOf(t *testing.T, svc func(hooks.LLMService) hooks.LLMService, runID string) rollout.Cohort {
	t.Helper()
	var got rollout.Cohort
	var off bool
	s := svc(hooks.LLMFunc(func(ctx context.Context, _ hooks.Call, _ hooks.Request) (hooks.Response, error) {
		got, off = hooks.CohortOf(ctx), hooks.SDKRetriesOff(ctx)
		return hooks.Response{}, nil
	}))
	_, err := s.Complete(context.Background(), hooks.Call{RunID: runID, Provider: "openai", Model: "m"}, hooks.Request{})
	require.NoError(t, err)
	assert.Equal(t, got == rollout.Treatment, off)
	return got
}

func TestRegisterInstallsThreeWrappers(t *testing.T) {
	host := new(recordingHost)
	logs := new(testutil.SyncBuffer)
	p := register(t, host, plugin.Options{
		ConfigPath: modelsYAML, RunID: "lovable-p1-core-precision",
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	assert.Len(t, host.llm, 1)
	assert.Len(t, host.reporter, 1)
	assert.Len(t, host.transport, 1)

	assert.Equal(t, modelsYAML, p.Settings().Source)
	assert.True(t, p.Settings().Enabled)
	assert.Equal(t, 10.0, p.Settings().RolloutPercent)
	require.NotNil(t, p.Percent, "the configuration's rollout is in use")
	assert.NotNil(t, p.Telemetry())

	// The wrappers work on the runner's parts.
	rt := host.transport[0](roundTripFunc(func(req *http.Request) (*http.Response, error) { return nil, errors.New("base reached") }))
	_, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://api.openai.com/v1/models", nil))
	assert.ErrorContains(t, err, "base reached")
	rep := host.reporter[0](hooks.ReporterFunc(func(_ context.Context, r hooks.ErrorReport) (string, error) { return "p", nil }))
	path, err := rep.Report(context.Background(), hooks.ErrorReport{Err: errors.New("x")})
	require.NoError(t, err)
	assert.Equal(t, "p", path)

	log := logs.String()
	assert.Contains(t, log, "dynretry registered")
	assert.Contains(t, log, "run_id=lovable-p1-core-precision")
	assert.Contains(t, log, "config="+modelsYAML)
	assert.Contains(t, log, "cohort=")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestPercentSetChangesNewCalls: Plugin.Percent's Set applies to the next
// call, without re-registering.
func TestPercentSetChangesNewCalls(t *testing.T) {
	host := new(recordingHost)
	p := register(t, host, plugin.Options{ConfigPath: modelsYAML})
	mw := host.llm[0]
	const run = "run-flip"

	p.Percent.Set(true, 0)
	assert.Equal(t, rollout.Control, cohortOf(t, mw, run))
	p.Percent.Set(true, 100)
	assert.Equal(t, rollout.Treatment, cohortOf(t, mw, run))
	p.Percent.Set(false, 100) // the kill switch
	assert.Equal(t, rollout.Control, cohortOf(t, mw, run))
	p.Percent.Set(true, 100)
	assert.Equal(t, rollout.Treatment, cohortOf(t, mw, run))
	p.Percent.Set(true, 0) // back from 100% to 0%
	assert.Equal(t, rollout.Control, cohortOf(t, mw, run))

	// At 50%, the cohort is the run's bucket's, every time.
	p.Percent.Set(true, 50)
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		want := rollout.Control
		if rollout.Bucket(id) < 50 {
			want = rollout.Treatment
		}
		assert.Equal(t, want, cohortOf(t, mw, id), "run %s", id)
		assert.Equal(t, want, cohortOf(t, mw, id), "run %s, again", id)
	}
}

func TestRegisterWithFlagProvider(t *testing.T) {
	host := new(recordingHost)
	p := register(t, host, plugin.Options{FlagProvider: rollout.NewPercentProvider(true, 100)})
	assert.Nil(t, p.Percent, "no percentage provider of the plugin's own")
	assert.Equal(t, rollout.Treatment, cohortOf(t, host.llm[0], "any-run"))
	assert.Equal(t, "", p.Settings().Source, "no file read")
}

// TestEnvironOverride: LOVABLE_DYNAMIC_RETRY_DELAYS in Options.Environ wins
// over the rollout both ways.
func TestEnvironOverride(t *testing.T) {
	for _, tc := range []struct {
		value   string
		percent string
		want    rollout.Cohort
	}{
		{"false", "100", rollout.Control},
		{"true", "0", rollout.Treatment},
		{"FALSE", "100", rollout.Control},
		{"Yes", "0", rollout.Treatment},
		{" on ", "0", rollout.Treatment},
		{"0", "100", rollout.Control},
	} {
		t.Run(tc.value, func(t *testing.T) {
			host := new(recordingHost)
			register(t, host, plugin.Options{Environ: []string{
				"LOVABLE_DYNAMIC_RETRY_DELAYS=" + tc.value, "DYNRETRY_ROLLOUT_PERCENT=" + tc.percent,
			}})
			assert.Equal(t, tc.want, cohortOf(t, host.llm[0], "run-env"))
		})
	}
}

// TestEnvSwitchLiveBothWays: with the process's environment (a nil
// Options.Environ), LOVABLE_DYNAMIC_RETRY_DELAYS is read at every call: off
// at startup puts calls in control, unsetting it gives the decision back to
// the percentage, and on puts them in treatment. The rollout gauge follows.
func TestEnvSwitchLiveBothWays(t *testing.T) {
	var in, out string // runs in and out of the 10% rollout
	for i := 0; in == "" || out == ""; i++ {
		id := fmt.Sprintf("run-%d", i)
		if rollout.Bucket(id) < 10 {
			in = cmp.Or(in, id)
		} else {
			out = cmp.Or(out, id)
		}
	}
	t.Setenv("LOVABLE_DYNAMIC_RETRY_DELAYS", "false")
	t.Setenv("DYNRETRY_CONFIG", modelsYAML)
	host := new(recordingHost)
	reader := sdkmetric.NewManualReader()
	p, err := plugin.Register(context.Background(), host, plugin.Options{Telemetry: telemetry.Options{MetricReaders: []sdkmetric.Reader{reader}}})
	require.NoError(t, err)
	defer p.Shutdown(context.Background())
	assert.Equal(t, modelsYAML, p.Settings().Source)
	assert.True(t, p.Settings().Enabled, "the file's switch, not the variable")
	gauge := func() float64 {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == telemetry.MetricRolloutPercent {
					return m.Data.(metricdata.Gauge[float64]).DataPoints[0].Value
				}
			}
		}
		t.Fatal("no rollout gauge")
		return 0
	}

	assert.Equal(t, rollout.Control, cohortOf(t, host.llm[0], in), "=false: control")
	assert.Equal(t, 0.0, gauge())
	require.NoError(t, os.Unsetenv("LOVABLE_DYNAMIC_RETRY_DELAYS"))
	assert.Equal(t, rollout.Treatment, cohortOf(t, host.llm[0], in), "unset: the percentage decides")
	assert.Equal(t, rollout.Control, cohortOf(t, host.llm[0], out), "unset: the percentage decides")
	assert.Equal(t, 10.0, gauge())
	t.Setenv("LOVABLE_DYNAMIC_RETRY_DELAYS", "true")
	assert.Equal(t, rollout.Treatment, cohortOf(t, host.llm[0], out), "=true: treatment")
	assert.Equal(t, 100.0, gauge())
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "models.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

const sectionHead = "lovable_patterns:\n  p1_dynamic_retry_delays:\n"

// TestRegisterErrors: a bad configuration or environment value is an error
// that names what is wrong, and nothing is installed on the host.
func TestRegisterErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		path    string
		environ []string
		want    []string // substrings of the error
	}{
		"malformed yaml": {
			path: writeFile(t, sectionHead+"    enabled: [true\n"),
			want: []string{"models.yaml"},
		},
		"unknown key": {
			path: writeFile(t, sectionHead+"    max_hints: 2m\n"),
			want: []string{"max_hints"},
		},
		"value out of range": {
			path: writeFile(t, sectionHead+"    rollout_percent: 150\n"),
			want: []string{"rollout_percent", "150"},
		},
		"bad duration": {
			path: writeFile(t, sectionHead+"    max_hint: soon\n"),
			want: []string{"max_hint", "soon"},
		},
		"missing file": {
			path: filepath.Join(t.TempDir(), "absent.yaml"),
			want: []string{"absent.yaml"},
		},
		"DYNRETRY_CONFIG missing file": {
			environ: []string{"DYNRETRY_CONFIG=" + filepath.Join(t.TempDir(), "gone.yaml")},
			want:    []string{"gone.yaml", "DYNRETRY_CONFIG"},
		},
		"invalid LOVABLE_DYNAMIC_RETRY_DELAYS": {
			path: modelsYAML, environ: []string{"LOVABLE_DYNAMIC_RETRY_DELAYS=maybe"},
			want: []string{"LOVABLE_DYNAMIC_RETRY_DELAYS", "maybe"},
		},
		"invalid LOVABLE_DYNAMIC_RETRY_DELAYS, no file": {
			environ: []string{"LOVABLE_DYNAMIC_RETRY_DELAYS=enabled"},
			want:    []string{"LOVABLE_DYNAMIC_RETRY_DELAYS", "enabled"},
		},
		"invalid DYNRETRY_ value": {
			path: modelsYAML, environ: []string{"DYNRETRY_MAX_HINT=banana"},
			want: []string{"DYNRETRY_MAX_HINT", "banana"},
		},
		"unknown DYNRETRY_ variable": {
			environ: []string{"DYNRETRY_NO_SUCH_SETTING=1"},
			want:    []string{"DYNRETRY_NO_SUCH_SETTING"},
		},
		"invalid DYNRETRY_ROLLOUT_PERCENT": {
			environ: []string{"DYNRETRY_ROLLOUT_PERCENT=-5"},
			want:    []string{"DYNRETRY_ROLLOUT_PERCENT", "rollout_percent"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			host := new(recordingHost)
			environ := tc.environ
			if environ == nil {
				environ = []string{}
			}
			p, err := plugin.Register(context.Background(), host, plugin.Options{ConfigPath: tc.path, Environ: environ})
			require.Error(t, err)
			assert.Nil(t, p)
			assert.True(t, strings.HasPrefix(err.Error(), "dynretry: "), "error %q", err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "\n", "one line")
			assert.Zero(t, host.installed(), "nothing installed")
		})
	}
}

// TestRegisterBadConfigFiles: every bad file of the config package's test
// data fails Register without installing anything.
func TestRegisterBadConfigFiles(t *testing.T) {
	bad, err := filepath.Glob("../config/testdata/bad/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, bad)
	for _, path := range bad {
		t.Run(filepath.Base(path), func(t *testing.T) {
			host := new(recordingHost)
			p, err := plugin.Register(context.Background(), host, plugin.Options{ConfigPath: path, Environ: []string{}})
			require.Error(t, err)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), path, "the error names the file")
			assert.Zero(t, host.installed())
		})
	}
}

// failingProvider is a flag provider whose initialization fails.
type failingProvider struct{ openfeature.NoopProvider }

func (failingProvider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: "failing"} }
func (failingProvider) Init(openfeature.EvaluationContext) error {
	return errors.New("flag source unreachable")
}
func (failingProvider) Shutdown() {}

// shutdownExporter records its Shutdown.
type shutdownExporter struct {
	*tracetest.InMemoryExporter
	mu   sync.Mutex
	done bool
}

func (e *shutdownExporter) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.done = true
	e.mu.Unlock()
	return e.InMemoryExporter.Shutdown(ctx)
}

// TestRegisterRolloutError: when the flag provider fails to start, nothing
// is installed and the telemetry already built is shut down.
func TestRegisterRolloutError(t *testing.T) {
	host := new(recordingHost)
	exp := &shutdownExporter{InMemoryExporter: tracetest.NewInMemoryExporter()}
	p, err := plugin.Register(context.Background(), host, plugin.Options{
		Environ: []string{}, FlagProvider: failingProvider{},
		Telemetry: telemetry.Options{SpanExporters: []trace.SpanExporter{exp}},
	})
	require.Error(t, err)
	assert.Nil(t, p)
	assert.Contains(t, err.Error(), "flag source unreachable")
	assert.Contains(t, err.Error(), "rollout")
	assert.Zero(t, host.installed())
	exp.mu.Lock()
	defer exp.mu.Unlock()
	assert.True(t, exp.done, "telemetry shut down")
}

func TestShutdownTwice(t *testing.T) {
	host := new(recordingHost)
	p, err := plugin.Register(context.Background(), host, plugin.Options{Environ: []string{}, ConfigPath: modelsYAML})
	require.NoError(t, err)
	assert.NoError(t, p.Shutdown(context.Background()))
	assert.NoError(t, p.Shutdown(context.Background()))
	// After Shutdown calls are control, and nothing panics.
	assert.Equal(t, rollout.Control, cohortOf(t, host.llm[0], "run"))
}

// TestPrometheusListenFromConfig: telemetry.prometheus_listen serves
// /metrics for the plugin's life; without an exporter to serve it Register
// says what is missing.
func TestPrometheusListenFromConfig(t *testing.T) {
	path := writeFile(t, sectionHead+"    telemetry: {prometheus_listen: \"127.0.0.1:0\"}\n")
	host := new(recordingHost)
	logs := new(testutil.SyncBuffer)
	p := register(t, host, plugin.Options{ConfigPath: path, Environ: []string{"DYNRETRY_ROLLOUT_PERCENT=50"},
		Telemetry: telemetry.Options{Prometheus: export.Prometheus}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	addr := p.Telemetry().MetricsAddr()
	require.NotEmpty(t, addr)
	assert.Contains(t, logs.String(), "metrics=http://"+addr+"/metrics")
	cohortOf(t, host.llm[0], "run-1")
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), "dynretry_calls_total{")
	assert.Regexp(t, `(?m)^dynretry_rollout_percent\{[^}]*\} 50$`, string(body))
	assert.Regexp(t, `(?m)^dynretry_coordination_degraded\{[^}]*\} 0$`, string(body))

	exp := &shutdownExporter{InMemoryExporter: tracetest.NewInMemoryExporter()}
	_, err = plugin.Register(context.Background(), new(recordingHost), plugin.Options{ConfigPath: path, Environ: []string{},
		Telemetry: telemetry.Options{SpanExporters: []trace.SpanExporter{exp}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no Prometheus exporter was given")
	exp.mu.Lock()
	assert.True(t, exp.done, "the exporters given are shut down")
	exp.mu.Unlock()

	// A configuration error also shuts them down.
	exp = &shutdownExporter{InMemoryExporter: tracetest.NewInMemoryExporter()}
	_, err = plugin.Register(context.Background(), new(recordingHost), plugin.Options{Environ: []string{"LOVABLE_DYNAMIC_RETRY_DELAYS=maybe"},
		Telemetry: telemetry.Options{SpanExporters: []trace.SpanExporter{exp}}})
	require.Error(t, err)
	exp.mu.Lock()
	assert.True(t, exp.done)
	exp.mu.Unlock()
}
