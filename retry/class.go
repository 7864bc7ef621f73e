package retry

// A Class names why an attempt failed. The names are a fixed vocabulary shared
// with telemetry, dashboards and the explain command; see the package doc.
type Class string

// The classes. Whether a class is retried by default is given by
// Class.Retryable; a server's x-should-retry header overrides it.
const (
	// RateLimited is a limit that refills: requests or tokens per minute,
	// "slow_down", throttling. Retried, never before the provider's hint.
	RateLimited Class = "rate_limited"
	// QuotaExhausted is billing, a spend cap, credits or a daily/monthly
	// quota: no wait within a run helps. Not retried.
	QuotaExhausted Class = "quota_exhausted"
	// RequestTooLarge is a request that alone exceeds a limit (413, or
	// "Requested N" above the limit). Not retried.
	RequestTooLarge Class = "request_too_large"
	// Overloaded is provider-wide overload (529, 503, UNAVAILABLE, capacity
	// exhausted). Retried, within the retry budget.
	Overloaded Class = "overloaded"
	// ServerError is 500, 502 or another 5xx. Retried, within the retry budget.
	ServerError Class = "server_error"
	// Timeout is 408, 504, or an attempt that timed out. Retried.
	Timeout Class = "timeout"
	// Connection is a request that got no response (reset, refused, EOF,
	// DNS). Retried when the request can be resent.
	Connection Class = "connection"
	// Conflict is 409. Retried.
	Conflict Class = "conflict"
	// ContextLength is a prompt longer than the model's context. Not retried.
	ContextLength Class = "context_length"
	// Auth is 401 or 403. Not retried.
	Auth Class = "auth"
	// InvalidRequest is any other 4xx. Not retried.
	InvalidRequest Class = "invalid_request"
	// Canceled is the caller's context ending. Not retried.
	Canceled Class = "canceled"
)

// Classes lists every class, in the order of the package documentation.
var Classes = []Class{
	RateLimited, QuotaExhausted, RequestTooLarge, Overloaded, ServerError, Timeout,
	Connection, Conflict, ContextLength, Auth, InvalidRequest, Canceled,
}

// Retryable reports whether another attempt can succeed for a failure of
// class c, absent an x-should-retry header.
func (c Class) Retryable() bool {
	switch c {
	case RateLimited, Overloaded, ServerError, Timeout, Connection, Conflict:
		return true
	}
	return false
}

// budgeted reports whether failures of class c draw on the retry budget:
// those that signal a struggling provider, where retries add load.
func (c Class) budgeted() bool { return c == Overloaded || c == ServerError }

// Valid reports whether c is one of the named classes.
func (c Class) Valid() bool {
	for _, k := range Classes {
		if c == k {
			return true
		}
	}
	return false
}
