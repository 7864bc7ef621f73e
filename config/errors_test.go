package config_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/config"
	"github.com/autopack/dynretry/retry"
)

const sec = "lovable_patterns.p1_dynamic_retry_delays"

// Each file in testdata/bad is refused whole, with a message naming the
// file, the full key and the problem.
func TestLoadFileErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		want   string // the message after "config: testdata/bad/NAME.yaml: "
		engine bool   // the error comes from retry.Config.Validate
	}{
		"malformed":             {want: "yaml: line 1: did not find expected key"},
		"unclosed_flow":         {want: "yaml: line 5: did not find expected ',' or '}'"},
		"tab_indent":            {want: "yaml: line 3: found character that cannot start any token"},
		"root_list":             {want: "yaml: unmarshal errors: line 1: cannot unmarshal !!seq into map[string]interface {}"},
		"patterns_scalar":       {want: `lovable_patterns = "yes": want a map of patterns`},
		"section_list":          {want: sec + " = [...]: want a map of settings"},
		"unknown_key":           {want: sec + ".polices: unknown key (want one of budget, coordination, enabled, max_hint, min_attempt_time, overload, policies, probe, proxy, rollout_percent, spread, spread_max, spread_min, telemetry)"},
		"dotted_key":            {want: sec + ".budget.ratio: unknown key (want one of budget, coordination, enabled, max_hint, min_attempt_time, overload, policies, probe, proxy, rollout_percent, spread, spread_max, spread_min, telemetry)"},
		"unknown_budget_key":    {want: sec + ".budget.size: unknown key (want one of max_tokens, ratio)"},
		"unknown_policy_field":  {want: sec + ".policies.rate_limited.attempts: unknown key (want one of base, jitter, max, max_attempts, multiplier)"},
		"unknown_class":         {want: sec + ".policies.rate_limit: unknown error class (want one of rate_limited, quota_exhausted, request_too_large, overloaded, server_error, timeout, connection, conflict, context_length, auth, invalid_request, canceled)"},
		"enabled_maybe":         {want: sec + `.enabled = "maybe": want true/false, 1/0, yes/no or on/off`},
		"enabled_null":          {want: sec + `.enabled = null: want true/false, 1/0, yes/no or on/off`},
		"max_attempts_three":    {want: sec + `.policies.rate_limited.max_attempts = "three": want a whole number`},
		"max_attempts_fraction": {want: sec + `.policies.rate_limited.max_attempts = 2.5: want a whole number`},
		"max_attempts_negative": {want: sec + `.policies.timeout.max_attempts = -1: must be at least 0`, engine: true},
		"policies_list":         {want: sec + ".policies = [...]: want a map of error classes to policies"},
		"policy_scalar":         {want: sec + ".policies.rate_limited = 5: want a map with the keys base, jitter, max, max_attempts, multiplier"},
		"budget_scalar":         {want: sec + ".budget = 5: want a map with the keys max_tokens, ratio"},
		"listen_port":           {want: sec + `.telemetry.prometheus_listen = "127.0.0.1:99999": the port must be a number within [0, 65535]`},
		"listen_no_port":        {want: sec + `.telemetry.prometheus_listen = "9464": want "host:port", such as "127.0.0.1:9464" or ":9464", or "" for none`},
		"listen_number":         {want: sec + `.telemetry.prometheus_listen = 9464: want "host:port", such as "127.0.0.1:9464" or ":9464", or "" for none`},
		"telemetry_scalar":      {want: sec + `.telemetry = "on": want a map with the keys prometheus_listen`},
		"telemetry_unknown_key": {want: sec + ".telemetry.prometheus: unknown key (want one of prometheus_listen)"},
		"rollout_150":           {want: sec + ".rollout_percent = 150: must be within [0, 100]"},
		"rollout_negative":      {want: sec + ".rollout_percent = -1: must be within [0, 100]"},
		"rollout_word":          {want: sec + `.rollout_percent = "half": want a number`},
		"max_hint_negative":     {want: sec + `.max_hint = "-1s": must not be negative`},
		"max_hint_bare_number":  {want: sec + `.max_hint = 90: want a Go duration such as "500ms", "2s" or "1m30s": a number needs a unit`},
		"max_hint_garbage":      {want: sec + `.max_hint = "soon": want a Go duration such as "500ms", "2s" or "1m30s"`},
		"max_hint_zero":         {want: sec + `.max_hint = "0s": must not be 0: the engine reads 0 as its default (2m0s); leave the key out for the default`},
		"base_negative":         {want: sec + `.policies.server_error.base = "-500ms": must not be negative`},
		"spread_2":              {want: sec + `.spread = 2: must be within [0, 1]`, engine: true},
		"spread_zero":           {want: sec + `.spread = 0: must not be 0: the engine reads 0 as its default (0.1); leave the key out for the default`},
		"spread_max_below_min":  {want: sec + `.spread_max = 2s: must be at least spread_min (3s)`, engine: true},
		"policy_max_below_base": {want: sec + `.policies.rate_limited.max = 30s: must be at least base (1m0s)`, engine: true},
		"overload_max_below_base": {
			want: sec + `.overload.max = 500ms: must be at least overload.base (1s)`, engine: true,
		},
		"multiplier_half":    {want: sec + `.policies.conflict.multiplier = 0.5: must be a finite number of at least 1`, engine: true},
		"multiplier_zero":    {want: sec + `.policies.conflict.multiplier = 0: must not be 0: the engine reads 0 as its default (2); leave the key out for the default`},
		"jitter_fast":        {want: sec + `.policies.connection.jitter = fast: must be "equal", "full" or "none"`, engine: true},
		"jitter_empty":       {want: sec + `.policies.connection.jitter = "": must not be "": the engine reads "" as its default (equal); leave the key out for the default`},
		"jitter_number":      {want: sec + `.policies.connection.jitter = 1: want "equal", "full" or "none"`},
		"max_tokens_nan":     {want: sec + `.budget.max_tokens = NaN: must be a finite number`},
		"max_tokens_zero":    {want: sec + `.budget.max_tokens = 0: must not be 0: the engine reads 0 as its default (100); leave the key out for the default; a negative value disables the budget`},
		"ratio_negative":     {want: sec + `.budget.ratio = -0.1: must be a finite number of at least 0`, engine: true},
		"probe_timeout_list": {want: sec + `.overload.probe_timeout = [...]: want a Go duration such as "500ms", "2s" or "1m30s"`},
		// Hostile values: sane ranges, and an overflow says so.
		"max_attempts_billion":  {want: sec + `.policies.rate_limited.max_attempts = 1000000000: must be at most 100`},
		"max_attempts_overflow": {want: sec + `.policies.rate_limited.max_attempts = 1e+20: overflows: want a whole number of at most 9223372036854775807`},
		"max_hint_1ns":          {want: sec + `.max_hint = "1ns": must be at least 1ms`},
		"max_hint_overflow":     {want: sec + `.max_hint = "9999999999h": overflows: a duration is at most 2562047h47m16.854775807s`},
		"probe_timeout_25h":     {want: sec + `.overload.probe_timeout = "25h": must be at most 24h0m0s`},
		"base_huge":             {want: sec + `.policies.timeout.base = "2562047h": must be at most 24h0m0s`},
		"multiplier_huge":       {want: sec + `.policies.conflict.multiplier = 1e+300: must be at most 10`},
		"max_tokens_billion":    {want: sec + `.budget.max_tokens = 1e+09: must be within [-1e+06, 1e+06]`},
		"rollout_overflow":      {want: sec + `.rollout_percent = "1e400": overflows: must be a finite number`},
		"key_case":              {want: sec + ".Enabled: unknown key (want one of budget, coordination, enabled, max_hint, min_attempt_time, overload, policies, probe, proxy, rollout_percent, spread, spread_max, spread_min, telemetry)"},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	require.NoError(t, err)
	require.Len(t, files, len(tests), "every file in testdata/bad has a case, and every case a file")

	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", "bad", name+".yaml")
			s, err := config.Load(path, nil)
			require.Error(t, err)
			assert.Zero(t, s, "a refused configuration returns the zero Settings")
			assert.Equal(t, "config: "+path+": "+tt.want, err.Error())
			assert.Equal(t, tt.engine, errors.Is(err, retry.ErrConfig), "wraps retry.ErrConfig")
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "models.yaml")
	tests := map[string]struct {
		path    string
		environ []string
		want    string
	}{
		"path given": {
			path: missing,
			want: "config: cannot read " + missing + ": no such file or directory",
		},
		"from DYNRETRY_CONFIG": {
			environ: []string{"DYNRETRY_CONFIG=" + missing},
			want:    "config: cannot read " + missing + " (from DYNRETRY_CONFIG): no such file or directory",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := config.Load(tt.path, tt.environ)
			require.EqualError(t, err, tt.want)
			assert.ErrorIs(t, err, fs.ErrNotExist)
			assert.Zero(t, s)
		})
	}
}

// A models.yaml above MaxFileSize is refused before it is parsed: a file of
// tens of thousands of keys would take seconds to parse.
func TestLoadFileTooLarge(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "models.yaml")
	var b strings.Builder
	b.WriteString("models:\n")
	for i := 0; b.Len() <= config.MaxFileSize; i++ {
		fmt.Fprintf(&b, "  model_%d: {provider: openai, tier: %d}\n", i, i%7)
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	s, err := config.Load(path, nil)
	require.Error(t, err)
	assert.Zero(t, s)
	assert.Regexp(t, `^config: `+regexp.QuoteMeta(path)+`: the file is 256\.\d+ KiB, larger than the 256 KiB a models.yaml may be; it was not parsed$`, err.Error())

	// Up to the limit it is read.
	within := b.String()[:strings.LastIndexByte(b.String()[:config.MaxFileSize], '\n')+1]
	require.NoError(t, os.WriteFile(path, []byte(within), 0o644))
	_, err = config.Load(path, nil)
	assert.NoError(t, err)
}

func TestLoadDirectory(t *testing.T) {
	t.Parallel()
	s, err := config.Load("testdata", nil)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "config: cannot read testdata: "), err.Error())
	assert.Zero(t, s)
}

// Each bad variable is refused whole, naming the variable and the key.
func TestEnvErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		path    string
		environ []string
		want    string
		engine  bool
	}{
		"unknown variable": {
			environ: []string{"DYNRETRY_MAX_HNT=90s"},
			want:    `config: environment DYNRETRY_MAX_HNT: unknown variable: ` + sec + ` has no key "max_hnt" (write each "." of a key as "__")`,
		},
		"single underscore for nesting": {
			environ: []string{"DYNRETRY_BUDGET_MAX_TOKENS=50"},
			want:    `config: environment DYNRETRY_BUDGET_MAX_TOKENS: unknown variable: ` + sec + ` has no key "budget_max_tokens" (write each "." of a key as "__")`,
		},
		"dot in the name": {
			environ: []string{"DYNRETRY_BUDGET.RATIO=0.5"},
			want:    `config: environment DYNRETRY_BUDGET.RATIO: unknown variable: ` + sec + ` has no key "budget.ratio" (write each "." of a key as "__")`,
		},
		"prefix alone": {
			environ: []string{"DYNRETRY_=1"},
			want:    `config: environment DYNRETRY_: unknown variable: ` + sec + ` has no key "" (write each "." of a key as "__")`,
		},
		"unknown even when empty": {
			environ: []string{"DYNRETRY_MAXHINT="},
			want:    `config: environment DYNRETRY_MAXHINT: unknown variable: ` + sec + ` has no key "maxhint" (write each "." of a key as "__")`,
		},
		"first unknown in name order": {
			environ: []string{"DYNRETRY_ZZZ=1", "DYNRETRY_AAA=1"},
			want:    `config: environment DYNRETRY_AAA: unknown variable: ` + sec + ` has no key "aaa" (write each "." of a key as "__")`,
		},
		"enabled is LOVABLE's": {
			environ: []string{"DYNRETRY_ENABLED=false"},
			want:    `config: environment DYNRETRY_ENABLED: not a setting: LOVABLE_DYNAMIC_RETRY_DELAYS overrides enabled`,
		},
		"group": {
			environ: []string{"DYNRETRY_BUDGET=50"},
			want:    `config: environment DYNRETRY_BUDGET: ` + sec + `.budget is a map: set one of its keys, e.g. DYNRETRY_BUDGET__MAX_TOKENS`,
		},
		"policies": {
			environ: []string{"DYNRETRY_POLICIES=x"},
			want:    `config: environment DYNRETRY_POLICIES: ` + sec + `.policies is a map: set one of its keys, e.g. DYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS`,
		},
		"policy": {
			environ: []string{"DYNRETRY_POLICIES__TIMEOUT=3"},
			want:    `config: environment DYNRETRY_POLICIES__TIMEOUT: ` + sec + `.policies.timeout is a map: set one of its keys, e.g. DYNRETRY_POLICIES__TIMEOUT__MAX_ATTEMPTS`,
		},
		"unknown class": {
			environ: []string{"DYNRETRY_POLICIES__RATE_LIMIT__MAX_ATTEMPTS=3"},
			want:    `config: environment DYNRETRY_POLICIES__RATE_LIMIT__MAX_ATTEMPTS: ` + sec + `.policies.rate_limit: unknown error class (want one of rate_limited, quota_exhausted, request_too_large, overloaded, server_error, timeout, connection, conflict, context_length, auth, invalid_request, canceled)`,
		},
		"unknown policy field": {
			environ: []string{"DYNRETRY_POLICIES__TIMEOUT__TRIES=3"},
			want:    `config: environment DYNRETRY_POLICIES__TIMEOUT__TRIES: unknown variable: ` + sec + ` has no key "policies.timeout.tries" (write each "." of a key as "__")`,
		},
		"too deep": {
			environ: []string{"DYNRETRY_POLICIES__TIMEOUT__BASE__X=3"},
			want:    `config: environment DYNRETRY_POLICIES__TIMEOUT__BASE__X: unknown variable: ` + sec + ` has no key "policies.timeout.base.x" (write each "." of a key as "__")`,
		},
		"bad duration": {
			environ: []string{"DYNRETRY_MAX_HINT=90"},
			want:    `config: environment DYNRETRY_MAX_HINT: ` + sec + `.max_hint = "90": want a Go duration such as "500ms", "2s" or "1m30s": a number needs a unit`,
		},
		"bad integer": {
			environ: []string{"DYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS=five"},
			want:    `config: environment DYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS: ` + sec + `.policies.rate_limited.max_attempts = "five": want a whole number`,
		},
		"rollout out of range": {
			environ: []string{"DYNRETRY_ROLLOUT_PERCENT=101"},
			want:    `config: environment DYNRETRY_ROLLOUT_PERCENT: ` + sec + `.rollout_percent = "101": must be within [0, 100]`,
		},
		"rollout infinite": {
			environ: []string{"DYNRETRY_ROLLOUT_PERCENT=Inf"},
			want:    `config: environment DYNRETRY_ROLLOUT_PERCENT: ` + sec + `.rollout_percent = "Inf": must be a finite number`,
		},
		"engine check names the variable": {
			environ: []string{"DYNRETRY_SPREAD=1.5"},
			want:    `config: environment DYNRETRY_SPREAD: ` + sec + `.spread = 1.5: must be within [0, 1]`,
			engine:  true,
		},
		"engine check names the counterpart's variable": {
			environ: []string{"DYNRETRY_OVERLOAD__BASE=1m"},
			want:    `config: environment DYNRETRY_OVERLOAD__BASE: ` + sec + `.overload.max = 5s: must be at least overload.base (1m0s)`,
			engine:  true,
		},
		"engine check across file and environment": {
			path:    fixture("partial_policy.yaml"),
			environ: []string{"DYNRETRY_POLICIES__SERVER_ERROR__MAX=500ms"},
			want:    `config: environment DYNRETRY_POLICIES__SERVER_ERROR__MAX: ` + sec + `.policies.server_error.max = 500ms: must be at least base (1s)`,
			engine:  true,
		},
		"attempts above the range": {
			environ: []string{"DYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS=1000000000"},
			want:    `config: environment DYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS: ` + sec + `.policies.rate_limited.max_attempts = "1000000000": must be at most 100`,
		},
		"integer overflow": {
			environ: []string{"DYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS=99999999999999999999"},
			want:    `config: environment DYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS: ` + sec + `.policies.rate_limited.max_attempts = "99999999999999999999": overflows: want a whole number of at most 9223372036854775807`,
		},
		"number overflow": {
			environ: []string{"DYNRETRY_BUDGET__RATIO=1e999"},
			want:    `config: environment DYNRETRY_BUDGET__RATIO: ` + sec + `.budget.ratio = "1e999": overflows: must be a finite number`,
		},
		"duration below the range": {
			environ: []string{"DYNRETRY_MAX_HINT=1ns"},
			want:    `config: environment DYNRETRY_MAX_HINT: ` + sec + `.max_hint = "1ns": must be at least 1ms`,
		},
		"duration overflow": {
			environ: []string{"DYNRETRY_OVERLOAD__MAX=99999999999s"},
			want:    `config: environment DYNRETRY_OVERLOAD__MAX: ` + sec + `.overload.max = "99999999999s": overflows: a duration is at most 2562047h47m16.854775807s`,
		},
		"bad variable over a good file": {
			path:    fixture("full.yaml"),
			environ: []string{"DYNRETRY_SPREAD_MIN=-1ms"},
			want:    `config: environment DYNRETRY_SPREAD_MIN: ` + sec + `.spread_min = "-1ms": must not be negative`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := config.Load(tt.path, tt.environ)
			require.EqualError(t, err, tt.want)
			assert.Zero(t, s)
			assert.Equal(t, tt.engine, errors.Is(err, retry.ErrConfig), "wraps retry.ErrConfig")
		})
	}
}
