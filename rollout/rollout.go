package rollout

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/multi"
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
	domain string
	multi  *multi.Provider
	client *openfeature.Client
	closed atomic.Bool
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
	r := &Rollout{
		domain: fmt.Sprintf("dynretry/rollout/%d", domainSeq.Add(1)),
		multi:  mp,
	}
	if err := openfeature.SetNamedProviderWithContextAndWait(ctx, r.domain, mp); err != nil {
		err = fmt.Errorf("rollout: New: %w", err)
		if serr := r.Shutdown(context.WithoutCancel(ctx)); serr != nil {
			err = errors.Join(err, serr)
		}
		return nil, err
	}
	r.client = openfeature.NewClient(r.domain)
	return r, nil
}

// Assign evaluates FlagKey for runID (the targeting key) and returns the call's cohort: Treatment when the
// flag is true, Control when it is false. It never fails: an evaluation error (an invalid EnvVar value, a
// missing run id, a provider error, FlagKey unknown to every provider, or a call after Shutdown) puts the
// call in Control and is returned in Assignment.Err. Safe for concurrent use.
//
// Assignment.Provider comes from the flag metadata the SDK's multi-provider adds to every result,
// "multiprovider-provider-type": the Metadata name of the provider whose answer (or error) was returned.
func (r *Rollout) Assign(ctx context.Context, runID string) Assignment {
	a := Assignment{Cohort: Control, FlagKey: FlagKey}
	if r.closed.Load() {
		a.Reason = string(openfeature.ErrorReason)
		a.Err = ErrShutdown
		return a
	}
	d, err := r.client.BooleanValueDetails(ctx, FlagKey, false, openfeature.NewEvaluationContext(runID, nil))
	a.Reason = string(d.Reason)
	a.Provider, _ = d.FlagMetadata[multi.MetadataProviderType].(string)
	if err != nil {
		if d.Reason == "" {
			a.Reason = string(openfeature.ErrorReason)
		}
		a.Err = fmt.Errorf("rollout: %s for run %q: %w", FlagKey, runID, err)
		return a
	}
	a.Variant = d.Variant
	if d.Value {
		a.Cohort = Treatment
	}
	return a
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
