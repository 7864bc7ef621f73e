package retry

import (
	"context"
	"time"
)

// An Observer is told of every decision. Observe is called synchronously on
// the caller's goroutine, once per attempt after its outcome is decided and
// before any wait, and once more if the call ends before an attempt is sent.
// It must not block for long; ctx is the caller's, so an observer can find
// its own per-call state in it.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to the Observer interface.
type ObserverFunc func(ctx context.Context, e Event)

// Observe calls f(ctx, e).
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// An Event is one decision and its context.
type Event struct {
	// Key names the limit the call is paced on.
	Key Key
	// Decision is the decision. Decision.Attempt is the attempt decided on.
	Decision Decision
	// Sent is false when the call ended before this attempt was sent: the
	// wait would have passed the deadline, or the context ended.
	Sent bool
	// Start is when the attempt was sent; End when its outcome was decided.
	Start, End time.Time
	// Queued is how long the call waited before this attempt: the previous
	// decision's delay and any hold of the limit.
	Queued time.Duration
	// Waited is how long the call has waited in all, this attempt included.
	Waited time.Duration
	// Budget is the retry budget's tokens left for the key, or −1 when the
	// budget is disabled.
	Budget float64
	// Local reports that the pacer's verdict for this attempt came from a
	// shared store's local state, the shared one being unavailable (see
	// Verdict.Local).
	Local bool
}
