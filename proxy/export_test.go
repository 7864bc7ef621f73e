package proxy

// SetMaxOpen sets the most control calls p keeps open awaiting a retry.
func SetMaxOpen(p *Proxy, n int) { p.open.max = n }

// RetryGrace is how long an open call awaits a retry beyond the wait its
// response asked for.
const RetryGrace = retryGrace
