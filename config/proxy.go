package config

import (
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Proxy is the configuration of dynretry proxy: the section's proxy keys.
type Proxy struct {
	// Listen is the address the proxy serves on (proxy.listen), host:port.
	Listen string
	// AdminListen is the address of /metrics and /healthz
	// (proxy.admin_listen), host:port.
	AdminListen string
	// Upstreams are the base URLs the proxy's routes send to.
	Upstreams Upstreams
	// MaxReplayBody is the largest request body, in bytes, kept in memory so
	// that a retry can send it again (proxy.max_replay_body); a larger body
	// streams through once and is not retried. 0 keeps none.
	MaxReplayBody int64
	// DrainTimeout bounds a graceful shutdown (proxy.drain_timeout): calls and
	// streams in flight have this long to finish; 0 ends them at once.
	DrainTimeout time.Duration
}

// Upstreams are the base URLs of the proxy's routes: /openai/, /anthropic/
// and /gemini/. A nil URL turns its route off (404).
type Upstreams struct {
	OpenAI, Anthropic, Gemini *url.URL
}

// The proxy's defaults.
const (
	DefaultListen        = "127.0.0.1:8787"
	DefaultAdminListen   = "127.0.0.1:8788"
	DefaultMaxReplayBody = 8 << 20
	DefaultDrainTimeout  = 30 * time.Second
)

// The public APIs, the default upstreams.
const (
	DefaultOpenAI    = "https://api.openai.com"
	DefaultAnthropic = "https://api.anthropic.com"
	DefaultGemini    = "https://generativelanguage.googleapis.com"
)

// maxReplayBody is the largest proxy.max_replay_body accepted.
const maxReplayBody = 1 << 30

// DefaultProxy returns the proxy's configuration when no key sets it.
func DefaultProxy() Proxy {
	return defaultProxy().settings()
}

// proxyValues is the typed form of the proxy keys.
type proxyValues struct {
	Listen        address   `koanf:"listen"`
	AdminListen   address   `koanf:"admin_listen"`
	Upstreams     upstreams `koanf:"upstreams"`
	MaxReplayBody byteSize  `koanf:"max_replay_body"`
	DrainTimeout  backoff   `koanf:"drain_timeout"`
}

type upstreams struct {
	OpenAI    upstream `koanf:"openai"`
	Anthropic upstream `koanf:"anthropic"`
	Gemini    upstream `koanf:"gemini"`
}

// The value types of the proxy keys; each checks its own values (see
// checker).
type (
	// address is host:port; the host may be empty (every interface).
	address string
	// optionalAddress is an address, or "" for none.
	optionalAddress string
	// upstream is an http or https base URL without credentials, query or
	// fragment, or "" for no upstream.
	upstream string
	// byteSize is a number of bytes, written as a whole number or with a
	// unit: B, KB, MB, GB (powers of 1000), KiB, MiB, GiB (powers of 1024).
	byteSize int64
)

func defaultProxy() proxyValues {
	return proxyValues{
		Listen:        DefaultListen,
		AdminListen:   DefaultAdminListen,
		Upstreams:     upstreams{OpenAI: DefaultOpenAI, Anthropic: DefaultAnthropic, Gemini: DefaultGemini},
		MaxReplayBody: DefaultMaxReplayBody,
		DrainTimeout:  backoff(DefaultDrainTimeout),
	}
}

// settings returns the configuration the values describe; each value has
// passed its check.
func (v proxyValues) settings() Proxy {
	return Proxy{
		Listen:      string(v.Listen),
		AdminListen: string(v.AdminListen),
		Upstreams: Upstreams{
			OpenAI: v.Upstreams.OpenAI.url(), Anthropic: v.Upstreams.Anthropic.url(), Gemini: v.Upstreams.Gemini.url(),
		},
		MaxReplayBody: int64(v.MaxReplayBody),
		DrainTimeout:  time.Duration(v.DrainTimeout),
	}
}

// A checker converts a layer's value into its own type and checks it, or
// returns a *refusal saying why it cannot. The decode hook calls it for the
// types that have one.
type checker interface {
	check(v any) (any, error)
}

// refused returns the refusal of v.
func refused(v any, why string) error { return &refusal{value: v, why: why} }

const (
	whyAddress         = `want host:port, such as "127.0.0.1:8787"`
	whyOptionalAddress = `want "host:port", such as "127.0.0.1:9464" or ":9464", or "" for none`
)

func (address) check(v any) (any, error) {
	a, err := checkAddress(v, whyAddress)
	return address(a), err
}

func (optionalAddress) check(v any) (any, error) {
	if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
		return optionalAddress(""), nil
	}
	a, err := checkAddress(v, whyOptionalAddress)
	return optionalAddress(a), err
}

// checkAddress checks that v is host:port with a port within [0, 65535],
// refusing it with why when it is not of that shape.
func checkAddress(v any, why string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", refused(v, why)
	}
	s = strings.TrimSpace(s)
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", refused(v, why)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(n, 10) != port {
		return "", refused(v, "the port must be a number within [0, 65535]")
	}
	return s, nil
}

const whyUpstream = `want an http or https base URL, such as "https://api.openai.com", or "" for none`

func (upstream) check(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, refused(v, whyUpstream)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return upstream(""), nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		return nil, refused(v, whyUpstream)
	case u.User != nil:
		u.User = url.User("REDACTED") // the message must not repeat the secret
		return nil, refused(u.String(), "must not hold credentials: clients send their own API keys in headers")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, refused(v, "must not have a query or a fragment")
	}
	if _, port, err := net.SplitHostPort(u.Host); err == nil {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, refused(v, "the port must be a number within [1, 65535]")
		}
	}
	return upstream(strings.TrimRight(s, "/")), nil
}

// url returns the parsed URL, nil for "".
func (u upstream) url() *url.URL {
	if u == "" {
		return nil
	}
	p, err := url.Parse(string(u))
	if err != nil {
		return nil // checked before; not expected
	}
	return p
}

// units are byteSize's units, longest first so that "KiB" is not read as
// "B".
var units = []struct {
	name string
	size int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

const whySize = `want a size such as "8MiB", "512KiB" or a whole number of bytes`

func (byteSize) check(v any) (any, error) {
	var n float64
	switch v := v.(type) {
	case int, int64, uint64:
		n, _ = toFloat(v)
	case string:
		s := strings.TrimSpace(v)
		mult := int64(1)
		for _, u := range units {
			if num, ok := strings.CutSuffix(s, u.name); ok {
				s, mult = strings.TrimSpace(num), u.size
				break
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, refused(v, whySize)
		}
		n = f * float64(mult)
	default:
		return nil, refused(v, whySize)
	}
	switch {
	case n < 0:
		return nil, refused(v, "must not be negative")
	case n > maxReplayBody:
		return nil, refused(v, "must be at most 1GiB")
	case n != math.Trunc(n):
		return nil, refused(v, "must be a whole number of bytes")
	}
	return byteSize(n), nil
}
