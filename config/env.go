package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/autopack/dynretry/retry"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/v2"
)

// notKeys are the DYNRETRY_ variables that are not keys of the section.
var notKeys = []string{envConfig, "DYNRETRY_DEMO_API_KEY"}

// readEnv reads the DYNRETRY_* variables of environ into a section map, as
// the file would hold it (every value a string), and returns which variable
// set each key. A variable that names no key is an error; the first such
// variable in name order is reported.
func readEnv(environ []string) (map[string]any, map[string]string, error) {
	last := lastValues(environ)
	names := make([]string, 0, len(last))
	for name := range last {
		if strings.HasPrefix(name, envPrefix) && !slices.Contains(notKeys, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	byKey := make(map[string]string)
	problems := make(map[string]string)
	transform := func(name, value string) (string, any) {
		key, why := envKey(name)
		if why != "" {
			problems[name] = why
			return "", nil
		}
		value = strings.TrimSpace(value)
		if value == "" { // empty means unset
			return "", nil
		}
		byKey[key] = name
		return key, value
	}
	k := koanf.New(".")
	err := k.Load(env.Provider(".", env.Opt{
		Prefix:        envPrefix,
		TransformFunc: transform,
		EnvironFunc: func() []string {
			out := make([]string, len(names))
			for i, n := range names {
				out[i] = n + "=" + last[n]
			}
			return out
		},
	}), nil)
	if err != nil { // the env provider does not fail; kept for safety
		return nil, nil, fmt.Errorf("config: environment: %w", err)
	}
	for _, name := range names {
		if why, ok := problems[name]; ok {
			return nil, nil, fmt.Errorf("config: environment %s: %s", name, why)
		}
	}
	return k.Raw(), byKey, nil
}

// envKey maps the variable name, which starts with DYNRETRY_, to the key it
// sets (dotted, relative to the section), or says why it sets none.
func envKey(name string) (key, why string) {
	rest := strings.ToLower(strings.TrimPrefix(name, envPrefix))
	parts := strings.Split(rest, "__")
	key = strings.Join(parts, ".")
	unknown := fmt.Sprintf("unknown variable: %s has no key %q (write each \".\" of a key as \"__\")", section, key)
	if slices.Contains(parts, "") || strings.Contains(rest, ".") {
		return "", unknown
	}
	switch {
	case key == "enabled":
		return "", "not a setting: " + envEnabled + " overrides enabled"
	case key == "policies" || slices.Contains(groups, key):
		example := "RATE_LIMITED__MAX_ATTEMPTS"
		if key != "policies" {
			example = strings.ToUpper(keysUnder(key + ".")[0])
		}
		return "", fmt.Sprintf("%s.%s is a map: set one of its keys, e.g. %s__%s", section, key, name, example)
	case parts[0] == "policies":
		if !retry.Class(parts[1]).Valid() {
			return "", fmt.Sprintf("%s.policies.%s: unknown error class (want one of %s)", section, parts[1], classNames())
		}
		if len(parts) == 2 {
			return "", fmt.Sprintf("%s.%s is a map: set one of its keys, e.g. %s__MAX_ATTEMPTS", section, key, name)
		}
		if _, ok := policyFields[parts[2]]; !ok || len(parts) > 3 {
			return "", unknown
		}
		return key, ""
	}
	if _, ok := fields[key]; !ok {
		return "", unknown
	}
	return key, ""
}
