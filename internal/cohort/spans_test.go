package cohort_test

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/internal/cohort"
	"github.com/autopack/dynretry/internal/cohort/cohorttest"
	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
)

// TestReadFigures records known calls through the telemetry package and
// reads them back.
func TestReadFigures(t *testing.T) {
	var b bytes.Buffer
	cohorttest.Write(t, &b, []cohorttest.Call{
		{Cohort: rollout.Treatment, RunID: "run-1", Latency: 1 * time.Second},
		{Cohort: rollout.Treatment, RunID: "run-1", Start: 2 * time.Second, Wasted: 2, Latency: 4 * time.Second},
		{Cohort: rollout.Treatment, RunID: "run-2", Wasted: 1, Failed: true, Class: retry.QuotaExhausted, Latency: 2 * time.Second},
		{Cohort: rollout.Control, RunID: "run-3", Wasted: 3, Failed: true, Latency: 3 * time.Second},
		{Cohort: rollout.Control, RunID: "run-3", Start: time.Second, Latency: 500 * time.Millisecond},
	})
	s, err := cohort.Read(&b)
	require.NoError(t, err)

	tr, ct := s.Cohorts[rollout.Treatment], s.Cohorts[rollout.Control]
	assert.Equal(t, 2, tr.Runs)
	assert.Equal(t, 3, tr.Calls)
	assert.Equal(t, 1, tr.FailedCalls)
	assert.Equal(t, 1+3+2, tr.Attempts)
	assert.Equal(t, 0+2+2, tr.WastedAttempts, "the give-up is wasted too")
	assert.Equal(t, float64(0+4+4), tr.WastedSumSq)
	assert.InDelta(t, 1.0/3, tr.ErrorRate, 1e-12)
	assert.Equal(t, []float64{1, 2, 4}, tr.Durations)
	assert.Equal(t, []bool{true, false, true}, tr.OK)
	assert.Equal(t, 2.0, tr.LatencyP50S)
	assert.Equal(t, 4.0, tr.LatencyP95S)
	assert.Equal(t, &cohort.ClassStats{Failures: 2, Retries: 1, GiveUps: 1, FailedCalls: 1}, tr.Classes[string(retry.QuotaExhausted)])
	assert.Equal(t, &cohort.ClassStats{Failures: 2, Retries: 2}, tr.Classes[string(retry.RateLimited)])

	assert.Equal(t, 1, ct.Runs)
	assert.Equal(t, 2, ct.Calls)
	assert.Equal(t, 5, ct.Attempts)
	assert.Equal(t, 4, ct.WastedAttempts)
	assert.Equal(t, 0.5, ct.ErrorRate)
	require.NotNil(t, s.ErrorRateReduction)
	assert.InDelta(t, 1-(1.0/3)/0.5, *s.ErrorRateReduction, 1e-12)

	// Time to answer: failures count as never answered.
	assert.Equal(t, 4.0, tr.AnswerQuantile(0.5))
	assert.True(t, math.IsInf(tr.AnswerQuantile(0.95), 1))
	assert.Equal(t, 2, tr.SlowerThan(3), "the failed call and the 4 s one")
	assert.Equal(t, 1, tr.SlowerThan(4), "the failed call")
	assert.Equal(t, 3, tr.SlowerThan(0.5))

	// Timeline: one 429 per rate-limited failure (the quota failures are
	// 500s here), and one wait between each pair of attempts.
	n429 := map[rollout.Cohort]int{}
	waits := map[rollout.Cohort]time.Duration{}
	for i, e := range s.Timeline {
		if i > 0 {
			require.False(t, e.At.Before(s.Timeline[i-1].At), "ordered by time")
		}
		switch e.Kind {
		case cohort.Event429:
			n429[e.Cohort]++
		case cohort.EventWait:
			waits[e.Cohort] += e.Length
		}
	}
	assert.Equal(t, map[rollout.Cohort]int{rollout.Treatment: 2, rollout.Control: 4}, n429)
	// The attempts take Latency/(2n) each, the waits share the rest.
	assert.InDelta(t, (4*time.Second-3*(4*time.Second/6)).Seconds()+(2*time.Second-2*(2*time.Second/4)).Seconds(), waits[rollout.Treatment].Seconds(), 1e-6)
	assert.InDelta(t, (3*time.Second - 4*(3*time.Second/8)).Seconds(), waits[rollout.Control].Seconds(), 1e-6)
	assert.Equal(t, 4*time.Second, s.End.Sub(s.Start)-2*time.Second, "from the first start to the last end: 2s + 4s")
}

func TestReadBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"empty":        "",
		"blank lines":  "\n\n",
		"other spans":  `{"Name":"http.get","Attributes":[]}` + "\n",
		"other cohort": `{"Name":"dynretry.call","Attributes":[{"Key":"dynretry.cohort","Value":{"Type":"STRING","Value":"x"}}]}` + "\n",
	} {
		_, err := cohort.Read(strings.NewReader(in))
		assert.ErrorIs(t, err, cohort.ErrNoCalls, name)
	}
	_, err := cohort.Read(strings.NewReader(`{"Name":"dynretry.call"}` + "\nnot json\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "traces line 2")
}

// TestReadOneCohort: a cohort without calls is there, empty, and no
// reduction is claimed.
func TestReadOneCohort(t *testing.T) {
	var b bytes.Buffer
	calls := make([]cohorttest.Call, 5)
	for i := range calls {
		calls[i] = cohorttest.Call{Cohort: rollout.Control, RunID: fmt.Sprint("run-", i), Failed: i == 0, Wasted: 1, Latency: time.Second}
	}
	cohorttest.Write(t, &b, calls)
	s, err := cohort.Read(&b)
	require.NoError(t, err)
	assert.Zero(t, s.Cohorts[rollout.Treatment].Calls)
	assert.Nil(t, s.ErrorRateReduction)
	assert.True(t, math.IsNaN(s.Cohorts[rollout.Treatment].AnswerQuantile(0.95)))
}
