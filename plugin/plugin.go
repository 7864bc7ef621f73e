// Package plugin registers dynretry with the runner at startup.
//
//	p, err := plugin.Register(ctx, host, plugin.Options{})
//	if err != nil { … }          // a bad models.yaml or env value: nothing was installed
//	defer p.Shutdown(ctx)        // stops watching models.yaml, flushes telemetry
//
// Register loads the configuration (models.yaml and the environment), sets
// up the rollout flag through OpenFeature, builds telemetry, and installs
// the hooks: the LLM-service middleware, the transport for the SDK clients
// and the error-reporter decorator. It then watches models.yaml: every
// change applies to the next call, and a bad edit is refused, logged and
// counted while the last good configuration stays in force.
//
// The plugin compiles no exporter: where telemetry goes is chosen by the
// caller in Options.Telemetry, with package telemetry/export (the standard
// OTEL_* variables, a trace file, Prometheus). Nor does it compile the Redis
// client: a runner whose fleet shares pacing state (coordination.backend:
// redis) passes plugin/coordination's Open as Options.OpenStore.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/autopack/dynretry/config"
	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
	"github.com/open-feature/go-sdk/openfeature"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MetricConfigReload counts the reloads of models.yaml, by outcome
// (AttrOutcome "ok" or "error").
const MetricConfigReload = "dynretry.config.reload"

// Options are Register's optional parts; the zero value is valid.
type Options struct {
	// ConfigPath is the models.yaml to read; "" means $DYNRETRY_CONFIG when
	// set, else the defaults. The file read is watched for changes.
	ConfigPath string
	// Environ is the environment, as os.Environ returns it; nil means the
	// process's, read live: DYNRETRY_* settings at startup and at each
	// reload, LOVABLE_DYNAMIC_RETRY_DELAYS (os.Getenv) at every flag
	// evaluation, so setting, changing or unsetting it applies to the next
	// call. A given Environ is a fixed environment. An invalid
	// LOVABLE_DYNAMIC_RETRY_DELAYS at startup fails Register.
	Environ []string
	// FlagProvider decides the rollout; nil means a percentage rollout
	// built from the configuration (enabled, rollout_percent). The
	// LOVABLE_DYNAMIC_RETRY_DELAYS variable wins over any provider.
	FlagProvider openfeature.FeatureProvider
	// Telemetry is where spans and metrics go (see telemetry/export); the
	// plugin owns its exporters and readers: Shutdown, or a Register that
	// fails, shuts them down. An empty PrometheusListen takes
	// telemetry.prometheus_listen from models.yaml (the program must then
	// give Prometheus: export.Prometheus), and a nil RolloutPercent reports
	// the rollout's percentage (rollout.Rollout.Percent: the configuration's,
	// or LOVABLE_DYNAMIC_RETRY_DELAYS's 0 or 100).
	Telemetry telemetry.Options
	// Store keeps pacing state; nil means the store the configuration's
	// coordination section names: in process memory, or shared through
	// OpenStore. Executors that share a Store hold back each other's calls
	// to a limit.
	Store retry.Store
	// OpenStore opens the shared store when the configuration names one
	// (coordination.backend: redis) and Store is nil: pass
	// coordination.Open (package plugin/coordination). nil: Register fails
	// for such a configuration, saying so. The plugin closes the store at
	// Shutdown, and reports it degraded through telemetry.
	OpenStore func(ctx context.Context, c config.Coordination, log *slog.Logger) (SharedStore, error)
	// RunID, when set, names the run this executor runs: Register logs the
	// run's cohort at startup.
	RunID string
	// Logger receives startup and reload messages; nil means slog.Default().
	Logger *slog.Logger
}

// A SharedStore is a pacing store that processes share.
type SharedStore interface {
	retry.Store
	// Degraded reports whether the store answers from its process's own
	// state because the shared one is unavailable.
	Degraded() bool
	// Close writes what is pending and releases the store.
	Close() error
}

// A Plugin is dynretry registered with a runner. Its methods are safe for
// concurrent use.
type Plugin struct {
	// Percent is the percentage provider when the configuration's rollout
	// is in use (Options.FlagProvider was nil), else nil. Its Set changes
	// the rollout for new calls without a restart; so does a change of
	// models.yaml.
	Percent *rollout.PercentProvider

	settings atomic.Pointer[config.Settings]
	// engine is the retrier of new calls. A reload swaps in a new one on
	// the same store, so pacing state carries over (the retry budget, kept
	// by the retrier, starts afresh).
	engine    atomic.Pointer[retry.Retrier]
	engineOpt []retry.Option
	observer  retry.Observer
	rollout   atomic.Pointer[rollout.Rollout] // set once Register has built it
	telemetry *telemetry.Telemetry
	shared    atomic.Pointer[sharedStore] // the store OpenStore opened, if any
	reloads   metric.Int64Counter
	log       *slog.Logger
	stopWatch func()
}

// Register loads the configuration, sets up the rollout and telemetry,
// installs dynretry's hooks with host, and watches the configuration file.
// On error nothing is installed and whatever was started, the exporters of
// o.Telemetry included, is shut down.
func Register(ctx context.Context, host hooks.Host, o Options) (p *Plugin, err error) {
	environ, getenv := o.Environ, os.Getenv
	if environ == nil {
		environ = os.Environ()
	} else {
		getenv = lookup(environ)
	}
	p = &Plugin{log: o.Logger, stopWatch: func() {}}
	if p.log == nil {
		p.log = slog.Default()
	}
	s, err := config.Load(o.ConfigPath, environ)
	if err == nil {
		_, _, err = rollout.EnvOverride(getenv) // refused at startup; the rollout reads it at every call
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("dynretry: %w", err), o.Telemetry.Shutdown(ctx))
	}
	p.settings.Store(&s)
	tel := o.Telemetry
	if tel.PrometheusListen == "" {
		tel.PrometheusListen = s.Telemetry.PrometheusListen
	}
	if tel.RolloutPercent == nil {
		tel.RolloutPercent = p.rolloutPercent
	}
	if tel.CoordinationDegraded == nil {
		if d, ok := o.Store.(interface{ Degraded() bool }); ok {
			tel.CoordinationDegraded = d.Degraded
		} else if o.Store == nil && s.Coordination.Backend != config.BackendMemory {
			tel.CoordinationDegraded = p.degraded
		}
	}
	if p.telemetry, err = telemetry.Setup(ctx, tel); err != nil {
		return nil, fmt.Errorf("dynretry: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Shutdown(ctx))
			p = nil
		}
	}()
	if p.reloads, err = p.telemetry.MeterProvider().Meter(telemetry.ScopeName).Int64Counter(MetricConfigReload,
		metric.WithUnit("{reload}"), metric.WithDescription("Reloads of models.yaml, by outcome (ok, error).")); err != nil {
		return p, fmt.Errorf("dynretry: telemetry: %w", err)
	}
	provider := o.FlagProvider
	if provider == nil {
		p.Percent = rollout.NewPercentProvider(s.Enabled, s.RolloutPercent)
		provider = p.Percent
	}
	ro, err := rollout.New(ctx, provider, getenv)
	if err != nil {
		return p, fmt.Errorf("dynretry: rollout: %w", err)
	}
	p.rollout.Store(ro)
	store, creds, err := p.store(ctx, o, s.Coordination)
	if err != nil {
		return p, err
	}
	p.observer = hooks.Observe(p.telemetry.Observer())
	p.engineOpt = []retry.Option{retry.WithObserver(p.observer), retry.WithStore(store), retry.WithCredentials(creds)}
	r, err := retry.New(s.Engine, p.engineOpt...)
	if err != nil {
		return p, fmt.Errorf("dynretry: %w", err)
	}
	p.engine.Store(r)
	if p.stopWatch, err = config.Watch(o.ConfigPath, environ, p.reload); err != nil {
		p.stopWatch = func() {}
		return p, fmt.Errorf("dynretry: %w", err)
	}

	host.WrapLLM(hooks.Middleware(ro, p.telemetry))
	host.WrapErrorReporter(hooks.Reporter)
	host.WrapTransport(func(base http.RoundTripper) http.RoundTripper { return &liveTransport{base: base, p: p} })

	attrs := []any{"config", s.Source, "coordination", s.Coordination.Backend}
	if p.Percent != nil {
		attrs = append(attrs, "enabled", s.Enabled, "rollout_percent", s.RolloutPercent)
	} else {
		attrs = append(attrs, "flag_provider", provider.Metadata().Name)
	}
	if addr := p.telemetry.MetricsAddr(); addr != "" {
		attrs = append(attrs, "metrics", "http://"+addr+"/metrics")
	}
	if o.RunID != "" {
		a := ro.Assign(ctx, o.RunID, nil)
		attrs = append(attrs, "run_id", o.RunID, "cohort", a.Cohort, "flag_provider", a.Provider, "variant", a.Variant)
	}
	p.log.Info("dynretry registered", attrs...)
	return p, nil
}

// store returns the pacing store and the credentials that name API keys in
// it: o.Store, else the configuration's (in memory, or the shared one
// o.OpenStore opens).
func (p *Plugin) store(ctx context.Context, o Options, c config.Coordination) (retry.Store, *retry.Credentials, error) {
	var creds *retry.Credentials
	if c.CredentialSecret != "" {
		var err error
		if creds, err = retry.NewCredentials([]byte(c.CredentialSecret)); err != nil {
			return nil, nil, fmt.Errorf("dynretry: coordination.credential_secret: %w", err) // config checked it: not expected
		}
	}
	switch {
	case o.Store != nil:
		return o.Store, creds, nil
	case c.Backend == config.BackendMemory:
		return new(retry.MemoryStore), creds, nil
	case o.OpenStore == nil:
		return nil, nil, fmt.Errorf("dynretry: coordination.backend is %q, but this program cannot open that store: it must set plugin.Options.OpenStore (plugin/coordination.Open)", c.Backend)
	}
	s, err := o.OpenStore(ctx, c, p.log)
	if err != nil {
		return nil, nil, fmt.Errorf("dynretry: %w", err)
	}
	p.shared.Store(&sharedStore{s})
	return s, creds, nil
}

// sharedStore holds the store OpenStore opened.
type sharedStore struct{ SharedStore }

// degraded reports whether the shared store is degraded; false before it
// is opened.
func (p *Plugin) degraded() bool {
	s := p.shared.Load()
	return s != nil && s.Degraded()
}

// Settings returns the configuration in force: the one Register loaded, or
// the last good one models.yaml was changed to.
func (p *Plugin) Settings() config.Settings { return *p.settings.Load() }

// reload applies a configuration read after models.yaml changed: every key
// applies to the next call. A refused one leaves the last good one in force.
func (p *Plugin) reload(s config.Settings, err error) {
	ctx := context.Background()
	var r *retry.Retrier
	if err == nil {
		r, err = retry.New(s.Engine, p.engineOpt...)
	}
	if err != nil {
		p.reloads.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.AttrOutcome, "error")))
		p.log.Error("dynretry: models.yaml change refused; the last good configuration stays in force", "error", err)
		return
	}
	if old := p.settings.Load().Coordination; s.Coordination != old {
		// The store and the credentials' names are the process's: they
		// change at the next start.
		s.Coordination = old
		p.log.Warn("dynretry: the coordination section of models.yaml changed: it applies at the next start; the rest applies now")
	}
	p.engine.Store(r)
	if p.Percent != nil {
		p.Percent.Set(s.Enabled, s.RolloutPercent)
	}
	if was := p.Settings().Telemetry.PrometheusListen; s.Telemetry.PrometheusListen != was {
		p.log.Warn("dynretry: telemetry.prometheus_listen changed; it applies when the runner starts again",
			"serving", was, "configured", s.Telemetry.PrometheusListen)
	}
	p.settings.Store(&s)
	p.reloads.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.AttrOutcome, "ok")))
	p.log.Info("dynretry: models.yaml reloaded", "config", s.Source, "enabled", s.Enabled, "rollout_percent", s.RolloutPercent)
}

// Shutdown stops watching models.yaml, shuts the rollout down, closes the
// shared store it opened (writing what is pending) and flushes telemetry.
// It is safe to call more than once.
func (p *Plugin) Shutdown(ctx context.Context) error {
	p.stopWatch()
	var errs []error
	if ro := p.rollout.Load(); ro != nil {
		errs = append(errs, ro.Shutdown(ctx))
	}
	if s := p.shared.Load(); s != nil {
		errs = append(errs, s.Close())
	}
	if p.telemetry != nil {
		errs = append(errs, p.telemetry.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// rolloutPercent is the rollout gauge's value: the share of runs the
// rollout puts in the treatment cohort, as the live configuration (or
// LOVABLE_DYNAMIC_RETRY_DELAYS) sets it; NaN when another flag provider
// decides, or before the rollout is built.
func (p *Plugin) rolloutPercent() float64 {
	if ro := p.rollout.Load(); ro != nil {
		return ro.Percent()
	}
	return math.NaN()
}

// Telemetry returns the plugin's telemetry.
func (p *Plugin) Telemetry() *telemetry.Telemetry { return p.telemetry }

// liveTransport sends through a hooks.Transport of the plugin's current
// engine, so that a reload applies to the next request.
type liveTransport struct {
	base http.RoundTripper
	p    *Plugin
	cur  atomic.Pointer[engineTransport]
}

// engineTransport is the hooks.Transport built for one retrier.
type engineTransport struct {
	r *retry.Retrier
	t *hooks.Transport
}

// RoundTrip implements http.RoundTripper.
func (l *liveTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := l.p.engine.Load()
	et := l.cur.Load()
	if et == nil || et.r != r {
		et = &engineTransport{r: r, t: hooks.NewTransport(l.base, r, l.p.observer)}
		l.cur.Store(et)
	}
	return et.t.RoundTrip(req)
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
