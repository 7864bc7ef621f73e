// Package retry is dynretry's engine: it reads what an LLM provider said
// about a failed attempt, decides whether and when another attempt can
// succeed, and holds back other calls to the same limit so they do not waste
// attempts.
//
// The decision path, in the order data flows:
//
//	Outcome ──Assess──▶ Assessment ──Config.Decide──▶ Decision ──▶ wait / return
//	                                     ▲    │  Hold      │
//	             Store.Book ──Verdict────┘    └▶ Store.Observe   └─▶ Observer
//
// An Outcome is one attempt's result: a response (status, headers, body) or
// an error. Assess classifies it (Classify), reads the wait the provider
// asked for (ParseHint), the rate-limit windows it reported (ParseLimits),
// the window its text states and what an exhausted quota covers.
// Config.Decide turns that into a Decision: retry or give up, the delay, what
// the outcome asks of every call to the limit (its Hold), and a reason a
// person can read. Decide is also asked before every attempt, with the
// pacer's Verdict, the context's state and whether the body can be read
// again, and after a call whose client ended it another way: every give-up
// is Decide's, with its class and reason. Decide is pure: time and
// randomness are inputs, so every rule is tested at fixed instants.
//
// # Classes
//
// Every failure gets one Class: rate_limited, quota_exhausted,
// request_too_large, overloaded, server_error, timeout, connection,
// conflict, context_length, auth, invalid_request, canceled. The rules, in
// order: a response without status is canceled, timeout or connection by
// its error; Bedrock's x-amzn-ErrorType decides for Bedrock; 402 or
// billing, spend-cap, credit and daily/monthly-quota text is
// quota_exhausted (Gemini's QuotaFailure quota ids decide between per-minute
// and per-day); 413 or "Request too large"/"Requested N" above the limit is
// request_too_large; 529, and 429/5xx that say overloaded or capacity, are
// overloaded; 401 and 403 are auth, whatever their text says; 429 and
// throttling text ("Too many tokens", "slow_down") are rate_limited; 408,
// 504 and 524 are timeout; 409 is conflict; other 503s are overloaded; other
// 5xx are server_error; other 4xx are context_length when the text says so,
// else invalid_request.
// x-should-retry: true|false overrides whether a class is retried.
//
// # Hints
//
// A hint is a floor: the engine never sends before the provider said. In
// order of preference: retry-after-ms, retry-after (seconds or HTTP-date),
// Gemini RetryInfo, a wait written in the error message, then the reset of
// an exhausted rate-limit window. Every number is read one way: decimals
// with an optional exponent; hostile values (negative, NaN, garbage) are
// ignored, and huge ones, 400 digits or 1e300, saturate at 24h. A Date
// header further than 15 minutes from the clock is ignored.
//
// # Pacing
//
// Calls name their limit with a Key (provider, model, and the credential
// as Credentials name it: a keyed hash of the API key).
// Before every attempt, first attempts included, the call books a time to
// send from the limit's PaceState, kept in a Store (Store.Book): to a limit
// it knows nothing of yet, only a few calls go until their answers say more
// (a slow start, as TCP's); a hint holds every call to the limit until it
// expires; the windows the provider reports (limit, remaining) are
// modelled as token buckets so calls are not sent into an empty one, the
// calls still in flight counted on top of the provider's count; when it
// reports none, refusals teach a send rate (a CUBIC curve per limit) that
// spaces the calls. A hint longer than any
// window the limit is known to have holds the calls while one probe checks
// it; confirmed and above MaxHint, it blocks the limit like an exhausted
// quota blocks its scope (the credential for billing and credits, the model
// for a daily quota): calls give up unsent, and one probe per
// Probe.Interval notices when it ends. An overloaded provider is held, then
// probed one call at a time; a probe that succeeds releases every call. A
// time that leaves no room for an attempt to finish before the caller's
// deadline (MinAttemptTime, or the limit's observed latency) ends the call
// at once with ErrDeadline.
//
// The Store's two methods each take one atomic step on two states, the
// limit's and its credential's, so a store shared by processes can run a
// booking in one round trip (see Store, and package retry/redisstore). A
// shared store that loses its server answers from local state and says so
// (Verdict.Local, passed on as Event.Local).
//
// # Running calls
//
// Retrier.Do retries any function; Transport retries HTTP requests and is
// what SDK clients use. Both run on the caller's goroutine, cancel waits
// when the context ends, and report every decision to an Observer.
package retry
