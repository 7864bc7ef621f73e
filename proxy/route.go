package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/autopack/dynretry/config"
)

// A routeTo is where a request goes: the route's name (its path prefix
// without slashes: "openai", "anthropic", "gemini"; "" when unknown), the
// upstream's base URL, and the request's path after the prefix, decoded
// and as sent.
type routeTo struct {
	name          string
	base          *url.URL
	path, rawPath string
}

// A refusal is a request the proxy answers itself, without sending it.
type refusal struct {
	status int
	msg    string
}

// routes are the proxy's path prefixes, in the order the errors list them.
var routes = []string{"openai", "anthropic", "gemini"}

// allow is the Allow header of a 405: every method but CONNECT is
// forwarded.
const allow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// route says where r goes, or why it goes nowhere.
func route(r *http.Request, up config.Upstreams) (routeTo, *refusal) {
	if r.Method == http.MethodConnect {
		return routeTo{}, &refusal{http.StatusMethodNotAllowed, "CONNECT is refused: dynretry proxy is not an open proxy; send requests to /openai/, /anthropic/ or /gemini/"}
	}
	if !strings.HasPrefix(r.RequestURI, "/") {
		return routeTo{}, &refusal{http.StatusBadRequest, "the request target must be a path (origin-form), such as /openai/v1/chat/completions: dynretry proxy is not an open proxy and forwards only to its configured upstreams"}
	}
	name, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	var base *url.URL
	switch name {
	case "openai":
		base = up.OpenAI
	case "anthropic":
		base = up.Anthropic
	case "gemini":
		base = up.Gemini
	default:
		return routeTo{}, &refusal{http.StatusNotFound, fmt.Sprintf("no route for %s: dynretry proxy serves /openai/, /anthropic/ and /gemini/", clip(r.URL.Path))}
	}
	rt := routeTo{name: name, base: base, path: "/" + rest}
	if base == nil {
		return rt, &refusal{http.StatusNotFound, fmt.Sprintf("the %s route is off: proxy.upstreams.%s is empty", name, name)}
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "." || seg == ".." {
			return rt, &refusal{http.StatusBadRequest, "the path must not have \".\" or \"..\" segments"}
		}
	}
	if raw, ok := strings.CutPrefix(r.URL.RawPath, "/"+name); ok && raw != "" {
		rt.rawPath = raw
	}
	return rt, nil
}

// maxHeader is the longest X-Autopack-* value accepted, in bytes.
const maxHeader = 256

// checkHeaders checks the X-Autopack-* headers: each at most once, at most
// maxHeader bytes of UTF-8 without control characters.
func checkHeaders(r *http.Request) *refusal {
	for _, name := range []string{HeaderRunID, HeaderPhaseID, HeaderRole, HeaderCallID} {
		vs := r.Header.Values(name)
		switch {
		case len(vs) == 0:
			continue
		case len(vs) > 1:
			return &refusal{http.StatusBadRequest, name + " is sent more than once"}
		case len(vs[0]) > maxHeader:
			return &refusal{http.StatusBadRequest, fmt.Sprintf("%s is longer than %d bytes", name, maxHeader)}
		case !utf8.ValidString(vs[0]) || strings.IndexFunc(vs[0], unicode.IsControl) >= 0:
			return &refusal{http.StatusBadRequest, name + " must be UTF-8 text without control characters"}
		}
	}
	return nil
}

// clip shortens a path for a message.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return fmt.Sprintf("%q", s)
	}
	for i := n; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return fmt.Sprintf("%q…", s[:i])
		}
	}
	return fmt.Sprintf("%q", s[:n])
}
