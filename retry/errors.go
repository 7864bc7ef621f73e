package retry

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ErrDeadline reports that a call gave up because its next attempt could
// not be sent before the caller's deadline. It wraps
// context.DeadlineExceeded.
var ErrDeadline = fmt.Errorf("retry: the wait would pass the deadline: %w", context.DeadlineExceeded)

// An Error is a call that failed: the engine gave up, or the caller's
// context ended, or the wait would have passed its deadline.
type Error struct {
	// Decision is the last decision, with the failure's class and the
	// reason for giving up.
	Decision Decision
	// Attempts is the number of attempts sent.
	Attempts int
	// Waited is the total time spent waiting between and before attempts.
	Waited time.Duration
	// Err is the last attempt's error (a *ResponseError for a failed
	// response), or nil when no attempt was sent.
	Err error
	// Cause is why the call stopped when the provider did not decide it:
	// ErrDeadline, or the context's error. Otherwise nil.
	Cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "retry: gave up after %d attempt", e.Attempts)
	if e.Attempts != 1 {
		b.WriteString("s")
	}
	if e.Waited > 0 {
		fmt.Fprintf(&b, " (waited %s)", fmtDur(e.Waited))
	}
	b.WriteString(": " + e.Decision.Reason)
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the last attempt's error and the cause, those that are set.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Err, e.Cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
