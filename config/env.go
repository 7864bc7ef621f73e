package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/v2"
)

// notKeys are the DYNRETRY_ variables that are not keys of the section.
var notKeys = []string{envConfig, "DYNRETRY_DEMO_API_KEY"}

// readEnv reads the DYNRETRY_* variables of vars into a layer (every value
// a string; an empty value means unset) and returns which variable set
// each key. A variable that names no key, or whose value its key refuses,
// is an error naming the variable; the first in name order is reported.
func readEnv(vars map[string]string) (*koanf.Koanf, map[string]string, error) {
	var names []string
	for name := range vars {
		if strings.HasPrefix(name, envPrefix) && !slices.Contains(notKeys, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	byKey := make(map[string]string) // key → variable
	keyOf := make(map[string]string) // variable → key
	for _, name := range names {
		key, why := envKey(name)
		if why != "" {
			return nil, nil, fmt.Errorf("config: environment %s: %s", name, why)
		}
		byKey[key], keyOf[name] = name, key
	}
	k := koanf.New(".")
	err := k.Load(env.Provider(".", env.Opt{
		Prefix: envPrefix,
		TransformFunc: func(name, value string) (string, any) {
			return keyOf[name], strings.TrimSpace(value)
		},
		EnvironFunc: func() []string {
			out := make([]string, len(names))
			for i, n := range names {
				out[i] = n + "=" + vars[n]
			}
			return out
		},
	}), nil)
	if err != nil { // the env provider does not fail; kept for safety
		return nil, nil, fmt.Errorf("config: environment: %w", err)
	}

	// The first problem in variable order. A value problem of an empty
	// variable does not count: empty means unset.
	var first struct{ name, msg string }
	for _, p := range decodeLayer(k) {
		name := setter(names, keyOf, p.key)
		value := strings.TrimSpace(vars[name])
		msg := p.msg
		switch {
		case p.kind == unknownClass:
		case p.kind == unknownKey || keyOf[name] != p.key: // a key below a value
			msg = fmt.Sprintf("unknown variable: %s has no key %q (write each \".\" of a key as \"__\")", section, keyOf[name])
		case p.kind == notMap:
			msg = fmt.Sprintf("%s.%s is a map: set one of its keys, e.g. %s__%s", section, p.key, name, strings.ToUpper(example(typeAt(p.key))))
		case value == "":
			continue
		}
		if first.name == "" || name < first.name {
			first.name, first.msg = name, msg
		}
	}
	if first.name != "" {
		return nil, nil, fmt.Errorf("config: environment %s: %s", first.name, first.msg)
	}
	for _, name := range names {
		if strings.TrimSpace(vars[name]) == "" {
			k.Delete(keyOf[name])
			delete(byKey, keyOf[name])
		}
	}
	return k, byKey, nil
}

// envKey maps the variable name, which starts with DYNRETRY_, to the key it
// sets (dotted, relative to the section), or says why it sets none.
func envKey(name string) (key, why string) {
	rest := strings.ToLower(strings.TrimPrefix(name, envPrefix))
	parts := strings.Split(rest, "__")
	key = strings.Join(parts, ".")
	switch {
	case slices.Contains(parts, "") || strings.Contains(rest, "."):
		return "", fmt.Sprintf("unknown variable: %s has no key %q (write each \".\" of a key as \"__\")", section, key)
	case key == "enabled":
		return "", "not a setting: " + rollout.EnvVar + " overrides enabled"
	}
	return key, ""
}

// setter returns the first variable, in name order, that sets key or a key
// below it.
func setter(names []string, keyOf map[string]string, key string) string {
	for _, n := range names {
		if k := keyOf[n]; k == key || strings.HasPrefix(k, key+".") {
			return n
		}
	}
	return ""
}

// example returns a key below a map of type t, as a variable would write
// it: the first field of a struct, the first class of the policies.
func example(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct:
		name := t.Field(0).Tag.Get("koanf")
		if sub := t.Field(0).Type; sub.Kind() == reflect.Struct || sub.Kind() == reflect.Map {
			name += "__" + example(sub)
		}
		return name
	case reflect.Map:
		return string(retry.Classes[0]) + "__" + example(t.Elem())
	}
	return ""
}
