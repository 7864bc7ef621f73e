package rollout

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync/atomic"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/multi"
	oftelemetry "github.com/open-feature/go-sdk/openfeature/telemetry"
)

// Cohort is the group a call belongs to for the comparison of dynretry with the SDKs' retries. Its values
// are the values of the span attribute dynretry.cohort.
type Cohort string

// The cohorts.
const (
	Treatment Cohort = "treatment" // dynretry decides retries
	Control   Cohort = "control"   // the SDKs' built-in retries, as before dynretry
)

// FlagKey is the key of the flag in every provider (feature_flag.key).
const FlagKey = "dynamic-retry-delays"

// EnvVar is the environment variable that overrides every provider; see [EnvProvider] for its values.
const EnvVar = "LOVABLE_DYNAMIC_RETRY_DELAYS"

// ErrShutdown is the error of an Assignment made after [Rollout.Shutdown].
var ErrShutdown = errors.New("rollout: shut down")

// Names of the providers inside the multi-provider. They are internal; [Assignment.Provider] reports the
// deciding provider's Metadata name instead.
const (
	multiNameEnv      = "env"
	multiNameProvider = "provider"
)

// domainSeq numbers the OpenFeature domains of the Rollouts of this process.
var domainSeq atomic.Uint64

// Rollout evaluates [FlagKey] through an OpenFeature client bound to a domain of its own. It is safe for
// concurrent use.
type Rollout struct {
	domain   string
	multi    *multi.Provider
	client   *openfeature.Client
	provider openfeature.FeatureProvider // the provider given to New
	getenv   func(string) string
	closed   atomic.Bool
	sticky   *sticky // nil when every call is evaluated
}

// Assignment is the outcome of one evaluation of FlagKey.
type Assignment struct {
	Cohort  Cohort
	FlagKey string // FlagKey
	// Variant is the variant served: "on", "off" (PercentProvider), "env-on", "env-off" (EnvProvider), the
	// variant name of another provider (e.g. flagd), or "" when the evaluation failed.
	Variant string
	// Reason is the OpenFeature reason: TARGETING_MATCH, STATIC, DISABLED, DEFAULT, SPLIT, ERROR, ...
	Reason string
	// Provider is the Metadata name of the provider that decided (feature_flag.provider.name), e.g.
	// "dynretry-env", "dynretry-percent", "flagd"; on an error, the provider that failed, or "" when no
	// provider answered (FLAG_NOT_FOUND everywhere, provider not ready, shut down).
	Provider string
	// Err is the evaluation error, if any; the Cohort is then Control.
	Err error
	// Event is the evaluation as the OpenTelemetry feature-flag conventions record it: the event
	// "feature_flag.evaluation" with feature_flag.key, feature_flag.provider.name (the deciding
	// provider), feature_flag.result.variant (or feature_flag.result.value), feature_flag.result.reason
	// (lower case), feature_flag.context.id (the run id) and, on an error, error.type and error.message.
	// OpenFeature's telemetry helper (openfeature/telemetry.CreateEvaluationEvent) builds it.
	Event oftelemetry.EvaluationEvent
}

// New registers, under an OpenFeature domain unique to the returned Rollout, a multi-provider with the
// strategy FirstMatch over an [EnvProvider] reading getenv (nil means [os.Getenv]) first and provider
// second, and returns once it is ready. So [EnvVar], when set, wins over provider both ways; when unset,
// provider decides. Several Rollouts can exist in one process without sharing state.
//
// New takes ownership of provider: [Rollout.Shutdown] shuts it down, so give each Rollout its own. An error
// from provider's initialization (e.g. a flagd flag file that cannot be read) or from ctx is returned after
// the providers have been shut down again.
func New(ctx context.Context, provider openfeature.FeatureProvider, getenv func(string) string) (*Rollout, error) {
	if provider == nil {
		return nil, errors.New("rollout: New: nil provider")
	}
	mp, err := multi.NewProvider(multi.StrategyFirstMatch,
		multi.WithProvider(multiNameEnv, NewEnvProvider(getenv)),
		multi.WithProvider(multiNameProvider, provider),
	)
	if err != nil {
		return nil, fmt.Errorf("rollout: New: %w", err)
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	r := &Rollout{
		domain:   fmt.Sprintf("dynretry/rollout/%d", domainSeq.Add(1)),
		multi:    mp,
		provider: provider,
		getenv:   getenv,
	}
	if err := openfeature.SetNamedProviderWithContextAndWait(ctx, r.domain, mp); err != nil {
		err = fmt.Errorf("rollout: New: %w", err)
		if serr := r.Shutdown(context.WithoutCancel(ctx)); serr != nil {
			err = errors.Join(err, serr)
		}
		return nil, err
	}
	r.client = openfeature.NewClient(r.domain)
	r.sticky = newSticky(provider, r.client)
	return r, nil
}

// Assign evaluates FlagKey for runID (the targeting key) with the call's attributes attrs (the rest of
// the evaluation context: provider, model, role, a codebase size, ...; nil for none), and returns the
// call's cohort: Treatment when the flag is true, Control when it is false. A provider can target on any
// attribute, e.g. a flagd rule that turns the flag off when "codebase_size" is above a bound. attrs is
// not modified.
//
// It never fails: an evaluation error (an invalid EnvVar value, a missing run id, a provider error,
// FlagKey unknown to every provider, or a call after Shutdown) puts the call in Control and is returned
// in Assignment.Err. Safe for concurrent use.
//
// Assignment.Provider comes from the flag metadata the SDK's multi-provider adds to every result,
// "multiprovider-provider-type": the Metadata name of the provider whose answer (or error) was returned.
//
// Assignments are sticky: a successful one is kept and given again to the run's later calls with equal
// attrs (values of type string, bool, int, int64 or float64; others are evaluated every time) without
// an evaluation, as long as nothing that could change it changed: EnvVar holds the same value, a
// [PercentProvider] given to New was not Set since, and the provider emitted no event
// (PROVIDER_CONFIGURATION_CHANGED, READY, STALE, ERROR) since — an event forgets every assignment kept.
// So a provider that changes its answers must emit PROVIDER_CONFIGURATION_CHANGED, as the OpenFeature
// specification asks and flagd's providers do; with a provider that is neither a PercentProvider nor an
// openfeature.EventHandler, every call is evaluated. OpenFeature hooks see the evaluations only. The
// Event of an assignment given again is the evaluation's, its Attributes map shared: do not modify it.
// At most 4,096 runs and 8 attribute sets per run are kept.
func (r *Rollout) Assign(ctx context.Context, runID string, attrs map[string]any) Assignment {
	if r.sticky == nil || r.closed.Load() || !keepable(attrs) {
		return r.evaluate(ctx, runID, attrs)
	}
	env := r.getenv(EnvVar)
	var percent *percentState
	if p, ok := r.provider.(*PercentProvider); ok {
		percent = p.state.Load()
	}
	a, gen, ok := r.sticky.get(runID, attrs, env, percent)
	if ok {
		return a
	}
	a = r.evaluate(ctx, runID, attrs)
	if a.Err == nil {
		r.sticky.put(runID, attrs, env, percent, gen, a)
	}
	return a
}

// evaluate evaluates FlagKey for runID and attrs; see Assign.
func (r *Rollout) evaluate(ctx context.Context, runID string, attrs map[string]any) Assignment {
	a := Assignment{Cohort: Control, FlagKey: FlagKey}
	evalCtx := openfeature.NewEvaluationContext(runID, attrs)
	var d openfeature.BooleanEvaluationDetails
	var err error
	if r.closed.Load() {
		err = ErrShutdown
		d.ErrorCode, d.ErrorMessage = openfeature.GeneralCode, err.Error()
	} else {
		d, err = r.client.BooleanValueDetails(ctx, FlagKey, false, evalCtx)
	}
	a.Reason = string(d.Reason)
	a.Provider, _ = d.FlagMetadata[multi.MetadataProviderType].(string)
	if err != nil {
		if d.Reason == "" {
			d.Reason = openfeature.ErrorReason
			a.Reason = string(openfeature.ErrorReason)
		}
		if errors.Is(err, ErrShutdown) {
			a.Err = err
		} else {
			a.Err = fmt.Errorf("rollout: %s for run %q: %w", FlagKey, runID, err)
		}
	} else {
		a.Variant = d.Variant
		if d.Value {
			a.Cohort = Treatment
		}
	}
	hc := openfeature.NewHookContext(FlagKey, openfeature.Boolean, false, openfeature.NewClientMetadata(r.domain),
		openfeature.Metadata{Name: a.Provider}, evalCtx)
	a.Event = oftelemetry.CreateEvaluationEvent(hc, openfeature.InterfaceEvaluationDetails{Value: d.Value, EvaluationDetails: d.EvaluationDetails})
	if a.Provider == "" {
		delete(a.Event.Attributes, oftelemetry.ProviderNameKey)
	}
	return a
}

// Percent is the share of runs the rollout puts in Treatment, from 0 to 100, as far as it is known here:
// 100 or 0 when EnvVar forces every call on or off; the percentage in force of the provider given to
// New when it is a [PercentProvider] (0 while disabled); NaN otherwise (another provider, such as flagd,
// decides by rules this package does not read, or EnvVar holds an invalid value, which puts every call
// in Control with an error). It reads EnvVar at every call. Safe for concurrent use.
func (r *Rollout) Percent() float64 {
	on, set, err := EnvOverride(r.getenv)
	switch {
	case err != nil:
		return math.NaN()
	case set && on:
		return 100
	case set:
		return 0
	}
	if p, ok := r.provider.(*PercentProvider); ok {
		return p.Percent()
	}
	return math.NaN()
}

// Shutdown shuts down the providers given to New (waiting for them, within ctx) and releases the
// Rollout's OpenFeature domain. Later calls to Assign return Control with [ErrShutdown]. Calling Shutdown
// again does nothing and returns nil.
//
// It does not stop the OpenFeature SDK's own process-wide event goroutine, which lives until
// openfeature.Shutdown.
func (r *Rollout) Shutdown(ctx context.Context) error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	if r.sticky != nil {
		r.sticky.release(r.client)
	}
	err := r.multi.ShutdownWithContext(ctx)
	if err != nil {
		err = fmt.Errorf("rollout: Shutdown: %w", err)
	}
	// Replacing the domain's provider drops the SDK's references to ours and stops its listener on our
	// events. The SDK also calls the replaced provider's shutdown, in a goroutine of its own: that call
	// finds the multi-provider already shut down and returns at once.
	if serr := openfeature.SetNamedProviderWithContext(ctx, r.domain, openfeature.NoopProvider{}); serr != nil {
		err = errors.Join(err, fmt.Errorf("rollout: Shutdown: release domain %s: %w", r.domain, serr))
	}
	return err
}
