package retry

import (
	"fmt"
	"net/http"
)

// SDKRetries is the SDKs' default count of retries (openai-go,
// anthropic-sdk-go): 2 retries, 3 attempts.
const SDKRetries = 2

// SDKDecision describes what an SDK's own retry loop does after an attempt,
// for calls dynretry observes but does not decide (the control cohort of a
// rollout): the SDK decides, and this states its rule so that its attempts
// can be reported in the same terms as the engine's. The rule, as openai-go
// and anthropic-sdk-go apply it: x-should-retry: true or false decides when
// present; else 408, 409, 429, every 5xx and an attempt without a response
// are retried; at most retries times. An attempt whose context ended is not
// retried (canceled).
//
// in.Attempt is the attempt's 1-based number; in.Ended the context's error
// once it ended. The decision has the outcome's class, status and hint, an
// Action (success, retry or give_up), no delay (the SDK chooses it unseen),
// and a reason that says it is the SDK's rule.
func SDKDecision(in Input, retries int) Decision {
	d := decision(in, max(in.Attempt, 1))
	if d.succeeded(in) {
		return d
	}
	retried := in.Status == 0 || in.Status == http.StatusRequestTimeout || in.Status == http.StatusConflict ||
		in.Status == http.StatusTooManyRequests || in.Status >= 500
	switch in.ShouldRetry {
	case "true":
		retried = true
	case "false":
		retried = false
	}
	switch {
	case d.Class == Canceled || in.Ended != nil:
		return d.giveUp("control cohort: the caller's context ended; the SDK does not retry")
	case !retried:
		return d.giveUp("control cohort: the SDK does not retry this")
	case d.Attempt > retries:
		return d.giveUp("control cohort: the SDK's %d retries are spent", retries)
	}
	d.Action = Retry
	d.Reason = fmt.Sprintf("%s: control cohort: the SDK retries this with its own backoff (retry %d of %d)", head(d.Class, d.Status), d.Attempt, retries)
	return d
}
