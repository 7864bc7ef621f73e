package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/v2"
)

// A problem is one refused key of a layer: the key, relative to the
// section, and the error message after "config: WHERE: ".
type problem struct {
	key string
	// kind tells what the message is about, for the environment's own
	// wording (see env.go).
	kind problemKind
	msg  string
}

type problemKind int

const (
	badValue     problemKind = iota // a value of the wrong type or out of range
	notMap                          // a value where a map of keys belongs
	unknownKey                      // a key the section does not have
	unknownClass                    // a policies entry that names no error class
)

// decodeLayer unmarshals the layer k (the section's keys at its root) into
// a copy of the defaults, with the section's rules, and returns the
// layer's problems in key order.
func decodeLayer(k *koanf.Koanf) []problem {
	s := defaults()
	err := k.UnmarshalWithConf("", &s, unmarshalConf(true, nil))
	var out []problem
	var other error // an error of the decoder's own: its unused-keys error
	for _, e := range leaves(err) {
		var r *refusal
		var de *mapstructure.DecodeError
		if errors.As(e, &r) && errors.As(e, &de) {
			out = append(out, r.problem(keyOf(de.Name())))
		} else {
			other = e
		}
	}
	if other != nil {
		// The decoder names the unused keys in its metadata only when it
		// does not fail for them.
		var meta mapstructure.Metadata
		s := defaults()
		_ = k.UnmarshalWithConf("", &s, unmarshalConf(false, &meta))
		for _, u := range meta.Unused {
			key := keyOf(u)
			parent, _ := cutLast(key)
			out = append(out, problem{key: key, kind: unknownKey, msg: fmt.Sprintf("%s.%s: unknown key (want one of %s)", section, key, strings.Join(keysOf(typeAt(parent)), ", "))})
		}
		if len(meta.Unused) == 0 {
			out = append(out, problem{kind: badValue, msg: section + ": " + other.Error()})
		}
	}
	slices.SortStableFunc(out, func(a, b problem) int { return strings.Compare(a.key, b.key) })
	return out
}

// unmarshalConf is how every layer is unmarshalled: exact key names, the
// section's rules in the hook, and every key used unless unused is false
// (then meta, if not nil, lists the unused keys).
func unmarshalConf(errorUnused bool, meta *mapstructure.Metadata) koanf.UnmarshalConf {
	return koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook:  mapstructure.DecodeHookFuncValue(hook),
		ErrorUnused: errorUnused,
		Metadata:    meta,
		MatchName:   func(key, field string) bool { return key == field },
	}}
}

// leaves returns the errors joined in err, depth first.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// A refusal is why the hook refused a value.
type refusal struct {
	value any
	why   string
	kind  problemKind
	sub   string // for unknownClass: the class, below the key decoded
}

func (r *refusal) Error() string { return r.why }

func (r *refusal) problem(key string) problem {
	switch r.kind {
	case unknownClass:
		key += "." + r.sub
		return problem{key: key, kind: unknownClass, msg: fmt.Sprintf("%s.%s: unknown error class (want one of %s)", section, key, classNames())}
	}
	return problem{key: key, kind: r.kind, msg: fmt.Sprintf("%s.%s = %s: %s", section, key, show(r.value), r.why)}
}

func refuse(v reflect.Value, why string) error {
	return &refusal{value: valueOf(v), why: why}
}

// keyOf turns a decoder's field name ("policies[rate_limited].base") into
// a key ("policies.rate_limited.base").
func keyOf(name string) string {
	name = strings.ReplaceAll(name, "[", ".")
	return strings.ReplaceAll(name, "]", "")
}

// cutLast splits key at its last ".": "a.b.c" → "a.b", "c".
func cutLast(key string) (parent, name string) {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

// null stands for a YAML null in a layer, so that the hook sees it (the
// decoder would otherwise skip it or pass the zero value).
type null struct{}

var (
	durationType = reflect.TypeFor[time.Duration]()
	policiesType = reflect.TypeFor[map[retry.Class]policy]()
	nullType     = reflect.TypeFor[null]()
)

// hook converts the value from into the type of to, enforcing that type's
// rule, or returns a *refusal saying why it cannot. to holds the value
// being replaced: the default, for the section's own fields.
func hook(from, to reflect.Value) (any, error) {
	if from.Type() == to.Type() { // the defaults' own values
		return from.Interface(), nil
	}
	v := valueOf(from)
	if c, ok := valueOf(to).(checker); ok {
		return c.check(v)
	}
	switch to.Type() {
	case policiesType:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, &refusal{value: v, why: "want a map of error classes to policies", kind: notMap}
		}
		for _, c := range slices.Sorted(maps.Keys(m)) {
			if !retry.Class(c).Valid() {
				return nil, &refusal{kind: unknownClass, sub: c}
			}
		}
		return v, nil
	case reflect.TypeFor[retry.Jitter]():
		s, ok := v.(string)
		switch {
		case !ok:
			return nil, refuse(from, `want "equal", "full" or "none"`)
		case s == "":
			return nil, refuse(from, zeroDefault(retry.JitterEqual, ""))
		}
		return retry.Jitter(s), nil // the values are checked by retry.Config.Validate
	case reflect.TypeFor[bool]():
		b, ok := toBool(v)
		if !ok {
			return nil, refuse(from, whyBool)
		}
		return b, nil
	case reflect.TypeFor[percent]():
		f, why := toFloat(v)
		if why == "" && (f < 0 || f > 100) {
			why = "must be within [0, 100]"
		}
		return percent(f), orNil(from, why)
	case reflect.TypeFor[setting]():
		d, why := toDuration(v)
		if why == "" && d == 0 {
			why = zeroDefault(time.Duration(to.Int()), "")
		}
		if why == "" {
			why = within(d, minDuration, maxDuration)
		}
		return setting(d), orNil(from, why)
	case reflect.TypeFor[backoff]():
		d, why := toDuration(v)
		if why == "" && d != 0 {
			why = within(d, 0, maxDuration)
		}
		return backoff(d), orNil(from, why)
	case reflect.TypeFor[number](), reflect.TypeFor[tokens]():
		more := ""
		if to.Type() == reflect.TypeFor[tokens]() {
			more = "; a negative value disables the budget"
		}
		f, why := toFloat(v)
		if why == "" && f == 0 {
			why = zeroDefault(to.Float(), more)
		}
		if why == "" && math.Abs(f) > maxNumber {
			why = fmt.Sprintf("must be within [%g, %g]", -maxNumber, maxNumber)
		}
		return reflect.ValueOf(f).Convert(to.Type()).Interface(), orNil(from, why)
	case reflect.TypeFor[multiplier]():
		f, why := toFloat(v)
		if why == "" && f == 0 {
			why = zeroDefault(retry.DefaultPolicies[retry.ServerError].Multiplier, "")
		}
		if why == "" && f > maxMultiplier {
			why = fmt.Sprintf("must be at most %d", maxMultiplier)
		}
		return multiplier(f), orNil(from, why)
	case reflect.TypeFor[attempts]():
		n, why := toInt(v)
		if why == "" && n > maxAttempts {
			why = fmt.Sprintf("must be at most %d", maxAttempts)
		}
		return attempts(n), orNil(from, why)
	}
	if to.Kind() == reflect.Struct {
		if _, ok := v.(map[string]any); !ok {
			return nil, &refusal{value: v, why: "want a map with the keys " + strings.Join(keysOf(to.Type()), ", "), kind: notMap}
		}
	}
	return v, nil
}

// valueOf returns the value held by v, nil for a null.
func valueOf(v reflect.Value) any {
	if !v.IsValid() || v.Type() == nullType {
		return nil
	}
	return v.Interface()
}

func orNil(from reflect.Value, why string) error {
	if why == "" {
		return nil
	}
	return refuse(from, why)
}

// within says why d is outside [lo, hi], or "".
func within(d, lo, hi time.Duration) string {
	switch {
	case d < 0:
		return "must not be negative"
	case d < lo:
		return "must be at least " + lo.String()
	case d > hi:
		return "must be at most " + hi.String()
	}
	return ""
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

// durationSyntax is what time.ParseDuration accepts; a string of this shape
// that it refuses is too large.
var durationSyntax = regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

// toDuration accepts a Go duration string, or the number 0.
func toDuration(v any) (time.Duration, string) {
	switch v := v.(type) {
	case string:
		s := strings.TrimSpace(v)
		d, err := time.ParseDuration(s)
		switch {
		case err == nil:
			return d, ""
		case durationSyntax.MatchString(s):
			return 0, fmt.Sprintf("overflows: a duration is at most %v", time.Duration(math.MaxInt64))
		}
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return 0, whyUnit
		}
	case int, int64, uint64, float64:
		if f, _ := toFloat(v); f == 0 {
			return 0, ""
		}
		return 0, whyUnit
	}
	return 0, whyDuration
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
		return 0, whyOverflowInt
	case uint64:
		if v <= math.MaxInt {
			return int(v), ""
		}
		return 0, whyOverflowInt
	case float64:
		if v == math.Trunc(v) && math.Abs(v) >= math.MaxInt64 {
			return 0, whyOverflowInt // YAML reads a very long integer as a float
		}
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err == nil {
			return n, ""
		}
		if errors.Is(err, strconv.ErrRange) {
			return 0, whyOverflowInt
		}
	}
	return 0, whyInt
}

const whyOverflowInt = "overflows: want a whole number of at most 9223372036854775807"

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
			if errors.Is(err, strconv.ErrRange) && math.IsInf(f, 0) {
				return 0, "overflows: must be a finite number"
			}
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

// typeAt returns the type of the section's value at key ("" for the
// section itself), following struct fields by their koanf tag and the
// policies map by its values; nil when there is none.
func typeAt(key string) reflect.Type {
	t := reflect.TypeFor[values]()
	if key == "" {
		return t
	}
	for name := range strings.SplitSeq(key, ".") {
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			f, ok := fieldByKey(t, name)
			if !ok {
				return nil
			}
			t = f.Type
		default:
			return nil
		}
	}
	return t
}

func fieldByKey(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("koanf") == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// keysOf lists the keys of a struct type, sorted; nil for other types.
func keysOf(t reflect.Type) []string {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	out := make([]string, t.NumField())
	for i := range out {
		out[i] = t.Field(i).Tag.Get("koanf")
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

// show renders a value for an error message, briefly.
func show(v any) string {
	const limit = 64
	switch v := v.(type) {
	case nil:
		return "null"
	case hidden:
		return "(not shown)"
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
