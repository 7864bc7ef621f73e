package config_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/config"
)

// writeSection writes a models.yaml whose section holds body (indented
// under it) and returns its path.
func writeSection(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "models.yaml")
	require.NoError(t, os.WriteFile(path, []byte("lovable_patterns:\n  p1_dynamic_retry_delays:\n"+body), 0o644))
	return path
}

const fleetSecret = "a fleet secret of 32 characters!"

func TestCoordinationFromEnv(t *testing.T) {
	t.Parallel()
	s, err := config.Load("", []string{
		"DYNRETRY_COORDINATION__BACKEND=redis",
		"DYNRETRY_COORDINATION__REDIS_URL=redis://127.0.0.1:6379/0",
		"DYNRETRY_COORDINATION__KEY_PREFIX=fleet:",
		"DYNRETRY_COORDINATION__TIMEOUT=25ms",
		"DYNRETRY_COORDINATION__CREDENTIAL_SECRET= " + fleetSecret + " ",
	})
	require.NoError(t, err)
	assert.Equal(t, config.Coordination{Backend: "redis", RedisURL: "redis://127.0.0.1:6379/0", KeyPrefix: "fleet:",
		Timeout: 25 * time.Millisecond, CredentialSecret: fleetSecret}, s.Coordination)
}

// A refused value of the coordination keys is named by its key; a URL or
// a secret is never shown, whatever is wrong with it.
func TestCoordinationErrors(t *testing.T) {
	t.Parallel()
	key := sec + ".coordination."
	tests := map[string]struct {
		body, env, want string
		hide            []string // must not appear in the message
	}{
		"backend":        {body: "backend: etcd", want: key + `backend = "etcd": want "memory" or "redis"`},
		"url scheme":     {body: "redis_url: http://user:hunter2pass@host", want: key + "redis_url = (not shown): want a redis://, rediss:// or unix:// URL", hide: []string{"hunter2pass"}},
		"url host":       {body: "redis_url: redis://", want: key + "redis_url = (not shown): want a host: redis://host:6379"},
		"url garbage":    {body: `redis_url: "redis://user:hunter2pass@host:port:x"`, want: key + "redis_url = (not shown): not a URL", hide: []string{"hunter2pass"}},
		"url number":     {body: "redis_url: 6379", want: key + "redis_url = (not shown): want a URL such as redis://host:6379"},
		"prefix brace":   {body: `key_prefix: "a{b}"`, want: key + `key_prefix = "a{b}": must not contain "{" or "}"`},
		"timeout zero":   {body: "timeout: 0", want: key + "timeout = 0: must be at least 1ms"},
		"timeout long":   {body: "timeout: 1m", want: key + `timeout = "1m": must be at most 10s`},
		"timeout unit":   {body: "timeout: 50", want: key + "timeout = 50: " + `want a Go duration such as "500ms", "2s" or "1m30s": a number needs a unit`},
		"secret short":   {body: "credential_secret: hunter2", want: key + "credential_secret = (not shown): must be at least 16 bytes", hide: []string{"hunter2"}},
		"secret number":  {body: "credential_secret: 12345678901234567890", want: key + "credential_secret = (not shown): want a string (quote it)", hide: []string{"12345678901234567890"}},
		"redis, no url":  {body: "backend: redis\n    credential_secret: \"" + fleetSecret + "\"", want: key + "redis_url: required with coordination.backend \"redis\""},
		"redis, no key":  {body: "backend: redis\n    redis_url: redis://h:1", want: key + "credential_secret: required with coordination.backend \"redis\""},
		"env secret":     {env: "DYNRETRY_COORDINATION__CREDENTIAL_SECRET=hunter2", want: "environment DYNRETRY_COORDINATION__CREDENTIAL_SECRET: " + key + "credential_secret = (not shown)", hide: []string{"hunter2"}},
		"env url":        {env: "DYNRETRY_COORDINATION__REDIS_URL=ftp://u:hunter2pass@h", want: "environment DYNRETRY_COORDINATION__REDIS_URL: " + key + "redis_url = (not shown)", hide: []string{"hunter2pass"}},
		"env unknown":    {env: "DYNRETRY_COORDINATION__URL=redis://h", want: "environment DYNRETRY_COORDINATION__URL: unknown variable"},
		"env redis only": {env: "DYNRETRY_COORDINATION__BACKEND=redis", want: "environment DYNRETRY_COORDINATION__BACKEND: " + key + "redis_url: required"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			path := ""
			if tt.body != "" {
				path = writeSection(t, "    coordination:\n      "+indent(tt.body)+"\n")
			}
			var env []string
			if tt.env != "" {
				env = []string{tt.env}
			}
			_, err := config.Load(path, env)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			for _, h := range tt.hide {
				assert.NotContains(t, err.Error(), h)
			}
		})
	}
}

// indent indents the continuation lines of a YAML body under coordination.
func indent(body string) string {
	out := ""
	for i, c := range body {
		out += string(c)
		if c == '\n' && i < len(body)-1 {
			out += "  "
		}
	}
	return out
}
