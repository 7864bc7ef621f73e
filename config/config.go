package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// section is the path of dynretry's section in models.yaml.
const section = "lovable_patterns.p1_dynamic_retry_delays"

// The environment variables Load reads.
const (
	envEnabled = "LOVABLE_DYNAMIC_RETRY_DELAYS"
	envConfig  = "DYNRETRY_CONFIG"
	envPrefix  = "DYNRETRY_"
)

// noSection is appended to Settings.Source when the file read has no
// dynretry section.
const noSection = " (no " + section + " section: defaults)"

// Settings is dynretry's validated configuration. Load returns it; a
// Settings built by hand is not validated.
type Settings struct {
	// Enabled is the master switch: lovable_patterns.p1_dynamic_retry_delays.enabled
	// (default true), overridden by LOVABLE_DYNAMIC_RETRY_DELAYS when that is set.
	Enabled bool
	// EnabledFromEnv reports that LOVABLE_DYNAMIC_RETRY_DELAYS was set (not
	// empty) and so decided Enabled, whatever the file said.
	EnabledFromEnv bool
	// RolloutPercent is the share of runs in the treatment cohort, from 0
	// to 100 inclusive (default 10). 0 puts no run in it.
	RolloutPercent float64
	// Engine is the engine's configuration with every default filled in. It
	// has passed retry.Config.Validate and can be used as is; its Policies
	// map belongs to this Settings.
	Engine retry.Config
	// Source names the file read, as given, for logs: "" when no file was
	// read, and the path followed by
	// " (no lovable_patterns.p1_dynamic_retry_delays section: defaults)"
	// when the file has no such section.
	Source string
}

// Load reads dynretry's configuration: the defaults, then the section
// lovable_patterns.p1_dynamic_retry_delays of the YAML file at path, then
// the DYNRETRY_* variables of environ, then LOVABLE_DYNAMIC_RETRY_DELAYS
// for Enabled. The package documentation lists the keys, the variables and
// the rules.
//
// When path is "", the file is the one named by DYNRETRY_CONFIG, and when
// that is unset or empty no file is read. A file named by either that
// cannot be read is an error naming its path.
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
	d := newDraft()
	var s Settings

	from := ""
	if path == "" {
		path = strings.TrimSpace(env[envConfig])
		from = " (from " + envConfig + ")"
	}
	if path != "" {
		sec, found, err := readFile(path, from)
		if err != nil {
			return Settings{}, err
		}
		if err := d.apply(sec, origin{file: path}); err != nil {
			return Settings{}, err
		}
		s.Source = path
		if !found {
			s.Source += noSection
		}
	}

	vars, byKey, err := readEnv(environ)
	if err != nil {
		return Settings{}, err
	}
	if err := d.apply(vars, origin{vars: byKey}); err != nil {
		return Settings{}, err
	}

	if v := strings.TrimSpace(env[envEnabled]); v != "" {
		b, ok := rollout.ParseSwitch(v)
		if !ok {
			return Settings{}, fmt.Errorf("config: %s=%q: %s", envEnabled, env[envEnabled], whyBool)
		}
		d.enabled, s.EnabledFromEnv = b, true
	}

	eng := d.eng
	if err := eng.Validate(); err != nil {
		return Settings{}, d.engineError(err)
	}
	s.Enabled, s.RolloutPercent, s.Engine = d.enabled, d.rollout, eng
	return s, nil
}

// readFile reads the YAML file at path and returns dynretry's section, and
// whether the file has one. from says where path came from, for errors.
func readFile(path, from string) (sec map[string]any, found bool, err error) {
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			return nil, false, wrap(err, "config: cannot read %s%s: %v", path, from, pe.Err)
		}
		// The YAML parser's message, with its line and column; multi-line
		// messages are folded onto one line.
		return nil, false, wrap(err, "config: %s%s: %s", path, from, strings.Join(strings.Fields(err.Error()), " "))
	}
	name, sub, _ := strings.Cut(section, ".")
	switch lp := k.Raw()[name].(type) {
	case nil: // absent or empty
		return nil, false, nil
	case map[string]any:
		v, ok := lp[sub]
		if !ok {
			return nil, false, nil
		}
		switch v := v.(type) {
		case nil: // present and empty
			return nil, true, nil
		case map[string]any:
			return v, true, nil
		}
		return nil, false, fmt.Errorf("config: %s: %s = %s: want a map of settings", path, section, show(v))
	default:
		return nil, false, fmt.Errorf("config: %s: %s = %s: want a map of patterns", path, name, show(lp))
	}
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
func (d *draft) engineError(err error) error {
	msg := strings.TrimPrefix(err.Error(), retry.ErrConfig.Error()+": ")
	key, _, _ := strings.Cut(msg, " = ")
	where := d.origin[key]
	if where == "" {
		where = d.origin[counterpart(key)]
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
