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
// else of req is kept: no header, no body.
func WithRequest(ctx context.Context, req *http.Request) context.Context {
	if req == nil || req.URL == nil {
		return ctx
	}
	attrs := []attribute.KeyValue{KeyHTTPMethod.String(req.Method)}
	host, port := req.URL.Hostname(), req.URL.Port()
	if host != "" {
		attrs = append(attrs, KeyServerAddress.String(host))
	}
	if port == "" {
		switch req.URL.Scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	if n, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, KeyServerPort.Int(n))
	}
	attrs = append(attrs, KeyURLFull.String(RedactURL(req.URL)))
	return context.WithValue(ctx, requestKey{}, attrs)
}

// requestAttrs returns the attributes WithRequest put in ctx, or nil.
func requestAttrs(ctx context.Context) []attribute.KeyValue {
	a, _ := ctx.Value(requestKey{}).([]attribute.KeyValue)
	return a
}
