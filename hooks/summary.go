package hooks

import (
	"context"
	"sync"
	"time"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
)

// A Summary is what happened to one LLM call's attempts, as the error
// reporter and the runner's logs need it.
type Summary struct {
	// Cohort is the call's cohort.
	Cohort rollout.Cohort
	// Attempts is the number of attempts sent.
	Attempts int
	// Waited is the time spent waiting before and between attempts (known
	// for treatment calls; control calls wait inside the SDK).
	Waited time.Duration
	// Class is the last failure's class, "" if none failed.
	Class retry.Class
	// Status is the last attempt's HTTP status, 0 without a response.
	Status int
	// Hint and HintSource are the last usable hint a provider gave.
	Hint       time.Duration
	HintSource retry.Source
	// Decision is the last decision.
	Decision retry.Action
	// Reason explains the last decision.
	Reason string
}

// recorder collects a call's Summary from its events.
type recorder struct {
	mu sync.Mutex
	s  Summary
}

type recorderKey struct{}

func withRecorder(ctx context.Context, cohort rollout.Cohort) (context.Context, *recorder) {
	rec := &recorder{s: Summary{Cohort: cohort}}
	return context.WithValue(ctx, recorderKey{}, rec), rec
}

func (r *recorder) add(e retry.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := e.Decision
	if e.Sent {
		r.s.Attempts = max(r.s.Attempts, d.Attempt)
	}
	r.s.Waited = max(r.s.Waited, e.Waited)
	if d.Class != "" {
		r.s.Class, r.s.Status = d.Class, d.Status
	}
	if d.Hint.Valid() {
		r.s.Hint, r.s.HintSource = d.Hint.Wait, d.Hint.Source
	}
	r.s.Decision, r.s.Reason = d.Action, d.Reason
}

func (r *recorder) summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s
}

// SummaryOf returns the Summary of the call ctx belongs to, as its events
// have made it so far, and whether ctx belongs to one (it does inside
// Middleware). An HTTP-level caller, such as a proxy answering one call per
// request, reads it before its response is written.
func SummaryOf(ctx context.Context) (Summary, bool) {
	if rec, ok := ctx.Value(recorderKey{}).(*recorder); ok {
		return rec.summary(), true
	}
	return Summary{}, false
}

// Observe returns an observer that sends every event to next and records it
// in the call's Summary, when ctx carries one (it does inside Middleware).
func Observe(next retry.Observer) retry.Observer {
	return retry.ObserverFunc(func(ctx context.Context, e retry.Event) {
		if next != nil {
			next.Observe(ctx, e)
		}
		if rec, ok := ctx.Value(recorderKey{}).(*recorder); ok {
			rec.add(e)
		}
	})
}

// A CallError is a failed LLM call with what happened to its attempts.
type CallError struct {
	Err     error
	Summary Summary
}

func (e *CallError) Error() string { return e.Err.Error() }

// Unwrap returns the call's error.
func (e *CallError) Unwrap() error { return e.Err }
