// Package plugin registers dynretry with the runner at startup.
//
//	p, err := plugin.Register(ctx, host, plugin.Options{})
//	if err != nil { … }          // a bad models.yaml or env value: nothing was installed
//	defer p.Shutdown(ctx)        // flushes telemetry
//
// Register loads the configuration (models.yaml and the environment), sets
// up the rollout flag through OpenFeature, builds telemetry, and installs
// the hooks: the LLM-service middleware, the transport for the SDK clients
// and the error-reporter decorator.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/autopack/dynretry/config"
	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
	"github.com/open-feature/go-sdk/openfeature"
)

// Options are Register's optional parts; the zero value is valid.
type Options struct {
	// ConfigPath is the models.yaml to read; "" means $DYNRETRY_CONFIG when
	// set, else the defaults.
	ConfigPath string
	// Environ is the environment, as os.Environ returns it; nil means
	// os.Environ(). LOVABLE_DYNAMIC_RETRY_DELAYS is read from it at every
	// flag evaluation, DYNRETRY_* settings once.
	Environ []string
	// FlagProvider decides the rollout; nil means a percentage rollout
	// built from the configuration (enabled, rollout_percent). The
	// LOVABLE_DYNAMIC_RETRY_DELAYS variable wins over any provider.
	FlagProvider openfeature.FeatureProvider
	// Telemetry chooses exporters. OTLP is also turned on when the standard
	// variables ask for it (OTEL_EXPORTER_OTLP_ENDPOINT or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set, or OTEL_TRACES_EXPORTER=otlp;
	// OTEL_TRACES_EXPORTER=none keeps it off); the exporters then read the
	// rest of their OTEL_EXPORTER_OTLP_* settings from the process.
	Telemetry telemetry.Options
	// Store keeps pacing state; nil means in process memory. Executors that
	// share a Store hold back each other's calls to a limit.
	Store retry.Store
	// RunID, when set, names the run this executor runs: Register logs the
	// run's cohort at startup.
	RunID string
	// Logger receives startup messages; nil means slog.Default().
	Logger *slog.Logger
}

// A Plugin is dynretry registered with a runner.
type Plugin struct {
	// Settings is the configuration in force.
	Settings config.Settings
	// Percent is the percentage provider when the configuration's rollout
	// is in use (Options.FlagProvider was nil), else nil. Its Set changes
	// the rollout for new calls without a restart.
	Percent *rollout.PercentProvider

	retrier   *retry.Retrier
	rollout   *rollout.Rollout
	telemetry *telemetry.Telemetry
}

// Register loads the configuration, sets up the rollout and telemetry, and
// installs dynretry's hooks with host. On error nothing is installed and
// whatever was started is shut down.
func Register(ctx context.Context, host hooks.Host, o Options) (p *Plugin, err error) {
	environ, getenv := o.Environ, os.Getenv
	if environ == nil {
		environ = os.Environ()
	} else {
		getenv = lookup(environ)
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	p = new(Plugin)
	if p.Settings, err = config.Load(o.ConfigPath, environ); err != nil {
		return nil, fmt.Errorf("dynretry: %w", err)
	}
	if otlpWanted(getenv) {
		o.Telemetry.OTLP = true
	}
	if p.telemetry, err = telemetry.Setup(ctx, o.Telemetry); err != nil {
		return nil, fmt.Errorf("dynretry: telemetry: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Shutdown(ctx))
			p = nil
		}
	}()
	provider := o.FlagProvider
	if provider == nil {
		p.Percent = rollout.NewPercentProvider(p.Settings.Enabled, p.Settings.RolloutPercent)
		provider = p.Percent
	}
	if p.rollout, err = rollout.New(ctx, provider, getenv); err != nil {
		return p, fmt.Errorf("dynretry: rollout: %w", err)
	}
	obs := hooks.Observe(p.telemetry.Observer())
	opts := []retry.Option{retry.WithObserver(obs)}
	if o.Store != nil {
		opts = append(opts, retry.WithStore(o.Store))
	}
	if p.retrier, err = retry.New(p.Settings.Engine, opts...); err != nil {
		return p, fmt.Errorf("dynretry: %w", err)
	}

	host.WrapLLM(hooks.Middleware(p.rollout, p.telemetry))
	host.WrapErrorReporter(hooks.Reporter)
	host.WrapTransport(func(base http.RoundTripper) http.RoundTripper { return hooks.NewTransport(base, p.retrier, obs) })

	attrs := []any{"config", p.Settings.Source}
	if p.Percent != nil {
		attrs = append(attrs, "enabled", p.Settings.Enabled, "rollout_percent", p.Settings.RolloutPercent)
	} else {
		attrs = append(attrs, "flag_provider", provider.Metadata().Name)
	}
	if o.RunID != "" {
		a := p.rollout.Assign(ctx, o.RunID)
		attrs = append(attrs, "run_id", o.RunID, "cohort", a.Cohort, "flag_provider", a.Provider, "variant", a.Variant)
	}
	log.Info("dynretry registered", attrs...)
	return p, nil
}

// Shutdown shuts the rollout down and flushes telemetry. It is safe to call
// more than once.
func (p *Plugin) Shutdown(ctx context.Context) error {
	var errs []error
	if p.rollout != nil {
		errs = append(errs, p.rollout.Shutdown(ctx))
	}
	if p.telemetry != nil {
		errs = append(errs, p.telemetry.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// Telemetry returns the plugin's telemetry, for its metrics handler.
func (p *Plugin) Telemetry() *telemetry.Telemetry { return p.telemetry }

// otlpWanted reports whether the standard OpenTelemetry variables ask for
// OTLP export: an OTLP endpoint is set, or OTEL_TRACES_EXPORTER is "otlp";
// OTEL_TRACES_EXPORTER=none keeps it off.
func otlpWanted(getenv func(string) string) bool {
	switch strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))) {
	case "none":
		return false
	case "otlp":
		return true
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// lookup returns a getenv over environ; the last assignment of a name wins,
// as in os/exec.
func lookup(environ []string) func(string) string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}
