// Package config loads dynretry's configuration: the section
// lovable_patterns.p1_dynamic_retry_delays of autopack's models.yaml, then
// the environment, into a validated, typed [Settings]; [Watch] reloads it
// whenever the file changes.
//
// # Layers
//
// [Load] layers with koanf: the defaults (structs provider), the file's
// section (file provider, YAML parser), then the DYNRETRY_* variables (env
// provider), merged key by key, a later layer over an earlier one. Each
// layer, then the merge, is
// unmarshalled with koanf's UnmarshalWithConf: a mapstructure decode hook
// applies each key's type and range, and ErrorUnused refuses unknown keys,
// so that an error names the file or variable, the full key and the
// problem. The engine settings are then checked once by
// [retry.Config.Validate]. A configuration with any error is refused whole:
// Load returns the zero Settings and the first error found (the file first,
// in key order, then the variables in name order, then the engine's
// checks). A file larger than [MaxFileSize] (256 KiB) is refused before it
// is parsed.
//
// # The file
//
// Only lovable_patterns.p1_dynamic_retry_delays is read; every other
// top-level section (models:, escalation:, …) and every other entry under
// lovable_patterns is ignored, so autopack's own models.yaml can hold the
// section. A file without the section, or with an empty one, gives the
// defaults. lovable_patterns or the section present but not a map is an
// error. Inside the section an unknown key, a value of the wrong type and a
// null value are errors. The keys, all optional, with their defaults:
//
//	enabled                 bool      true
//	rollout_percent         number    10      share of runs in the treatment cohort, [0, 100]
//	max_hint                duration  2m      [1ms, 24h]
//	spread                  number    0.1     (0, 1]
//	spread_min              duration  50ms    [1ms, 24h]
//	spread_max              duration  2s      [1ms, 24h], at least spread_min
//	budget.max_tokens       number    100     [-1e6, 1e6], not 0; negative disables the budget
//	budget.ratio            number    0.1     (0, 1e6]
//	overload.base           duration  2s      [1ms, 24h]
//	overload.max            duration  20s     [1ms, 24h], at least overload.base
//	overload.probe_timeout  duration  30s     [1ms, 24h]
//	policies.<class>.max_attempts  whole number in [0, 100] (the first attempt counts)
//	policies.<class>.base          duration in [0, 24h]
//	policies.<class>.max           duration in [0, 24h], at least base
//	policies.<class>.multiplier    number in [1, 10]
//	policies.<class>.jitter        "equal", "full" or "none"
//	telemetry.prometheus_listen    "host:port" to serve Prometheus's /metrics on ("127.0.0.1:9464",
//	                               ":9464"); "" (the default) serves none
//	proxy.listen            host:port  127.0.0.1:8787   where dynretry proxy serves
//	proxy.admin_listen      host:port  127.0.0.1:8788   its /metrics and /healthz
//	proxy.upstreams.openai     URL  https://api.openai.com   "" turns the route off
//	proxy.upstreams.anthropic  URL  https://api.anthropic.com
//	proxy.upstreams.gemini     URL  https://generativelanguage.googleapis.com
//	proxy.max_replay_body   size      8MiB    [0, 1GiB]: bodies kept for a retry
//	proxy.drain_timeout     duration  30s     [0, 24h]: a graceful shutdown's bound
//
// An upstream is an http or https base URL with no credentials, query or
// fragment (a trailing "/" is dropped). A size is a whole number of bytes,
// or a number with a unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB
// (powers of 1024).
//
//	coordination.backend           "memory" or "redis"      memory
//	coordination.redis_url         a redis://, rediss:// or unix:// URL; required with redis
//	coordination.key_prefix        string without braces    "dynretry:"
//	coordination.timeout           duration  50ms    [1ms, 10s]
//	coordination.credential_secret string of at least 16 bytes; required with redis
//
// An error about coordination.redis_url or coordination.credential_secret
// never shows the value: a URL may hold a password. The coordination keys
// are read at startup; a later change of them applies at the next start
// (see [Coordination]).
//
// A number too large for its type (a duration above 2562047h, a whole
// number above 2^63-1, a float beyond 1.8e308) is refused as overflowing.
// Key names are matched exactly ("Enabled" is an unknown key).
//
// The meaning of each engine key is documented on [retry.Config]. A duration
// is a Go duration string with a unit ("500ms", "2s", "1m30s"); a bare number
// is refused, because "90" could mean seconds or milliseconds, except 0. A
// number or boolean may also be written as a quoted string. enabled accepts
// the spellings of LOVABLE_DYNAMIC_RETRY_DELAYS: true/false, 1/0, yes/no or
// on/off, in any case.
//
// An explicit 0 is refused for max_hint, spread, spread_min, spread_max,
// budget.max_tokens, budget.ratio, overload.* and policies.<class>.multiplier,
// and "" for policies.<class>.jitter: [retry.Config] reads a zero there as
// "use the default", so 0 could not mean what it says. Leave the key out to
// get the default.
//
// # Policies
//
// <class> is one of [retry.Classes]; another name is an error. A class keeps
// its default policy ([retry.DefaultPolicies]) for every field not listed,
// so "rate_limited: {max_attempts: 5}" changes only the attempt limit, and a
// class not listed keeps its default policy whole. A class without a default
// policy (quota_exhausted, auth, …: the classes the engine does not retry)
// may be listed; its unlisted fields then start from the server_error
// default. The entry is passed to the engine as is: whether the engine
// retries such a class at all is the engine's rule (see [retry.Config]
// Policies and [retry.Config.Decide]), not this package's.
//
// # The environment
//
//	DYNRETRY_CONFIG               the file to read when Load's path is "".
//	DYNRETRY_<KEY>                overrides one key of the section. <KEY> is
//	                              the key in capitals with each "." written
//	                              "__": DYNRETRY_MAX_HINT=90s,
//	                              DYNRETRY_BUDGET__MAX_TOKENS=50,
//	                              DYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS=5.
//
// Values are trimmed of surrounding spaces, and an empty value means unset.
// The part of a DYNRETRY_ name after the prefix is matched case-insensitively.
// A DYNRETRY_ variable that names no key is an error (a typo must not be
// ignored), and so is DYNRETRY_ENABLED: enabled has one override,
// LOVABLE_DYNAMIC_RETRY_DELAYS, which Load does not read: the rollout reads
// it at every flag evaluation (rollout.EnvOverride), so setting, changing or
// unsetting it applies to the next call. DYNRETRY_CONFIG and DYNRETRY_DEMO_API_KEY
// (the demo's API key) are not keys and are not checked. When a name occurs
// more than once in the environment, the last occurrence counts, as in
// os/exec.
//
// # Errors
//
// Every error message starts with "config: ", then says where the value came
// from (the file path as given, or "environment DYNRETRY_…"), then the full
// key, e.g.
//
//	config: models.yaml: lovable_patterns.p1_dynamic_retry_delays.policies.rate_limited.max_attempts = "three": want a whole number
//
// Errors from the engine's checks wrap [retry.ErrConfig]; a file that
// cannot be read gives an error that wraps the operating system's, so
// errors.Is(err, fs.ErrNotExist) reports a missing file. Load never panics.
package config
