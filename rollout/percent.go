package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"sync/atomic"

	"github.com/open-feature/go-sdk/openfeature"
)

// PercentProviderName is the Metadata name of a [PercentProvider].
const PercentProviderName = "dynretry-percent"

// Variants served by PercentProvider.
const (
	variantOn  = "on"
	variantOff = "off"
)

// Flag metadata keys set by PercentProvider.
const (
	metadataPercent = "dynretry.rollout.percent"
	metadataBucket  = "dynretry.rollout.bucket"
)

// bucketSalt prefixes the run id before hashing, so this flag's buckets are independent of any other
// percentage rollout keyed by run id.
const bucketSalt = FlagKey + "/"

// Bucket maps a run id to a number in [0, 100). The mapping is a contract, stable across processes,
// machines and versions: the first 8 bytes of SHA-256("dynamic-retry-delays/" + runID), read as a
// big-endian uint64, keep their top 53 bits k, and Bucket = 100·k/2⁵³.
//
// A run is in the treatment cohort at percentage p exactly when Bucket(runID) < p, so raising p only adds
// runs: a run on at 10% is on at 50% and at 100%, and lowering p back only removes runs.
func Bucket(runID string) float64 {
	sum := sha256.Sum256([]byte(bucketSalt + runID))
	k := binary.BigEndian.Uint64(sum[:8]) >> 11 // 53 bits: exactly representable as a float64
	b := float64(k) / (1 << 53) * 100
	if b >= 100 { // unreachable with round-to-nearest; kept so the documented range is a guarantee
		b = math.Nextafter(100, 0)
	}
	return b
}

// PercentProvider is an OpenFeature provider that serves the boolean flag [FlagKey] as a percentage
// rollout by targeting key (the run id): the flag is on for a run exactly when the provider is enabled and
// Bucket(runID) < percent.
//
// Results for FlagKey:
//   - enabled, targeting key set: value Bucket(key) < percent, variant "on" or "off", reason TARGETING_MATCH,
//     flag metadata "dynretry.rollout.percent" (the
//     percentage in force) and "dynretry.rollout.bucket" (the run's bucket), both float64;
//   - disabled (the kill switch): value false, variant "off", reason DISABLED, whatever the targeting key;
//   - enabled, targeting key missing or empty: the caller's default value, reason ERROR, error code
//     TARGETING_KEY_MISSING.
//
// Any other flag key gives FLAG_NOT_FOUND (so a multi-provider asks the next provider); FlagKey evaluated as
// anything but a boolean gives TYPE_MISMATCH. It needs no initialization or shutdown, emits no events and
// has no hooks. It is safe for concurrent use; the zero value is not usable, call [NewPercentProvider].
type PercentProvider struct {
	boolOnly
	state atomic.Pointer[percentState]
}

type percentState struct {
	enabled bool
	percent float64
}

var _ openfeature.FeatureProvider = (*PercentProvider)(nil)

// NewPercentProvider returns a provider serving FlagKey to percent per cent of runs when enabled.
// percent is clamped to [0, 100]; NaN counts as 0.
func NewPercentProvider(enabled bool, percent float64) *PercentProvider {
	p := &PercentProvider{boolOnly: boolOnly{PercentProviderName}}
	p.Set(enabled, percent)
	return p
}

// Set changes enabled and percent (clamped as in [NewPercentProvider]). Evaluations that start after Set
// returns use the new values; no restart or re-registration is needed. Safe for concurrent use with
// evaluations and other calls to Set.
func (p *PercentProvider) Set(enabled bool, percent float64) {
	p.state.Store(&percentState{enabled: enabled, percent: clampPercent(percent)})
}

// Percent is the share of runs the provider puts in Treatment: the percentage set, or 0 while it is
// disabled.
func (p *PercentProvider) Percent() float64 {
	s := p.state.Load()
	if !s.enabled {
		return 0
	}
	return s.percent
}

func clampPercent(p float64) float64 {
	switch {
	case math.IsNaN(p) || p < 0:
		return 0
	case p > 100:
		return 100
	default:
		return p
	}
}

// BooleanEvaluation resolves FlagKey as documented on [PercentProvider].
func (p *PercentProvider) BooleanEvaluation(_ context.Context, flag string, defaultValue bool, flatCtx openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	if flag != FlagKey {
		return boolError(defaultValue, openfeature.NewFlagNotFoundResolutionError("flag "+flag+" is not served by "+PercentProviderName))
	}
	s := p.state.Load()
	if !s.enabled {
		return openfeature.BoolResolutionDetail{
			Value: false,
			ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
				Reason:       openfeature.DisabledReason,
				Variant:      variantOff,
				FlagMetadata: openfeature.FlagMetadata{metadataPercent: s.percent},
			},
		}
	}
	runID, _ := flatCtx[openfeature.TargetingKey].(string)
	if runID == "" {
		return boolError(defaultValue, openfeature.NewTargetingKeyMissingResolutionError(
			FlagKey+" is a percentage rollout by run id: the evaluation context has no targeting key"))
	}
	b := Bucket(runID)
	on := b < s.percent
	variant := variantOff
	if on {
		variant = variantOn
	}
	return openfeature.BoolResolutionDetail{
		Value: on,
		ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
			Reason:       openfeature.TargetingMatchReason,
			Variant:      variant,
			FlagMetadata: openfeature.FlagMetadata{metadataPercent: s.percent, metadataBucket: b},
		},
	}
}

// boolError is the result of a failed boolean evaluation: the default value, reason ERROR.
func boolError(defaultValue bool, err openfeature.ResolutionError) openfeature.BoolResolutionDetail {
	return openfeature.BoolResolutionDetail{
		Value: defaultValue,
		ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
			ResolutionError: err,
			Reason:          openfeature.ErrorReason,
		},
	}
}

// notBoolean answers a non-boolean evaluation for a provider that serves only the boolean FlagKey.
// boolOnly is what the package's providers share: their name, no hooks,
// and the evaluations of a provider that serves only boolean flags:
// TYPE_MISMATCH for FlagKey and FLAG_NOT_FOUND for any other key.
type boolOnly struct{ name string }

// Metadata returns the provider's name: "dynretry-env" or "dynretry-percent".
func (b boolOnly) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: b.name} }

// Hooks returns no hooks.
func (b boolOnly) Hooks() []openfeature.Hook { return nil }

// StringEvaluation gives TYPE_MISMATCH for FlagKey and FLAG_NOT_FOUND for any other key.
func (b boolOnly) StringEvaluation(_ context.Context, flag string, defaultValue string, _ openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	return notBoolean(flag, defaultValue, b.name)
}

// FloatEvaluation gives TYPE_MISMATCH for FlagKey and FLAG_NOT_FOUND for any other key.
func (b boolOnly) FloatEvaluation(_ context.Context, flag string, defaultValue float64, _ openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	return notBoolean(flag, defaultValue, b.name)
}

// IntEvaluation gives TYPE_MISMATCH for FlagKey and FLAG_NOT_FOUND for any other key.
func (b boolOnly) IntEvaluation(_ context.Context, flag string, defaultValue int64, _ openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	return notBoolean(flag, defaultValue, b.name)
}

// ObjectEvaluation gives TYPE_MISMATCH for FlagKey and FLAG_NOT_FOUND for any other key.
func (b boolOnly) ObjectEvaluation(_ context.Context, flag string, defaultValue any, _ openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	return notBoolean(flag, defaultValue, b.name)
}

func notBoolean[T any](flag string, defaultValue T, provider string) openfeature.GenericResolutionDetail[T] {
	err := openfeature.NewFlagNotFoundResolutionError("flag " + flag + " is not served by " + provider)
	if flag == FlagKey {
		err = openfeature.NewTypeMismatchResolutionError(FlagKey + " is a boolean flag")
	}
	return openfeature.GenericResolutionDetail[T]{
		Value: defaultValue,
		ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
			ResolutionError: err,
			Reason:          openfeature.ErrorReason,
		},
	}
}
