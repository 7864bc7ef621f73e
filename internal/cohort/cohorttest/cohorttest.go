// Package cohorttest writes traces for tests: calls of both cohorts,
// recorded by the real telemetry package and exported by the OpenTelemetry
// SDK as JSON lines, exactly as the demo and a running plugin write them,
// in virtual time (testing/synctest), so the calls' durations are exact.
package cohorttest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
	"github.com/autopack/dynretry/telemetry/export"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Call describes one LLM call to record.
type Call struct {
	Cohort rollout.Cohort
	RunID  string
	// Start is when the call starts, from the start of the traces.
	Start time.Duration
	// Wasted is the number of failed attempts (429s, each retried), then
	// one more attempt that succeeds, or, when Failed, gives up.
	Wasted int
	Failed bool
	// Class is the failures' class; empty means rate_limited (status 429).
	Class retry.Class
	// Latency is the call's duration: one attempt takes all of it; n > 1
	// attempts take Latency/(2·n) each, and the n−1 waits between them
	// share the rest.
	Latency time.Duration
}

// Write records calls and writes their spans to w, one JSON object per
// line. The calls run concurrently in a synctest bubble, each starting at
// its Start.
func Write(t *testing.T, w io.Writer, calls []Call) {
	t.Helper()
	var mu sync.Mutex
	sink := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return w.Write(p)
	})
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		file, err := export.TraceFile(sink)
		if err != nil {
			t.Fatal(err)
		}
		tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceName: "cohorttest", SpanExporters: []sdktrace.SpanExporter{file}})
		if err != nil {
			t.Fatal(err)
		}
		obs := tel.Observer()
		var wg sync.WaitGroup
		for _, c := range calls {
			wg.Go(func() {
				time.Sleep(c.Start)
				record(ctx, tel, obs, c)
			})
		}
		wg.Wait()
		if err := tel.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// record makes one call's spans.
func record(ctx context.Context, tel *telemetry.Telemetry, obs retry.Observer, c Call) {
	flag := rollout.Assignment{Cohort: c.Cohort, FlagKey: rollout.FlagKey, Variant: "off", Reason: "TARGETING_MATCH", Provider: rollout.PercentProviderName}
	if c.Cohort == rollout.Treatment {
		flag.Variant = "on"
	}
	ctx, span := tel.StartCall(ctx, telemetry.CallInfo{RunID: c.RunID, PhaseID: "phase-1", Role: "builder", Provider: "openai", Model: "gpt-4o", Flag: flag})
	class := c.Class
	if class == "" {
		class = retry.RateLimited
	}
	status := 429
	if class != retry.RateLimited {
		status = 500
	}
	n := c.Wasted + 1
	work, wait := c.Latency, time.Duration(0)
	if n > 1 {
		work = c.Latency / time.Duration(2*n)
		wait = (c.Latency - work*time.Duration(n)) / time.Duration(n-1)
	}
	key := retry.Key{Provider: "openai", Model: "gpt-4o"}
	for i := 1; i <= n; i++ {
		start := time.Now()
		time.Sleep(work)
		d := retry.Decision{Attempt: i, Action: retry.Success}
		switch {
		case i < n:
			d.Action, d.Class, d.Status, d.Delay, d.HintSource = retry.Retry, class, status, wait, retry.SourceBackoff
			d.Reason = fmt.Sprintf("%s: retry %d", class, i)
		case c.Failed:
			d.Action, d.Class, d.Status, d.HintSource = retry.GiveUp, class, status, retry.SourceBackoff
			d.Reason = fmt.Sprintf("%s: giving up", class)
		default:
			d.Status = 200
		}
		obs.Observe(ctx, retry.Event{Key: key, Decision: d, Sent: true, Start: start, End: time.Now()})
		if i < n {
			time.Sleep(wait)
		}
	}
	if c.Failed {
		tel.EndCall(ctx, span, class, nil)
		return
	}
	tel.EndCall(ctx, span, "", nil)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
