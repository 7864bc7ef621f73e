package hooks_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
)

// recordingReporter keeps the reports it receives.
type recordingReporter struct {
	got  []hooks.ErrorReport
	path string
	err  error
}

func (r *recordingReporter) Report(_ context.Context, rep hooks.ErrorReport) (string, error) {
	r.got = append(r.got, rep)
	return r.path, r.err
}

func TestReporterAddsSummary(t *testing.T) {
	s := hooks.Summary{
		Cohort: rollout.Treatment, Attempts: 4, Waited: 3500 * time.Millisecond, Class: retry.RateLimited, Status: 429,
		Hint: 1200 * time.Millisecond, HintSource: retry.SourceRetryAfterMS, Decision: retry.GiveUp,
		Reason: "rate_limited (HTTP 429): 8 attempts made",
	}
	ce := &hooks.CallError{Err: errors.New("429 Too Many Requests"), Summary: s}
	want := map[string]any{
		"provider":             "openai",
		"dynretry.cohort":      "treatment",
		"dynretry.class":       "rate_limited",
		"dynretry.attempts":    4,
		"dynretry.waited_ms":   int64(3500),
		"dynretry.status":      429,
		"dynretry.hint_ms":     int64(1200),
		"dynretry.hint_source": "retry-after-ms",
		"dynretry.decision":    "give_up",
		"dynretry.reason":      "rate_limited (HTTP 429): 8 attempts made",
	}
	for name, err := range map[string]error{
		"direct":      ce,
		"errors.Join": errors.Join(errors.New("runner: builder call for phase p"), ce),
		"fmt %w":      fmt.Errorf("runner: %w", ce),
		"deep":        fmt.Errorf("outer: %w", errors.Join(errors.New("x"), fmt.Errorf("inner: %w", ce))),
	} {
		t.Run(name, func(t *testing.T) {
			next := &recordingReporter{path: "the/path.json", err: errors.New("disk full")}
			caller := map[string]any{"provider": "openai"}
			before := maps.Clone(caller)
			path, rerr := hooks.Reporter(next).Report(context.Background(), hooks.ErrorReport{
				Err: err, RunID: "run", PhaseID: "p", Component: "llm_service", Operation: "builder", Context: caller,
			})
			assert.Equal(t, "the/path.json", path, "next's path is returned")
			assert.EqualError(t, rerr, "disk full", "next's error is returned")
			require.Len(t, next.got, 1)
			got := next.got[0]
			assert.Equal(t, want, got.Context)
			assert.Equal(t, before, caller, "the caller's map is not modified")
			assert.Same(t, err, got.Err, "the error is passed as is")
			assert.Equal(t, "run", got.RunID)
			assert.Equal(t, "p", got.PhaseID)
			assert.Equal(t, "llm_service", got.Component)
			assert.Equal(t, "builder", got.Operation)
		})
	}
}

func TestReporterWithoutHint(t *testing.T) {
	ce := &hooks.CallError{Err: errors.New("401"), Summary: hooks.Summary{
		Cohort: rollout.Control, Attempts: 1, Class: retry.Auth, Status: 401, Decision: retry.GiveUp, Reason: "auth",
	}}
	next := &recordingReporter{}
	_, err := hooks.Reporter(next).Report(context.Background(), hooks.ErrorReport{Err: ce}) // nil Context
	require.NoError(t, err)
	require.Len(t, next.got, 1)
	c := next.got[0].Context
	assert.NotContains(t, c, "dynretry.hint_ms")
	assert.NotContains(t, c, "dynretry.hint_source")
	assert.Equal(t, "control", c["dynretry.cohort"])
	assert.Equal(t, "auth", c["dynretry.class"])
	assert.Equal(t, 1, c["dynretry.attempts"])
}

func TestReporterPassesOtherErrors(t *testing.T) {
	for name, err := range map[string]error{
		"plain":   errors.New("disk full"),
		"wrapped": fmt.Errorf("x: %w", errors.New("y")),
		"nil":     nil,
	} {
		t.Run(name, func(t *testing.T) {
			next := &recordingReporter{path: "p"}
			caller := map[string]any{"k": "v"}
			rep := hooks.ErrorReport{Err: err, RunID: "run", Component: "c", Context: caller}
			path, rerr := hooks.Reporter(next).Report(context.Background(), rep)
			require.NoError(t, rerr)
			assert.Equal(t, "p", path)
			require.Len(t, next.got, 1)
			assert.True(t, reflect.DeepEqual(rep, next.got[0]), "got %+v, want %+v", next.got[0], rep)
			assert.Equal(t, reflect.ValueOf(caller).Pointer(), reflect.ValueOf(next.got[0].Context).Pointer(), "the same map, untouched")
			assert.Equal(t, map[string]any{"k": "v"}, caller)
		})
	}
}

// TestReporterIntoFileReporter: the decorated FileReporter names the file by
// the call's class and writes the dynretry keys.
func TestReporterIntoFileReporter(t *testing.T) {
	dir := t.TempDir()
	rep := hooks.Reporter(&hooks.FileReporter{Dir: dir, Now: fixedClock(t0)})
	ce := &hooks.CallError{Err: errors.New("quota"), Summary: hooks.Summary{
		Cohort: rollout.Treatment, Attempts: 1, Class: retry.QuotaExhausted, Status: 429, Decision: retry.GiveUp, Reason: "quota_exhausted (HTTP 429): billing",
	}}
	path, err := rep.Report(context.Background(), hooks.ErrorReport{Err: errors.Join(errors.New("runner"), ce), RunID: "run", Component: "llm_service"})
	require.NoError(t, err)
	r, _ := readReport(t, path)
	assert.Equal(t, "QuotaExhausted", r.ErrorType)
	assert.Equal(t, "quota_exhausted", r.ContextData["dynretry.class"])
	assert.Equal(t, float64(1), r.ContextData["dynretry.attempts"])
	assert.Equal(t, "quota_exhausted (HTTP 429): billing", r.ContextData["dynretry.reason"])
}
