package rollout

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/open-feature/go-sdk/openfeature"
)

// EnvProviderName is the Metadata name of an [EnvProvider].
const EnvProviderName = "dynretry-env"

// Variants served by EnvProvider.
const (
	variantEnvOn  = "env-on"
	variantEnvOff = "env-off"
)

// EnvProvider is an OpenFeature provider that answers [FlagKey] from the environment variable [EnvVar]
// (LOVABLE_DYNAMIC_RETRY_DELAYS). The variable is read at every evaluation, so changing it applies to the
// next evaluation.
//
// Results for FlagKey, after trimming spaces from the value:
//   - true, 1, yes, on (any case): value true, variant "env-on", reason STATIC;
//   - false, 0, no, off (any case): value false, variant "env-off", reason STATIC;
//   - unset or empty: FLAG_NOT_FOUND, so a multi-provider asks the next provider;
//   - anything else: the caller's default value, reason ERROR, error code PARSE_ERROR with a message that
//     names the variable and quotes the value.
//
// Any other flag key gives FLAG_NOT_FOUND; FlagKey evaluated as anything but a boolean gives TYPE_MISMATCH.
// It needs no initialization or shutdown, emits no events and has no hooks. It is safe for concurrent use
// when its getenv is.
type EnvProvider struct {
	boolOnly
	getenv func(string) string
}

var _ openfeature.FeatureProvider = (*EnvProvider)(nil)

// NewEnvProvider returns a provider that reads EnvVar through getenv; a nil getenv means [os.Getenv].
func NewEnvProvider(getenv func(string) string) *EnvProvider {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &EnvProvider{boolOnly: boolOnly{EnvProviderName}, getenv: getenv}
}

// ParseSwitch parses the spellings EnvVar accepts: true, 1, yes, on and
// false, 0, no, off, in any case, surrounding spaces trimmed. ok is false for
// anything else, the empty string included.
func ParseSwitch(s string) (on, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, true
	case "false", "0", "no", "off":
		return false, true
	}
	return false, false
}

// EnvOverride reads [EnvVar] through getenv (nil means [os.Getenv]) and reports what it asks: on is the
// flag value, and set is false when the variable is unset or blank (it does not decide). A value that is
// not one of ParseSwitch's spellings is an error naming the variable and quoting the value. It is the
// one reader of EnvVar: [EnvProvider] calls it at every evaluation, [Rollout.Percent] when asked, and a
// caller may call it at startup to refuse a bad value early.
func EnvOverride(getenv func(string) string) (on, set bool, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	value := getenv(EnvVar)
	if strings.TrimSpace(value) == "" {
		return false, false, nil
	}
	if on, ok := ParseSwitch(value); ok {
		return on, true, nil
	}
	return false, true, fmt.Errorf("%s=%q is not a boolean: want true/false, 1/0, yes/no or on/off", EnvVar, value)
}

// BooleanEvaluation resolves FlagKey as documented on [EnvProvider].
func (p *EnvProvider) BooleanEvaluation(_ context.Context, flag string, defaultValue bool, _ openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	if flag != FlagKey {
		return boolError(defaultValue, openfeature.NewFlagNotFoundResolutionError("flag "+flag+" is not served by "+EnvProviderName))
	}
	on, set, err := EnvOverride(p.getenv)
	switch {
	case err != nil:
		return boolError(defaultValue, openfeature.NewParseErrorResolutionError(err.Error()))
	case !set:
		return boolError(defaultValue, openfeature.NewFlagNotFoundResolutionError(EnvVar+" is not set"))
	}
	variant := variantEnvOff
	if on {
		variant = variantEnvOn
	}
	return openfeature.BoolResolutionDetail{
		Value: on,
		ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
			Reason:  openfeature.StaticReason,
			Variant: variant,
		},
	}
}
