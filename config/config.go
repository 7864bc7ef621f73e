package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/autopack/dynretry/retry"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/structs"
	"github.com/knadh/koanf/v2"
)

// section is the path of dynretry's section in models.yaml.
const section = "lovable_patterns.p1_dynamic_retry_delays"

// The environment variables Load reads. LOVABLE_DYNAMIC_RETRY_DELAYS
// (rollout.EnvVar) is not one of them: the rollout reads it at every flag
// evaluation.
const (
	envConfig = "DYNRETRY_CONFIG"
	envPrefix = "DYNRETRY_"
)

// noSection is appended to Settings.Source when the file read has no
// dynretry section.
const noSection = " (no " + section + " section: defaults)"

// Settings is dynretry's validated configuration. Load returns it; a
// Settings built by hand is not validated.
type Settings struct {
	// Enabled is the switch of the configuration's percentage rollout:
	// lovable_patterns.p1_dynamic_retry_delays.enabled (default true). The
	// variable LOVABLE_DYNAMIC_RETRY_DELAYS is not folded in: it is read at
	// every flag evaluation by the rollout (rollout.EnvProvider) and wins
	// over Enabled both ways while it is set.
	Enabled bool
	// RolloutPercent is the share of runs in the treatment cohort, from 0
	// to 100 inclusive (default 10). 0 puts no run in it.
	RolloutPercent float64
	// Engine is the engine's configuration with every default filled in. It
	// has passed retry.Config.Validate and can be used as is; its Policies
	// map belongs to this Settings.
	Engine retry.Config
	// Telemetry is the telemetry section.
	Telemetry Telemetry
	// Proxy configures dynretry proxy.
	Proxy Proxy
	// Coordination says where pacing state is kept: in the process, or in
	// Redis, shared by the fleet.
	Coordination Coordination
	// Source names the file read, as given, for logs: "" when no file was
	// read, and the path followed by
	// " (no lovable_patterns.p1_dynamic_retry_delays section: defaults)"
	// when the file has no such section.
	Source string
}

// Telemetry is the section's telemetry settings.
type Telemetry struct {
	// PrometheusListen is the address ("host:port") to serve Prometheus's
	// /metrics on: telemetry.prometheus_listen, "" (the default) for none.
	PrometheusListen string
}

// MaxFileSize is the largest models.yaml Load reads: a larger file is
// refused before it is parsed, with an error saying so.
const MaxFileSize = 256 << 10

// Load reads dynretry's configuration: the defaults, then the section
// lovable_patterns.p1_dynamic_retry_delays of the YAML file at path, then
// the DYNRETRY_* variables of environ. The package documentation lists the keys, the variables and
// the rules.
//
// When path is "", the file is the one named by DYNRETRY_CONFIG, and when
// that is unset or empty no file is read. A file named by either that
// cannot be read, or is larger than MaxFileSize, is an error naming its
// path.
//
// environ holds "NAME=value" entries, as os.Environ returns; production
// passes os.Environ(). nil means an empty environment, not the process's:
// Load reads no process-wide state other than the file.
//
// On any error Load returns the zero Settings and an error whose message
// starts with "config: "; nothing is half-applied. Load is safe for
// concurrent use.
func Load(path string, environ []string) (Settings, error) {
	s, err := load(path, environ)
	if err != nil {
		return Settings{}, err
	}
	return s, nil
}

func load(path string, environ []string) (Settings, error) {
	env := lastValues(environ)
	var s Settings
	path, from := resolve(path, env)

	// The layers, lowest first: the defaults, the file, the environment.
	k := koanf.New(".")
	if err := k.Load(structs.Provider(defaults(), "koanf"), nil); err != nil {
		return Settings{}, fmt.Errorf("config: defaults: %w", err)
	}
	origin := make(map[string]string) // key → where its value came from
	if path != "" {
		fk, found, err := readFile(path, from)
		if err != nil {
			return Settings{}, err
		}
		if ps := decodeLayer(fk); len(ps) > 0 {
			return Settings{}, fmt.Errorf("config: %s: %s", path, ps[0].msg)
		}
		merge(k, fk)
		for _, key := range fk.Keys() {
			origin[key] = path
		}
		s.Source = path
		if !found {
			s.Source += noSection
		}
	}
	ek, vars, err := readEnv(env)
	if err != nil {
		return Settings{}, err
	}
	merge(k, ek)
	for key, name := range vars {
		origin[key] = "environment " + name
	}

	var sec values
	if err := k.UnmarshalWithConf("", &sec, unmarshalConf(true, nil)); err != nil {
		return Settings{}, fmt.Errorf("config: %s: %w", section, err) // each layer passed: not expected
	}
	s.Enabled, s.RolloutPercent = sec.Enabled, float64(sec.RolloutPercent)
	s.Telemetry.PrometheusListen = string(sec.Telemetry.PrometheusListen)
	s.Engine = sec.engine()
	s.Proxy = sec.Proxy.settings()
	if err := s.Engine.Validate(); err != nil {
		return Settings{}, engineError(err, origin)
	}
	s.Coordination = sec.Coordination.settings()
	if err := coordinationError(s.Coordination, origin); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// resolve returns the file to read, and where its name came from for
// errors.
func resolve(path string, env map[string]string) (string, string) {
	if path != "" {
		return path, ""
	}
	return strings.TrimSpace(env[envConfig]), " (from " + envConfig + ")"
}

// merge merges the layer l over k. A policy l names that k lacks starts
// from its default (defaultPolicy), so that a layer listing some of a
// class's fields keeps the others.
func merge(k, l *koanf.Koanf) {
	if ps, ok := l.Get("policies").(map[string]any); ok {
		for c := range ps {
			if !k.Exists("policies." + c) {
				m, _ := structs.Provider(defaultPolicy(retry.Class(c)), "koanf").Read()
				k.Set("policies."+c, m)
			}
		}
	}
	k.Merge(l)
}

// readFile reads the YAML file at path and returns dynretry's section as a
// layer, and whether the file has one. from says where path came from, for
// errors.
func readFile(path, from string) (layer *koanf.Koanf, found bool, err error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, false, fmt.Errorf("config: %s%s: the file is %s, larger than the %s a models.yaml may be; it was not parsed", path, from, size(fi.Size()), size(MaxFileSize))
	}
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			return nil, false, wrap(err, "config: cannot read %s%s: %v", path, from, pe.Err)
		}
		// The YAML parser's message, with its line and column; multi-line
		// messages are folded onto one line.
		return nil, false, wrap(err, "config: %s%s: %s", path, from, strings.Join(strings.Fields(err.Error()), " "))
	}
	var sec map[string]any
	name, sub, _ := strings.Cut(section, ".")
	switch lp := k.Raw()[name].(type) {
	case nil: // absent or empty
	case map[string]any:
		v, ok := lp[sub]
		switch v := v.(type) {
		case nil: // absent, or present and empty
			found = ok
		case map[string]any:
			sec, found = v, true
		default:
			return nil, false, fmt.Errorf("config: %s: %s = %s: want a map of settings", path, section, show(v))
		}
	default:
		return nil, false, fmt.Errorf("config: %s: %s = %s: want a map of patterns", path, name, show(lp))
	}
	if err := literal(sec, ""); err != nil {
		return nil, false, fmt.Errorf("config: %s: %w", path, err)
	}
	layer = koanf.New(".")
	if err := layer.Load(confmap.Provider(sec, ""), nil); err != nil {
		return nil, false, fmt.Errorf("config: %s: %w", path, err)
	}
	return layer, found, nil
}

// literal prepares the file's section m (at key prefix) for decoding: a
// null becomes null{}, so that the rules see it, and a key holding a "."
// is refused, since keys nest ("budget: {ratio: 0.5}", not
// "budget.ratio: 0.5").
func literal(m map[string]any, prefix string) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if strings.Contains(k, ".") {
			return fmt.Errorf("%s.%s%s: unknown key (want one of %s)", section, prefix, k, strings.Join(keysOf(typeAt(strings.TrimSuffix(prefix, "."))), ", "))
		}
		switch v := m[k].(type) {
		case nil:
			m[k] = null{}
		case map[string]any:
			if err := literal(v, prefix+k+"."); err != nil {
				return err
			}
		}
	}
	return nil
}

// size renders a byte count for people: "1.5 MiB", "256 KiB".
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', -1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// lastValues maps each name in environ to its last value.
func lastValues(environ []string) map[string]string {
	m := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// engineError turns an error of retry.Config.Validate into one that names
// the full key and, when known, where the value came from.
func engineError(err error, origin map[string]string) error {
	msg := strings.TrimPrefix(err.Error(), retry.ErrConfig.Error()+": ")
	key, _, _ := strings.Cut(msg, " = ")
	where := origin[key]
	if where == "" {
		where = origin[counterpart(key)]
	}
	if where != "" {
		where += ": "
	}
	return wrap(err, "config: %s%s.%s", where, section, msg)
}

// counterpart returns the key that key is checked against by
// retry.Config.Validate, or "".
func counterpart(key string) string {
	switch {
	case key == "spread_max":
		return "spread_min"
	case key == "overload.max":
		return "overload.base"
	case strings.HasPrefix(key, "policies.") && strings.HasSuffix(key, ".max"):
		return strings.TrimSuffix(key, ".max") + ".base"
	}
	return ""
}

// wrapped is an error with its own message that wraps another.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

// wrap returns an error with the formatted message that wraps err.
func wrap(err error, format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...), err: err}
}
