package telemetry

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
)

// secretParams are query parameters whose values are credentials: Gemini's
// ?key=, and the signatures and tokens of signed URLs.
var secretParams = map[string]bool{
	"key": true, "api_key": true, "apikey": true, "api-key": true, "access_token": true, "token": true,
	"sig": true, "signature": true, "x-goog-signature": true, "x-amz-signature": true,
	"x-amz-credential": true, "x-amz-security-token": true, "awsaccesskeyid": true,
}

// RedactURL returns u as url.full may carry it: user and password replaced
// by "REDACTED" (as the semantic conventions ask), the value of every query
// parameter that names a credential (key, api_key, token, sig, signature,
// X-Goog-Signature, X-Amz-Signature, …; any case) replaced by "REDACTED",
// the fragment dropped, and the rest (the other values one by one) passed
// through Redact. The order of the query's parameters is kept.
func RedactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.UserPassword("REDACTED", "REDACTED")
	}
	c.Fragment, c.RawFragment = "", ""
	query := c.RawQuery
	c.RawQuery, c.ForceQuery = "", false
	out := Redact(c.String())
	if query == "" {
		return out
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		name, value, ok := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil && ok && secretParams[strings.ToLower(n)] {
			parts[i] = name + "=REDACTED"
		} else if ok {
			parts[i] = name + "=" + Redact(value)
		}
	}
	return out + "?" + strings.Join(parts, "&")
}

type requestKey struct{}

// WithRequest returns a copy of ctx carrying what the attempt spans of the
// requests sent with it record of req, as the HTTP client conventions name
// it: http.request.method, server.address, server.port (the URL's port,
// else 443 for https and 80 for http) and url.full (RedactURL). Nothing
// else of req is kept: no header, no body. The attributes are made from
// req's method and URL when a span is recorded: they must not change after.
//
// When ctx belongs to a call StartCall started, the request is kept in the
// call's state instead, and ctx itself is returned: the call's attempts go
// one after the other, each recorded with the last request given.
func WithRequest(ctx context.Context, req *http.Request) context.Context {
	if req == nil || req.URL == nil {
		return ctx
	}
	r := &request{req.Method, req.URL}
	if s := stateOf(ctx); s != nil && s.started {
		s.request.Store(r)
		return ctx
	}
	return context.WithValue(ctx, requestKey{}, r)
}

// request is what WithRequest keeps of a request.
type request struct {
	method string
	url    *url.URL
}

// requestAttrs returns the attributes of the request WithRequest put in
// ctx, or nil.
func requestAttrs(ctx context.Context) []attribute.KeyValue {
	req, _ := ctx.Value(requestKey{}).(*request)
	if s := stateOf(ctx); req == nil && s != nil {
		req = s.request.Load()
	}
	if req == nil {
		return nil
	}
	attrs := []attribute.KeyValue{KeyHTTPMethod.String(req.method)}
	host, port := req.url.Hostname(), req.url.Port()
	if host != "" {
		attrs = append(attrs, KeyServerAddress.String(host))
	}
	if port == "" {
		switch req.url.Scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	if n, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, KeyServerPort.Int(n))
	}
	return append(attrs, KeyURLFull.String(RedactURL(req.url)))
}
