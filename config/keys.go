package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
)

// draft is a configuration being built, layer by layer, before validation.
type draft struct {
	enabled bool
	rollout float64
	eng     retry.Config
	// origin maps each key (relative to the section) set by a layer to
	// where the last value came from: a file path or "environment NAME".
	origin map[string]string
}

// The defaults of the keys that are not engine settings.
const (
	defaultEnabled = true
	defaultRollout = 10
)

func newDraft() *draft {
	return &draft{enabled: defaultEnabled, rollout: defaultRollout, eng: retry.DefaultConfig(), origin: map[string]string{}}
}

// origin says where one layer's values come from: a file, or variables.
type origin struct {
	file string            // the file path as given; "" for the environment
	vars map[string]string // key → variable name, for the environment
}

func (o origin) where(key string) string {
	if o.file != "" {
		return o.file
	}
	if v := o.vars[key]; v != "" {
		return "environment " + v
	}
	return "environment"
}

// A setter checks the value v of a key and stores it in the draft. It
// returns why v is refused, or "".
type setter func(d *draft, v any) string

// fields holds the keys of the section other than policies.<class>.*, by
// their dotted path relative to the section.
var fields = map[string]setter{
	"enabled": func(d *draft, v any) string {
		b, ok := toBool(v)
		if !ok {
			return whyBool
		}
		d.enabled = b
		return ""
	},
	"rollout_percent": func(d *draft, v any) string {
		f, why := toFloat(v)
		if why == "" && (f < 0 || f > 100) {
			why = "must be within [0, 100]"
		}
		if why == "" {
			d.rollout = f
		}
		return why
	},
	"max_hint":               engineDuration(func(c *retry.Config) *time.Duration { return &c.MaxHint }),
	"spread":                 engineFloat(func(c *retry.Config) *float64 { return &c.Spread }, ""),
	"spread_min":             engineDuration(func(c *retry.Config) *time.Duration { return &c.SpreadMin }),
	"spread_max":             engineDuration(func(c *retry.Config) *time.Duration { return &c.SpreadMax }),
	"budget.max_tokens":      engineFloat(func(c *retry.Config) *float64 { return &c.Budget.MaxTokens }, "; a negative value disables the budget"),
	"budget.ratio":           engineFloat(func(c *retry.Config) *float64 { return &c.Budget.Ratio }, ""),
	"overload.base":          engineDuration(func(c *retry.Config) *time.Duration { return &c.Overload.Base }),
	"overload.max":           engineDuration(func(c *retry.Config) *time.Duration { return &c.Overload.Max }),
	"overload.probe_timeout": engineDuration(func(c *retry.Config) *time.Duration { return &c.Overload.ProbeTimeout }),
}

// groups are the keys of the section that hold a map of fields.
var groups = []string{"budget", "overload"}

// policyFields holds the keys of policies.<class>.
var policyFields = map[string]func(p *retry.Policy, v any) string{
	"max_attempts": func(p *retry.Policy, v any) string {
		n, why := toInt(v)
		if why == "" {
			p.MaxAttempts = n
		}
		return why
	},
	"base": func(p *retry.Policy, v any) string { return setDuration(&p.Base, v) },
	"max":  func(p *retry.Policy, v any) string { return setDuration(&p.Max, v) },
	"multiplier": func(p *retry.Policy, v any) string {
		f, why := toFloat(v)
		if why == "" && f == 0 {
			why = zeroDefault(retry.DefaultPolicies[retry.ServerError].Multiplier, "")
		}
		if why == "" {
			p.Multiplier = f
		}
		return why
	},
	"jitter": func(p *retry.Policy, v any) string {
		s, ok := v.(string)
		switch {
		case !ok:
			return whyJitter
		case s == "":
			return zeroDefault(retry.JitterEqual, "")
		}
		p.Jitter = retry.Jitter(s) // checked by retry.Config.Validate
		return ""
	},
}

// engineDuration returns the setter of the positive duration get selects:
// 0 is refused because retry.Config reads it as the default.
func engineDuration(get func(*retry.Config) *time.Duration) setter {
	return func(d *draft, v any) string {
		var t time.Duration
		if why := setDuration(&t, v); why != "" {
			return why
		}
		if t == 0 {
			def := retry.DefaultConfig()
			return zeroDefault(*get(&def), "")
		}
		*get(&d.eng) = t
		return ""
	}
}

// engineFloat returns the setter of the non-zero number get selects: 0 is
// refused because retry.Config reads it as the default. more is appended to
// that refusal.
func engineFloat(get func(*retry.Config) *float64, more string) setter {
	return func(d *draft, v any) string {
		f, why := toFloat(v)
		if why != "" {
			return why
		}
		if f == 0 {
			def := retry.DefaultConfig()
			return zeroDefault(*get(&def), more)
		}
		*get(&d.eng) = f
		return ""
	}
}

// zeroDefault says why a zero is refused: the engine would read it as def.
func zeroDefault(def any, more string) string {
	zero := "0"
	if _, ok := def.(retry.Jitter); ok {
		zero = `""`
	}
	return fmt.Sprintf("must not be %s: the engine reads %s as its default (%v); leave the key out for the default%s", zero, zero, def, more)
}

// Why a value is refused.
const (
	whyBool     = "want true/false, 1/0, yes/no or on/off"
	whyDuration = `want a Go duration such as "500ms", "2s" or "1m30s"`
	whyUnit     = whyDuration + ": a number needs a unit"
	whyInt      = "want a whole number"
	whyNumber   = "want a number"
	whyFinite   = "must be a finite number"
	whyJitter   = `want "equal", "full" or "none"`
)

// toBool accepts a YAML boolean, the integers 0 and 1, and the strings
// rollout.ParseSwitch accepts.
func toBool(v any) (b, ok bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		return rollout.ParseSwitch(v)
	case int, int64, uint64:
		return rollout.ParseSwitch(fmt.Sprint(v))
	}
	return false, false
}

// setDuration stores a non-negative duration: a Go duration string, or the
// number 0.
func setDuration(dst *time.Duration, v any) string {
	var t time.Duration
	switch v := v.(type) {
	case string:
		s := strings.TrimSpace(v)
		var err error
		if t, err = time.ParseDuration(s); err != nil {
			if _, err := strconv.ParseFloat(s, 64); err == nil {
				return whyUnit
			}
			return whyDuration
		}
	case int, int64, uint64, float64:
		if f, _ := toFloat(v); f != 0 {
			return whyUnit
		}
	default:
		return whyDuration
	}
	if t < 0 {
		return "must not be negative"
	}
	*dst = t
	return ""
}

// toInt accepts a YAML integer or a string holding one.
func toInt(v any) (int, string) {
	switch v := v.(type) {
	case int:
		return v, ""
	case int64:
		if v == int64(int(v)) {
			return int(v), ""
		}
	case uint64:
		if v <= math.MaxInt {
			return int(v), ""
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n, ""
		}
	}
	return 0, whyInt
}

// toFloat accepts a finite YAML number or a string holding one.
func toFloat(v any) (float64, string) {
	var f float64
	switch v := v.(type) {
	case int:
		f = float64(v)
	case int64:
		f = float64(v)
	case uint64:
		f = float64(v)
	case float64:
		f = v
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, whyNumber
		}
	default:
		return 0, whyNumber
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, whyFinite
	}
	return f, ""
}

// apply checks the section map m, from the layer o, and stores its values
// in d. It returns the first problem, visiting keys in sorted order.
func (d *draft) apply(m map[string]any, o origin) error {
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch {
		case k == "policies":
			pm, ok := v.(map[string]any)
			if !ok {
				return d.refuse(o, k, v, "want a map of error classes to policies")
			}
			if err := d.applyPolicies(pm, o); err != nil {
				return err
			}
		case slices.Contains(groups, k):
			gm, ok := v.(map[string]any)
			if !ok {
				return d.refuse(o, k, v, "want a map with the keys "+strings.Join(keysUnder(k+"."), ", "))
			}
			for _, f := range sortedKeys(gm) {
				key := k + "." + f
				set, ok := fields[key]
				if !ok {
					return unknownKey(o.where(key), key, keysUnder(k+"."))
				}
				if err := d.set(o, key, gm[f], set); err != nil {
					return err
				}
			}
		default:
			set, ok := fields[k]
			if !ok || strings.Contains(k, ".") { // "budget.ratio" must nest
				return unknownKey(o.where(k), k, keysUnder(""))
			}
			if err := d.set(o, k, v, set); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyPolicies applies the map under policies. A class not yet configured
// starts from the server_error default.
func (d *draft) applyPolicies(pm map[string]any, o origin) error {
	for _, c := range sortedKeys(pm) {
		class, key := retry.Class(c), "policies."+c
		if !class.Valid() {
			return fmt.Errorf("config: %s: %s.%s: unknown error class (want one of %s)", o.where(key), section, key, classNames())
		}
		fm, ok := pm[c].(map[string]any)
		if !ok {
			return d.refuse(o, key, pm[c], "want a map with the keys "+strings.Join(sortedKeys(policyFields), ", "))
		}
		p, ok := d.eng.Policies[class]
		if !ok {
			p = retry.DefaultPolicies[retry.ServerError]
		}
		for _, f := range sortedKeys(fm) {
			fkey := key + "." + f
			set, ok := policyFields[f]
			if !ok {
				return unknownKey(o.where(fkey), fkey, sortedKeys(policyFields))
			}
			if why := set(&p, fm[f]); why != "" {
				return d.refuse(o, fkey, fm[f], why)
			}
			d.origin[fkey] = o.where(fkey)
		}
		d.eng.Policies[class] = p
	}
	return nil
}

func (d *draft) set(o origin, key string, v any, set setter) error {
	if why := set(d, v); why != "" {
		return d.refuse(o, key, v, why)
	}
	d.origin[key] = o.where(key)
	return nil
}

func (d *draft) refuse(o origin, key string, v any, why string) error {
	return fmt.Errorf("config: %s: %s.%s = %s: %s", o.where(key), section, key, show(v), why)
}

func unknownKey(where, key string, known []string) error {
	return fmt.Errorf("config: %s: %s.%s: unknown key (want one of %s)", where, section, key, strings.Join(known, ", "))
}

// keysUnder lists the names one level below prefix ("" for the section).
func keysUnder(prefix string) []string {
	var out []string
	for k := range fields {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			name, _, _ := strings.Cut(rest, ".")
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	if prefix == "" {
		out = append(out, "policies")
	}
	slices.Sort(out)
	return out
}

func classNames() string {
	names := make([]string, len(retry.Classes))
	for i, c := range retry.Classes {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// show renders a value for an error message, briefly.
func show(v any) string {
	const limit = 64
	switch v := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "{...}"
	case []any:
		return "[...]"
	case string:
		if len(v) > limit {
			cut := limit
			for cut > 0 && !utf8.RuneStart(v[cut]) {
				cut--
			}
			return strconv.Quote(v[:cut]) + "..."
		}
		return strconv.Quote(v)
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("a %T", v)
}
