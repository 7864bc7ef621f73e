package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/config"
)

func TestProxyDefaults(t *testing.T) {
	t.Parallel()
	p := config.DefaultProxy()
	assert.Equal(t, "127.0.0.1:8787", p.Listen)
	assert.Equal(t, "127.0.0.1:8788", p.AdminListen)
	assert.Equal(t, "https://api.openai.com", p.Upstreams.OpenAI.String())
	assert.Equal(t, "https://api.anthropic.com", p.Upstreams.Anthropic.String())
	assert.Equal(t, "https://generativelanguage.googleapis.com", p.Upstreams.Gemini.String())
	assert.Equal(t, int64(8<<20), p.MaxReplayBody)
	assert.Equal(t, 30*time.Second, p.DrainTimeout)

	s, err := config.Load(filepath.Join("..", "models.yaml"), nil)
	require.NoError(t, err)
	assert.Equal(t, p, s.Proxy, "models.yaml documents the proxy's defaults")
}

// The DYNRETRY_PROXY__ variables set the proxy's keys, over the file.
func TestProxyEnv(t *testing.T) {
	t.Parallel()
	s, err := config.Load(fixture("full.yaml"), []string{
		"DYNRETRY_PROXY__UPSTREAMS__OPENAI=http://127.0.0.1:9999",
		"DYNRETRY_PROXY__UPSTREAMS__GEMINI= https://gemini.example.com/ ",
		"DYNRETRY_PROXY__LISTEN=0.0.0.0:8787",
		"DYNRETRY_PROXY__MAX_REPLAY_BODY=1048576",
		"DYNRETRY_PROXY__DRAIN_TIMEOUT=5s",
	})
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:9999", s.Proxy.Upstreams.OpenAI.String())
	assert.Equal(t, "https://gateway.example.com/anthropic", s.Proxy.Upstreams.Anthropic.String(), "the file's value stands")
	assert.Equal(t, "https://gemini.example.com", s.Proxy.Upstreams.Gemini.String(), "trimmed, without the trailing slash")
	assert.Equal(t, "0.0.0.0:8787", s.Proxy.Listen)
	assert.Equal(t, "127.0.0.1:0", s.Proxy.AdminListen)
	assert.Equal(t, int64(1<<20), s.Proxy.MaxReplayBody)
	assert.Equal(t, 5*time.Second, s.Proxy.DrainTimeout)
}

func TestProxySizes(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]int64{
		"0": 0, "100": 100, "100B": 100, "1.5KiB": 1536, "8MiB": 8 << 20, "8 MiB": 8 << 20, "1GiB": 1 << 30,
		"2KB": 2000, "3MB": 3_000_000, "1GB": 1e9,
	} {
		s, err := config.Load("", []string{"DYNRETRY_PROXY__MAX_REPLAY_BODY=" + value})
		if assert.NoError(t, err, value) {
			assert.Equal(t, want, s.Proxy.MaxReplayBody, value)
		}
	}
}

// Bad proxy values are refused whole with the key and the problem, from a
// file or a variable; a URL's credentials are never repeated.
func TestProxyErrors(t *testing.T) {
	t.Parallel()
	const key = sec + ".proxy."
	tests := map[string]struct{ variable, value, want string }{
		"scheme":        {"UPSTREAMS__OPENAI", "ftp://x", key + `upstreams.openai = "ftp://x": want an http or https base URL, such as "https://api.openai.com", or "" for none`},
		"no host":       {"UPSTREAMS__OPENAI", "https://", key + `upstreams.openai = "https://": want an http or https base URL, such as "https://api.openai.com", or "" for none`},
		"relative":      {"UPSTREAMS__ANTHROPIC", "/v1", key + `upstreams.anthropic = "/v1": want an http or https base URL, such as "https://api.openai.com", or "" for none`},
		"query":         {"UPSTREAMS__GEMINI", "https://g.example.com/?key=1", key + `upstreams.gemini = "https://g.example.com/?key=1": must not have a query or a fragment`},
		"fragment":      {"UPSTREAMS__GEMINI", "https://g.example.com/#x", key + `upstreams.gemini = "https://g.example.com/#x": must not have a query or a fragment`},
		"port":          {"UPSTREAMS__OPENAI", "http://127.0.0.1:70000", key + `upstreams.openai = "http://127.0.0.1:70000": the port must be a number within [1, 65535]`},
		"credentials":   {"UPSTREAMS__OPENAI", "https://user:sk-canary-secret@api.example.com", key + `upstreams.openai = "https://REDACTED@api.example.com": must not hold credentials: clients send their own API keys in headers`},
		"user only":     {"UPSTREAMS__OPENAI", "https://sk-canary-secret@api.example.com", key + `upstreams.openai = "https://REDACTED@api.example.com": must not hold credentials: clients send their own API keys in headers`},
		"listen":        {"LISTEN", "localhost", key + `listen = "localhost": want host:port, such as "127.0.0.1:8787"`},
		"listen port":   {"LISTEN", "127.0.0.1:http", key + `listen = "127.0.0.1:http": the port must be a number within [0, 65535]`},
		"admin port":    {"ADMIN_LISTEN", "127.0.0.1:99999", key + `admin_listen = "127.0.0.1:99999": the port must be a number within [0, 65535]`},
		"size word":     {"MAX_REPLAY_BODY", "big", key + `max_replay_body = "big": want a size such as "8MiB", "512KiB" or a whole number of bytes`},
		"size unit":     {"MAX_REPLAY_BODY", "8MB/s", key + `max_replay_body = "8MB/s": want a size such as "8MiB", "512KiB" or a whole number of bytes`},
		"size negative": {"MAX_REPLAY_BODY", "-1", key + `max_replay_body = "-1": must not be negative`},
		"size huge":     {"MAX_REPLAY_BODY", "1e300", key + `max_replay_body = "1e300": must be at most 1GiB`},
		"size inf":      {"MAX_REPLAY_BODY", "Inf", key + `max_replay_body = "Inf": want a size such as "8MiB", "512KiB" or a whole number of bytes`},
		"size fraction": {"MAX_REPLAY_BODY", "1.5", key + `max_replay_body = "1.5": must be a whole number of bytes`},
		"drain":         {"DRAIN_TIMEOUT", "-1s", key + `drain_timeout = "-1s": must not be negative`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			variable := "DYNRETRY_PROXY__" + tc.variable
			_, err := config.Load("", []string{variable + "=" + tc.value})
			require.Error(t, err)
			assert.Equal(t, "config: environment "+variable+": "+tc.want, err.Error())
			assert.NotContains(t, err.Error(), "sk-canary-secret")

			// The same value in a file.
			path := filepath.Join(t.TempDir(), "models.yaml")
			nested := map[string]string{
				"UPSTREAMS__OPENAI": "upstreams: {openai: %q}", "UPSTREAMS__ANTHROPIC": "upstreams: {anthropic: %q}",
				"UPSTREAMS__GEMINI": "upstreams: {gemini: %q}", "LISTEN": "listen: %q", "ADMIN_LISTEN": "admin_listen: %q",
				"MAX_REPLAY_BODY": "max_replay_body: %q", "DRAIN_TIMEOUT": "drain_timeout: %q",
			}[tc.variable]
			yaml := "lovable_patterns:\n  p1_dynamic_retry_delays:\n    proxy:\n      " + fmt.Sprintf(nested, tc.value) + "\n"
			require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
			_, err = config.Load(path, nil)
			require.Error(t, err)
			assert.Equal(t, "config: "+path+": "+tc.want, err.Error())
			assert.NotContains(t, err.Error(), "sk-canary-secret")
		})
	}

	_, err := config.Load("", []string{"DYNRETRY_PROXY__UPSTREAMS__AZURE=https://x"})
	assert.EqualError(t, err, `config: environment DYNRETRY_PROXY__UPSTREAMS__AZURE: unknown variable: `+sec+` has no key "proxy.upstreams.azure" (write each "." of a key as "__")`)
	_, err = config.Load("", []string{"DYNRETRY_PROXY__UPSTREAMS=https://x"})
	assert.EqualError(t, err, `config: environment DYNRETRY_PROXY__UPSTREAMS: `+sec+`.proxy.upstreams is a map: set one of its keys, e.g. DYNRETRY_PROXY__UPSTREAMS__OPENAI`)
}

// An upstream set to "" in the file turns its route off; an empty
// variable is unset, as for every key.
func TestProxyUpstreamOff(t *testing.T) {
	t.Parallel()
	s, err := config.Load(fixture("full.yaml"), []string{"DYNRETRY_PROXY__UPSTREAMS__GEMINI="})
	require.NoError(t, err)
	assert.Nil(t, s.Proxy.Upstreams.Gemini)
	assert.NotNil(t, s.Proxy.Upstreams.OpenAI)
}
