package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autopack/dynretry/sim"
)

// A record is what the harness saw of one call: when it started, its
// deadline, every attempt that reached the provider's transport, and how it
// ended. The tracking transport fills in the attempts; the worker the rest.
type record struct {
	req      Request
	start    time.Time
	deadline time.Time
	end      time.Time
	err      error

	mu       sync.Mutex
	attempts []attempt
	cancel   context.CancelCauseFunc // ends the call when it runs away
}

// An attempt is one request the retry layer handed to the transport.
type attempt struct {
	start, end time.Time
	status     int   // 0 when no response
	err        error // why no response
	quota      bool  // the response was a billing/quota error
	overloaded bool  // the response was an overload error (503, 529)
	// hint is the wait the response asked for (retry-after-ms, else
	// retry-after in seconds or as a date); hinted reports one was given.
	hint   time.Duration
	hinted bool
}

type recordKey struct{}

// withRecord returns ctx carrying rec, for the tracking transport to find.
func withRecord(ctx context.Context, rec *record) context.Context {
	return context.WithValue(ctx, recordKey{}, rec)
}

// tracker is an http.RoundTripper that records each attempt in the call's
// record (found in the request's context) and passes it to base. It sits
// below every policy's retry layer, just above the simulated provider. For
// failed responses it reads the body (they are small JSON) to spot quota
// errors and hands the caller an identical body.
//
// It hands the provider a copy of each request, naming its call in
// sim.CallHeader (the call's index in the workload), so that the provider
// draws each attempt's faults from the call and the attempt, not from the
// order of arrivals. The copy also keeps a data race out of the suite:
// failsafehttp assigns a new Body to the caller's request for each attempt
// while a transport may still be closing the previous attempt's body in
// another goroutine (net/http's and sim's do).
//
// Each attempt is sent, and its answer taken, in its call's turn (see
// turns).
//
// It also stops runaway policies, which would otherwise never let virtual
// time advance (rejections are answered in zero time, so a policy that
// retries at once, such as cenkalti/backoff told "retry-after: 0", spins at
// one instant): a call that sends hotLoop (20) attempts at one instant is
// ended with ErrHotLoop, and once a cell's attempts pass attemptCap (40)
// per call every call is ended with ErrAttemptCap. Both count as failed
// calls, and in the column "stopped".
type tracker struct {
	base  http.RoundTripper
	limit int64
	sent  *atomic.Int64
	stop  context.CancelCauseFunc // ends every call of the cell
	turns *turns                  // each attempt is sent, and its answer taken, in turn
}

// hotLoop is the most attempts a call may send without virtual time
// advancing.
const hotLoop = 20

// ErrHotLoop ends a call that retried hotLoop times at one instant: in real
// time it would have hammered the provider for as long as its policy allows.
var ErrHotLoop = errors.New("bench: the call retried in a hot loop (many attempts at one instant); stopped")

// ErrAttemptCap ends every call of a cell whose attempts passed the cap.
var ErrAttemptCap = errors.New("bench: the cell's attempts passed the cap; stopped")

func (t tracker) RoundTrip(req *http.Request) (*http.Response, error) {
	rec, _ := req.Context().Value(recordKey{}).(*record)
	if rec == nil {
		panic("bench: a request reached the provider without its call record in its context")
	}
	t.turns.wait(req.Context())
	a := attempt{start: time.Now()}
	sent := req.Clone(req.Context())
	sent.Header.Set(sim.CallHeader, strconv.Itoa(rec.req.Index))
	resp, err := t.base.RoundTrip(sent)
	t.turns.wait(req.Context())
	a.end = time.Now()
	if err != nil {
		a.err = err
	} else {
		a.status = resp.StatusCode
		a.overloaded = resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == 529
		if resp.StatusCode >= 400 {
			a.hint, a.hinted = statedWait(resp.Header, a.end)
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			a.quota = bytes.Contains(b, []byte("insufficient_quota")) || bytes.Contains(b, []byte("spend limit"))
			resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), errReader{rerr}))
		}
	}
	rec.mu.Lock()
	rec.attempts = append(rec.attempts, a)
	hot := len(rec.attempts) >= hotLoop && rec.attempts[len(rec.attempts)-hotLoop].start.Equal(a.start)
	rec.mu.Unlock()
	if hot {
		rec.cancel(ErrHotLoop)
	}
	if t.sent.Add(1) > t.limit {
		t.stop(ErrAttemptCap)
	}
	return resp, err
}

// statedWait returns the wait a response's headers ask for:
// retry-after-ms, else retry-after as seconds or an HTTP date (a past date
// is 0).
func statedWait(h http.Header, now time.Time) (time.Duration, bool) {
	if ms, err := strconv.ParseInt(h.Get("retry-after-ms"), 10, 64); err == nil && ms >= 0 {
		return time.Duration(ms) * time.Millisecond, true
	}
	v := h.Get("retry-after")
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// errReader returns its error, or io.EOF when it is nil.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) {
	if r.err == nil {
		return 0, io.EOF
	}
	return 0, r.err
}

// sleptPastDeadline reports whether the call waited into its deadline: it
// sent an attempt at or after the deadline (a wait ended too late), or it
// ended at or after the deadline while no attempt of it was in flight when
// the deadline came (it was waiting between attempts, or before the first,
// when its context expired). A call whose attempt was in flight at the
// deadline was cut by the deadline, not by a wait: not counted.
func (rec *record) sleptPastDeadline() bool {
	if rec.err == nil {
		return false
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, a := range rec.attempts {
		if !a.start.Before(rec.deadline) {
			return true
		}
	}
	if rec.end.Before(rec.deadline) {
		return false
	}
	if n := len(rec.attempts); n > 0 {
		if last := rec.attempts[n-1]; !last.end.Before(rec.deadline) {
			return false // in flight when the deadline came (it started before: checked above)
		}
	}
	return true
}

// giveUpLag returns how long a failed call went on after its own last
// response: from its last attempt's end (or its start, without attempts) to
// its end. A call may also learn from other calls' responses (shared pacing
// state), so a lag is not by itself a late give-up (see lateGiveUp).
func (rec *record) giveUpLag() time.Duration {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	from := rec.start
	if n := len(rec.attempts); n > 0 {
		from = rec.attempts[n-1].end
	}
	return rec.end.Sub(from)
}

// lateGiveUp reports whether the call was told by the provider to wait
// longer than its deadline allowed and yet did not end at once: it sent
// another attempt, or ended later than that response. Such a call should
// give up as soon as it reads the wait.
func (rec *record) lateGiveUp() bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, a := range rec.attempts {
		if a.hinted && a.hint > rec.deadline.Sub(a.end) {
			return i < len(rec.attempts)-1 || rec.end.After(a.end.Add(time.Millisecond))
		}
	}
	return false
}

// quotaRetries counts attempts sent after the call had been told its quota
// is exhausted.
func (rec *record) quotaRetries() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n, told := 0, false
	for _, a := range rec.attempts {
		if told {
			n++
		}
		told = told || a.quota
	}
	return n
}

// refusalLag returns how long the call went on after its first refused
// attempt (a 429 or a quota error) was answered; 0 when none was refused.
func (rec *record) refusalLag() time.Duration {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, a := range rec.attempts {
		if a.status == http.StatusTooManyRequests || a.quota {
			return rec.end.Sub(a.end)
		}
	}
	return 0
}
