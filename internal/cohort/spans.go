package cohort

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
)

// Cohorts lists the cohorts in the order reports show them.
var Cohorts = []rollout.Cohort{rollout.Treatment, rollout.Control}

// Stats are one cohort's figures. The JSON names of the first five fields
// are the demo's summary.json contract.
type Stats struct {
	Runs           int `json:"runs"`            // distinct run ids of the cohort's calls
	Calls          int `json:"calls"`           // call spans
	FailedCalls    int `json:"failed_calls"`    // call spans with status Error
	Attempts       int `json:"attempts"`        // attempt spans sent (dynretry.sent not false)
	WastedAttempts int `json:"wasted_attempts"` // attempts sent that did not succeed
	// ErrorRate is FailedCalls/Calls, 0 without calls.
	ErrorRate float64 `json:"error_rate"`
	// LatencyP50S and LatencyP95S are quantiles of the calls' durations
	// (failed calls too) in seconds, by nearest rank; 0 without calls.
	LatencyP50S float64 `json:"latency_p50_s"`
	LatencyP95S float64 `json:"latency_p95_s"`

	// Classes breaks the failures down by error class (dynretry.class).
	Classes map[string]*ClassStats `json:"classes,omitempty"`
	// Durations are the calls' durations in seconds, sorted; OK says, in the
	// same order, whether each call succeeded.
	Durations []float64 `json:"-"`
	OK        []bool    `json:"-"`
	// WastedSumSq is the sum over calls of the square of each call's wasted
	// attempts: with WastedAttempts, the variance of wasted attempts per call.
	WastedSumSq float64 `json:"-"`
}

// ClassStats are a cohort's failures of one error class.
type ClassStats struct {
	Failures    int `json:"failures"`     // attempts sent that failed with the class
	Retries     int `json:"retries"`      // of which were retried
	GiveUps     int `json:"give_ups"`     // of which ended the call
	FailedCalls int `json:"failed_calls"` // calls that failed with the class (error.type)
}

// WastedPerCall is WastedAttempts/Calls, 0 without calls.
func (s *Stats) WastedPerCall() float64 {
	if s.Calls == 0 {
		return 0
	}
	return float64(s.WastedAttempts) / float64(s.Calls)
}

// Succeeded returns the durations of the calls that succeeded, sorted.
func (s *Stats) Succeeded() []float64 {
	out := make([]float64, 0, len(s.Durations))
	for i, d := range s.Durations {
		if s.OK[i] {
			out = append(out, d)
		}
	}
	return out
}

// AnswerQuantile is the q-quantile of the time to answer, by nearest rank,
// where a failed call counts as never answered (+Inf): so it is +Inf when
// more than 1−q of the calls failed, and failing fast never makes a cohort
// look quicker. It is NaN without calls.
func (s *Stats) AnswerQuantile(q float64) float64 {
	if s.Calls == 0 {
		return math.NaN()
	}
	ok := s.Succeeded()
	if i := rank(q, s.Calls); i < len(ok) {
		return ok[i]
	}
	return math.Inf(1)
}

// SlowerThan returns how many calls failed or took longer than d seconds.
func (s *Stats) SlowerThan(d float64) int {
	n := 0
	for i, x := range s.Durations {
		if !s.OK[i] || x > d {
			n++
		}
	}
	return n
}

// EventKind says what a timeline Event is.
type EventKind string

// The kinds of timeline events.
const (
	// Event429 is a response with status 429 (an attempt span with
	// http.response.status_code 429), at the attempt's end.
	Event429 EventKind = "429"
	// EventWait is the gap between an attempt's end and the start of the
	// next attempt of the same call: a wait before a retry, whoever chose
	// it (dynretry, or an SDK's own backoff).
	EventWait EventKind = "wait"
)

// Event is one point or interval on the timeline.
type Event struct {
	Kind   EventKind
	Cohort rollout.Cohort
	At     time.Time     // when it happened or began
	Length time.Duration // for EventWait; 0 otherwise
}

// Summary is the comparison of the cohorts that Read returns.
type Summary struct {
	// Cohorts holds both cohorts, also when one had no calls.
	Cohorts map[rollout.Cohort]*Stats `json:"cohorts"`
	// ErrorRateReduction is 1 − treatment's error rate / control's: set
	// only when both cohorts had calls and control had failures.
	ErrorRateReduction *float64 `json:"error_rate_reduction"`
	// Timeline holds the 429s and the waits, ordered by time.
	Timeline []Event `json:"-"`
	// Start and End bound the spans read (zero without spans).
	Start, End time.Time `json:"-"`
}

// Empty returns the Summary of no spans: both cohorts without calls.
func Empty() *Summary {
	s := &Summary{Cohorts: map[rollout.Cohort]*Stats{}}
	for _, c := range Cohorts {
		s.Cohorts[c] = &Stats{Classes: map[string]*ClassStats{}}
	}
	return s
}

// ErrNoCalls is returned by Read when the spans hold no call of either
// cohort: an empty file, or spans of another program.
var ErrNoCalls = errors.New("no dynretry call spans (" + telemetry.SpanCall + ") in the traces")

// span is the part of an exported span (stdouttrace's JSON) that Read uses.
type span struct {
	Name        string
	SpanContext struct{ SpanID string }
	Parent      struct{ SpanID string }
	StartTime   time.Time
	EndTime     time.Time
	Attributes  []struct {
		Key   string
		Value struct{ Value any }
	}
	Status struct{ Code string }
}

func (s *span) attr(key string) (any, bool) {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.Value, true
		}
	}
	return nil, false
}

func (s *span) str(key string) string {
	v, _ := s.attr(key)
	str, _ := v.(string)
	return str
}

func (s *span) num(key string) float64 {
	v, _ := s.attr(key)
	f, _ := v.(float64) // encoding/json decodes every number as float64
	return f
}

// attempt is what Read keeps of an attempt span until it has seen all of
// its call's attempts.
type attempt struct {
	n          int
	start, end time.Time
	cohort     rollout.Cohort
	wasted     bool
}

// Read reads spans, one JSON object per line (blank lines are skipped), and
// compares the cohorts. Call spans (telemetry.SpanCall) give runs, calls,
// failures and durations; attempt spans (telemetry.SpanAttempt) give
// attempts (those sent), wasted attempts (those sent that did not succeed),
// the per-class breakdown and the timeline. Spans of other names, and
// spans whose dynretry.cohort is neither cohort, are ignored.
//
// A line that is not JSON is an error naming the line; so is a file with
// no call span of either cohort (ErrNoCalls).
func Read(r io.Reader) (*Summary, error) {
	s := Empty()
	runs := map[rollout.Cohort]map[string]bool{}
	for _, c := range Cohorts {
		runs[c] = map[string]bool{}
	}
	type call struct {
		dur float64
		ok  bool
	}
	calls := map[rollout.Cohort][]call{}
	attempts := map[string][]attempt{} // by parent (call) span id

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var sp span
		if err := json.Unmarshal(sc.Bytes(), &sp); err != nil {
			return nil, fmt.Errorf("traces line %d: not a span: %w", line, err)
		}
		cohort := rollout.Cohort(sp.str(telemetry.AttrCohort))
		c, ok := s.Cohorts[cohort]
		if !ok || (sp.Name != telemetry.SpanCall && sp.Name != telemetry.SpanAttempt) {
			continue
		}
		if s.Start.IsZero() || sp.StartTime.Before(s.Start) {
			s.Start = sp.StartTime
		}
		if sp.EndTime.After(s.End) {
			s.End = sp.EndTime
		}
		switch sp.Name {
		case telemetry.SpanCall:
			c.Calls++
			failed := sp.Status.Code == "Error"
			if failed {
				c.FailedCalls++
				if class := sp.str(string(telemetry.KeyErrorType)); class != "" {
					c.class(class).FailedCalls++
				}
			}
			runs[cohort][sp.str(telemetry.AttrRunID)] = true
			calls[cohort] = append(calls[cohort], call{max(0, sp.EndTime.Sub(sp.StartTime).Seconds()), !failed})
		case telemetry.SpanAttempt:
			if sent, ok := sp.attr(telemetry.AttrSent); ok && sent == false {
				continue
			}
			c.Attempts++
			decision := sp.str(telemetry.AttrDecision)
			wasted := decision != "success"
			if wasted {
				c.WastedAttempts++
			}
			if class := sp.str(telemetry.AttrClass); class != "" && wasted {
				cs := c.class(class)
				cs.Failures++
				switch decision {
				case "retry":
					cs.Retries++
				case "give_up":
					cs.GiveUps++
				}
			}
			if sp.num(string(telemetry.KeyHTTPStatusCode)) == 429 {
				s.Timeline = append(s.Timeline, Event{Kind: Event429, Cohort: cohort, At: sp.EndTime})
			}
			attempts[sp.Parent.SpanID] = append(attempts[sp.Parent.SpanID], attempt{
				n: int(sp.num(telemetry.AttrAttempt)), start: sp.StartTime, end: sp.EndTime, cohort: cohort, wasted: wasted,
			})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading traces: %w", err)
	}

	for _, as := range attempts {
		slices.SortFunc(as, func(a, b attempt) int { return a.n - b.n })
		wasted := 0
		for i, a := range as {
			if a.wasted {
				wasted++
			}
			if i+1 < len(as) && as[i+1].start.After(a.end) {
				s.Timeline = append(s.Timeline, Event{Kind: EventWait, Cohort: a.cohort, At: a.end, Length: as[i+1].start.Sub(a.end)})
			}
		}
		s.Cohorts[as[0].cohort].WastedSumSq += float64(wasted * wasted)
	}
	slices.SortStableFunc(s.Timeline, func(a, b Event) int { return a.At.Compare(b.At) })

	for _, cohort := range Cohorts {
		c := s.Cohorts[cohort]
		c.Runs = len(runs[cohort])
		for _, x := range calls[cohort] {
			c.Durations = append(c.Durations, x.dur)
			c.OK = append(c.OK, x.ok)
		}
	}
	if err := s.finish(); err != nil {
		return nil, err
	}
	return s, nil
}

// finish sorts each cohort's durations (OK alike), derives the error
// rates, the latency quantiles and the reduction from the counts, and
// returns ErrNoCalls when neither cohort has a call.
func (s *Summary) finish() error {
	total := 0
	for _, cohort := range Cohorts {
		c := s.Cohorts[cohort]
		total += c.Calls
		idx := make([]int, len(c.Durations))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(c.Durations[a], c.Durations[b]) })
		d, ok := make([]float64, len(idx)), make([]bool, len(idx))
		for i, j := range idx {
			d[i], ok[i] = c.Durations[j], c.OK[j]
		}
		c.Durations, c.OK = d, ok
		if c.Calls > 0 {
			c.ErrorRate = float64(c.FailedCalls) / float64(c.Calls)
		}
		if n := len(c.Durations); n > 0 {
			c.LatencyP50S, c.LatencyP95S = c.Durations[rank(0.50, n)], c.Durations[rank(0.95, n)]
		}
	}
	if total == 0 {
		return ErrNoCalls
	}
	t, ctl := s.Cohorts[rollout.Treatment], s.Cohorts[rollout.Control]
	if t.Calls > 0 && ctl.Calls > 0 && ctl.FailedCalls > 0 {
		red := 1 - t.ErrorRate/ctl.ErrorRate
		s.ErrorRateReduction = &red
	}
	return nil
}

// class returns the breakdown of class, adding it when new.
func (s *Stats) class(name string) *ClassStats {
	cs := s.Classes[name]
	if cs == nil {
		cs = &ClassStats{}
		s.Classes[name] = cs
	}
	return cs
}
