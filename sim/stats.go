package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"time"
)

// Reason says why a request did not end in a complete success.
type Reason string

const (
	// ReasonRateLimited: a rate-limit bucket did not hold the request's cost
	// (429). Not charged.
	ReasonRateLimited Reason = "rate_limited"
	// ReasonTooLarge: the request's cost exceeds a bucket's capacity, so it
	// can never fit (OpenAI 429 "Request too large", Anthropic 413, Gemini
	// 400). Not charged.
	ReasonTooLarge Reason = "too_large"
	// ReasonOverloaded: the request arrived during an overload window (529
	// or 503). Not charged.
	ReasonOverloaded Reason = "overloaded"
	// ReasonServerError: the request was admitted and charged, then
	// answered with a 500.
	ReasonServerError Reason = "server_error"
	// ReasonQuota: the credential's quota (Config.QuotaAfter) is used up.
	// Not charged.
	ReasonQuota Reason = "quota"
	// ReasonReset: the connection was reset before any response. Not
	// charged.
	ReasonReset Reason = "reset"
	// ReasonStreamCut: the request was admitted and charged, and its stream
	// was cut in the middle.
	ReasonStreamCut Reason = "stream_cut"
	// ReasonCanceled: the request was admitted and charged, and the client
	// went away (context canceled, body closed) before the response was
	// complete.
	ReasonCanceled Reason = "canceled"
	// ReasonInvalid: the request was not understood (unknown route, bad
	// body, no credential): 400, 401, 403 or 404. Not charged.
	ReasonInvalid Reason = "invalid_request"
)

// Counts counts requests. Once no request is in flight,
// Received == Succeeded + the sum of Rejected.
type Counts struct {
	// Received is the number of requests the handler was called for.
	Received int
	// Admitted is the number of requests that passed the faults decided on
	// arrival and the rate limits, and were charged. It includes admitted
	// requests that then failed (server_error, stream_cut, canceled).
	Admitted int
	// Succeeded is the number of complete success responses written.
	Succeeded int
	// Rejected counts the requests that did not succeed, by reason,
	// including failures after admission. Nil when there are none.
	Rejected map[Reason]int
}

// Stats is a snapshot of a Provider's counters.
type Stats struct {
	// Counts are the totals over all credentials.
	Counts
	// ByCredential holds the counts of each credential, keyed by
	// CredentialID of the credential the client sent, never the key itself.
	ByCredential map[string]Counts
	// AdmitTimes holds, in order, when each admitted request was admitted,
	// measured from the provider's start.
	AdmitTimes []time.Duration
	// SuccessTimes holds, in order, when each successful response was
	// complete, measured from the provider's start. Its last element is the
	// time of the last success.
	SuccessTimes []time.Duration
}

// stats accumulates counters; the Provider's mutex guards it.
type stats struct {
	total        Counts
	byCredential map[string]*Counts
	admitTimes   []time.Duration
	successTimes []time.Duration
}

// CredentialID names a credential in Stats.ByCredential: the first 16 hex
// digits of its SHA-256, so that stats can be printed or logged without
// the key.
func CredentialID(credential string) string {
	sum := sha256.Sum256([]byte(credential))
	return hex.EncodeToString(sum[:8])
}

// each calls f for the totals and for the counts of credential.
func (s *stats) each(credential string, f func(*Counts)) {
	if s.byCredential == nil {
		s.byCredential = make(map[string]*Counts)
	}
	id := CredentialID(credential)
	c := s.byCredential[id]
	if c == nil {
		c = new(Counts)
		s.byCredential[id] = c
	}
	f(&s.total)
	f(c)
}

func (s *stats) received(credential string) {
	s.each(credential, func(c *Counts) { c.Received++ })
}

func (s *stats) admitted(credential string, at time.Duration) {
	s.each(credential, func(c *Counts) { c.Admitted++ })
	s.admitTimes = append(s.admitTimes, at)
}

func (s *stats) succeeded(credential string, at time.Duration) {
	s.each(credential, func(c *Counts) { c.Succeeded++ })
	s.successTimes = append(s.successTimes, at)
}

func (s *stats) rejected(credential string, r Reason) {
	s.each(credential, func(c *Counts) {
		if c.Rejected == nil {
			c.Rejected = make(map[Reason]int)
		}
		c.Rejected[r]++
	})
}

// snapshot returns a deep copy.
func (s *stats) snapshot() Stats {
	out := Stats{
		Counts:       s.total.clone(),
		ByCredential: make(map[string]Counts, len(s.byCredential)),
		AdmitTimes:   slices.Clone(s.admitTimes),
		SuccessTimes: slices.Clone(s.successTimes),
	}
	for k, c := range s.byCredential {
		out.ByCredential[k] = c.clone()
	}
	return out
}

func (c Counts) clone() Counts {
	c.Rejected = maps.Clone(c.Rejected)
	return c
}
