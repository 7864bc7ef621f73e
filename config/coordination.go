package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/autopack/dynretry/retry"
)

// Coordination says where the pacing state of the process is kept: the
// section's coordination keys.
type Coordination struct {
	// Backend is BackendMemory (the process keeps its own) or BackendRedis
	// (every process on the same Redis shares it).
	Backend string
	// RedisURL names the Redis server(s) (redis://, rediss://, unix://; see
	// retry/redisstore.Open). Required with BackendRedis.
	RedisURL string
	// KeyPrefix begins every Redis key.
	KeyPrefix string
	// Timeout bounds each round trip to Redis.
	Timeout time.Duration
	// CredentialSecret names API keys in the shared state (retry.Credentials):
	// every process of a fleet needs the same. Required with BackendRedis;
	// "" otherwise means a secret drawn at random by each process.
	CredentialSecret string
}

// The values of coordination.backend.
const (
	BackendMemory = "memory"
	BackendRedis  = "redis"
)

// coordination is the typed form of the coordination keys.
type coordination struct {
	Backend          backend   `koanf:"backend"`
	RedisURL         redisURL  `koanf:"redis_url"`
	KeyPrefix        keyPrefix `koanf:"key_prefix"`
	Timeout          roundTrip `koanf:"timeout"`
	CredentialSecret secret    `koanf:"credential_secret"`
}

// The coordination keys' value types; each checks its own values (see checker).
type (
	// backend is "memory" or "redis".
	backend string
	// redisURL is "" or a redis://, rediss:// or unix:// URL; never shown
	// in an error (it may hold a password).
	redisURL string
	// keyPrefix is a Redis key prefix without braces.
	keyPrefix string
	// roundTrip is a duration within [minDuration, maxRoundTrip].
	roundTrip time.Duration
	// secret is "" or at least retry.MinSecretLen bytes; never shown.
	secret string
)

// The coordination keys' defaults and ranges.
const (
	defaultKeyPrefix = "dynretry:"
	defaultTimeout   = 50 * time.Millisecond
	maxRoundTrip     = 10 * time.Second
	maxKeyPrefix     = 64
)

func defaultCoordination() coordination {
	return coordination{Backend: BackendMemory, KeyPrefix: defaultKeyPrefix, Timeout: roundTrip(defaultTimeout)}
}

// hidden stands for a value an error must not show.
type hidden struct{}

// The coordination keys' checkers (see checker).

func (backend) check(v any) (any, error) {
	s, ok := v.(string)
	if s = strings.TrimSpace(s); !ok || s != BackendMemory && s != BackendRedis {
		return nil, refused(v, `want "memory" or "redis"`)
	}
	return backend(s), nil
}

func (redisURL) check(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, refused(hidden{}, "want a URL such as redis://host:6379")
	}
	s = strings.TrimSpace(s)
	if why := checkRedisURL(s); why != "" {
		return nil, refused(hidden{}, why)
	}
	return redisURL(s), nil
}

func (keyPrefix) check(v any) (any, error) {
	s, ok := v.(string)
	s = strings.TrimSpace(s)
	switch {
	case !ok:
		return nil, refused(v, "want a string")
	case strings.ContainsAny(s, "{}"):
		return nil, refused(v, `must not contain "{" or "}": the keys' hash tag is dynretry's`)
	case len(s) > maxKeyPrefix:
		return nil, refused(v, fmt.Sprintf("must be at most %d bytes", maxKeyPrefix))
	}
	return keyPrefix(s), nil
}

func (roundTrip) check(v any) (any, error) {
	d, why := toDuration(v)
	if why == "" {
		why = within(d, minDuration, maxRoundTrip)
	}
	if why != "" {
		return nil, refused(v, why)
	}
	return roundTrip(d), nil
}

func (secret) check(v any) (any, error) {
	s, ok := v.(string)
	s = strings.TrimSpace(s)
	switch {
	case !ok:
		return nil, refused(hidden{}, "want a string (quote it)")
	case s != "" && len(s) < retry.MinSecretLen:
		return nil, refused(hidden{}, fmt.Sprintf("must be at least %d bytes: a shorter secret can be guessed", retry.MinSecretLen))
	}
	return secret(s), nil
}

// checkRedisURL says what is wrong with a Redis URL, without repeating it;
// "" is fine (no URL).
func checkRedisURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "not a URL (the value is not shown: it may hold a password)"
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return "want a host: redis://host:6379"
		}
	case "unix":
		if u.Path == "" {
			return "want a socket path: unix:///path/to/redis.sock"
		}
	default:
		return "want a redis://, rediss:// or unix:// URL"
	}
	return ""
}

// settings returns the exported form.
func (c coordination) settings() Coordination {
	return Coordination{
		Backend: string(c.Backend), RedisURL: string(c.RedisURL), KeyPrefix: string(c.KeyPrefix),
		Timeout: time.Duration(c.Timeout), CredentialSecret: string(c.CredentialSecret),
	}
}

// coordinationError says which key the Redis backend lacks, or nil.
func coordinationError(c Coordination, origin map[string]string) error {
	if c.Backend != BackendRedis {
		return nil
	}
	where := origin["coordination.backend"]
	if where != "" {
		where += ": "
	}
	switch {
	case c.RedisURL == "":
		return fmt.Errorf("config: %s%s.coordination.redis_url: required with coordination.backend %q (or set DYNRETRY_COORDINATION__REDIS_URL)", where, section, BackendRedis)
	case c.CredentialSecret == "":
		return fmt.Errorf("config: %s%s.coordination.credential_secret: required with coordination.backend %q: every process of the fleet names API keys with the same secret (at least %d bytes; or set DYNRETRY_COORDINATION__CREDENTIAL_SECRET)", where, section, BackendRedis, retry.MinSecretLen)
	}
	return nil
}
