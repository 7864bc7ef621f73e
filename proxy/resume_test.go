package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/autopack/dynretry/internal/cohort"
	"github.com/autopack/dynretry/proxy"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/telemetry"
)

const chatPath = "/openai/v1/chat/completions"

// The tests here run in virtual time (testing/synctest): a client and the
// proxy in process, the SDK's waits and the proxy's bound on them passing
// at once.

// openAI returns an openai-go client of the proxy with its default retries,
// for run-1 unless opts say otherwise.
func (f *fixture) openAI(opts ...option.RequestOption) *openai.Client {
	c := openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(f.url + "/openai/v1"), option.WithAPIKey(testKey), option.WithHTTPClient(f.client),
		option.WithHeader(proxy.HeaderRunID, "run-1"),
	}, opts...)...)
	return &c
}

var chatParams = openai.ChatCompletionNewParams{Model: "gpt-4o-mini", MaxTokens: openai.Int(5),
	Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}

// drain drains the proxy inside the bubble (its timer belongs to it) once
// every goroutine there is blocked or done: the calls still open end.
func (f *fixture) drain() {
	synctest.Wait()
	f.proxy.Drain()
}

// A call of the proxy's: its span and its attempt spans, in order.
type traced struct {
	call     tracetest.SpanStub
	attempts []tracetest.SpanStub
}

func attr(s tracetest.SpanStub, key string) any {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.AsInterface()
		}
	}
	return nil
}

// traces returns the ended calls, by run id, in the order they ended, each
// with the attempt spans whose parent it is.
func (f *fixture) traces() map[string][]traced {
	f.settle()
	spans := f.spans.GetSpans()
	out := map[string][]traced{}
	for _, s := range spans {
		if s.Name != telemetry.SpanCall {
			continue
		}
		c := traced{call: s}
		for _, a := range spans {
			if a.Name == telemetry.SpanAttempt && a.Parent.SpanID() == s.SpanContext.SpanID() {
				c.attempts = append(c.attempts, a)
			}
		}
		run, _ := attr(s, telemetry.AttrRunID).(string)
		out[run] = append(out[run], c)
	}
	return out
}

// counts returns the sum of the int64 counter name by the value of the
// attribute by, over the points that have every attribute-value pair of
// match.
func (f *fixture) counts(t *testing.T, name, by string, match ...string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	f.settle()
	require.NoError(t, f.metrics.Collect(context.Background(), &rm))
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			s, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != name || !ok {
				continue
			}
		points:
			for _, dp := range s.DataPoints {
				for i := 0; i+1 < len(match); i += 2 {
					if v, _ := dp.Attributes.Value(attribute.Key(match[i])); v.Emit() != match[i+1] {
						continue points
					}
				}
				v, _ := dp.Attributes.Value(attribute.Key(by))
				out[v.Emit()] += dp.Value
			}
		}
	}
	return out
}

// A control call that gets a 429 and then a success through the proxy,
// with openai-go's own retries, is one call as in process: one call span,
// two attempt spans (1 and 2), one successful call counted. The SDK's
// retry is told by the call id, or without one by X-Stainless-Retry-Count
// and the request.
func TestControlCallSpansSDKRetries(t *testing.T) {
	for name, opts := range map[string][]option.RequestOption{
		"call id":    {option.WithHeader(proxy.HeaderCallID, "call-7")},
		"no call id": nil,
	} {
		t.Run(name, func(t *testing.T) {
			up := &upstream{reply: limitedOnce}
			f := startInProcess(t, up, control...)
			synctest.Test(t, func(t *testing.T) {
				var raw *http.Response
				c, err := f.openAI(opts...).Chat.Completions.New(context.Background(), chatParams, option.WithResponseInto(&raw))
				require.NoError(t, err)
				assert.Equal(t, "ok", c.Choices[0].Message.Content)
				assert.Equal(t, "control", raw.Header.Get(proxy.HeaderCohort))
				f.drain()
			})
			calls := f.traces()["run-1"]
			require.Len(t, calls, 1, "one call")
			call := calls[0]
			assert.NotEqual(t, "Error", call.call.Status.Code.String())
			assert.Equal(t, "control", attr(call.call, telemetry.AttrCohort))
			require.Len(t, call.attempts, 2, "an attempt span per attempt, children of the call's")
			first, second := call.attempts[0], call.attempts[1]
			assert.Equal(t, int64(1), attr(first, telemetry.AttrAttempt))
			assert.Equal(t, "retry", attr(first, telemetry.AttrDecision))
			assert.Equal(t, "rate_limited", attr(first, telemetry.AttrClass))
			assert.Equal(t, int64(429), attr(first, "http.response.status_code"))
			assert.Nil(t, attr(first, "http.request.resend_count"))
			assert.Equal(t, int64(2), attr(second, telemetry.AttrAttempt))
			assert.Equal(t, "success", attr(second, telemetry.AttrDecision))
			assert.Equal(t, int64(1), attr(second, "http.request.resend_count"))
			assert.Equal(t, map[string]int64{"success": 1}, f.counts(t, telemetry.MetricCalls, telemetry.AttrOutcome))
			assert.Equal(t, map[string]int64{"retry": 1, "success": 1}, f.counts(t, telemetry.MetricAttempts, telemetry.AttrDecision))

			got := up.requests()
			require.Len(t, got, 2)
			for i, r := range got {
				assert.Equal(t, fmt.Sprint(i), r.Header.Get("X-Stainless-Retry-Count"))
				assert.Empty(t, r.Header.Get(proxy.HeaderCallID), "not forwarded")
			}
		})
	}
}

// When the SDK's retries are spent the call ends failed with the last
// response, as in process: one call of three attempts, and the final
// response carries the call's headers.
func TestControlCallEndsWhenTheSDKGivesUp(t *testing.T) {
	up := &upstream{reply: status(429, rateLimited, "Retry-After-Ms", "10")}
	f := startInProcess(t, up, control...)
	synctest.Test(t, func(t *testing.T) {
		_, err := f.openAI().Chat.Completions.New(context.Background(), chatParams)
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 429, apiErr.StatusCode)
		h := apiErr.Response.Header
		assert.Equal(t, "rate_limited", h.Get(proxy.HeaderClass))
		assert.Equal(t, "3", h.Get(proxy.HeaderAttempts))
		assert.Contains(t, h.Get(proxy.HeaderReason), "the SDK's 2 retries are spent")
		synctest.Wait()
		calls := f.traces()["run-1"]
		require.Len(t, calls, 1, "ended at once, not at the bound")
		assert.Equal(t, "Error", calls[0].call.Status.Code.String())
		assert.Equal(t, "rate_limited", attr(calls[0].call, "error.type"))
		require.Len(t, calls[0].attempts, 3)
		assert.Equal(t, "give_up", attr(calls[0].attempts[2], telemetry.AttrDecision))
		f.drain()
	})
	assert.Len(t, up.requests(), 3)
	assert.Equal(t, map[string]int64{"failure": 1}, f.counts(t, telemetry.MetricCalls, telemetry.AttrOutcome))
}

// A retry that never comes: the call stays open for the wait the response
// asked for (as the SDKs honor it, at most two minutes) and the grace, then
// ends failed with its last outcome.
func TestControlCallEndsWhenNoRetryComes(t *testing.T) {
	for retryAfter, open := range map[string]time.Duration{
		"45":  45*time.Second + proxy.RetryGrace,
		"600": proxy.RetryGrace, // longer than any SDK waits: only the grace
		"":    proxy.RetryGrace, // the SDK's backoff, at most 8 s
	} {
		t.Run("retry-after "+retryAfter, func(t *testing.T) {
			up := &upstream{reply: status(429, rateLimited, "Retry-After", retryAfter)}
			f := startInProcess(t, up, control...)
			synctest.Test(t, func(t *testing.T) {
				resp := f.post(t, chatPath, chatBody, "X-Stainless-Retry-Count", "0")
				read(t, resp)
				assert.Equal(t, 429, resp.StatusCode)
				assert.Equal(t, "1", resp.Header.Get(proxy.HeaderAttempts))
				assert.Contains(t, resp.Header.Get(proxy.HeaderReason), "control cohort: the SDK retries this")
				time.Sleep(open - time.Second)
				synctest.Wait()
				assert.Empty(t, f.traces(), "still open after %v", open-time.Second)
				time.Sleep(2 * time.Second)
				synctest.Wait()
				calls := f.traces()["run-1"]
				require.Len(t, calls, 1, "ended after %v", open)
				c := calls[0]
				assert.Equal(t, "Error", c.call.Status.Code.String())
				assert.Equal(t, "rate_limited", attr(c.call, "error.type"), "the last outcome's class")
				assert.Equal(t, open, c.call.EndTime.Sub(c.call.StartTime), "ended at the deadline")
				require.Len(t, c.attempts, 1)
				f.drain()
			})
			assert.Equal(t, map[string]int64{"rate_limited": 1}, f.counts(t, telemetry.MetricCalls, telemetry.AttrClass, telemetry.AttrOutcome, "failure"))
			assert.Contains(t, f.logs.String(), "a control call ended awaiting its client's retry: no retry came")
		})
	}
}

// Calls with identical bodies, open at once, stay separate: by run (and
// credential), and among equals first in, first resumed. Each client's
// retry is answered by X-Test-Run, which the upstream sees: a retry
// resumed into another run's call would end it with the other's outcome.
func TestConcurrentIdenticalCallsStaySeparate(t *testing.T) {
	reply := func(n int, w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("X-Stainless-Retry-Count") == "0":
			status(429, rateLimited, "Retry-After-Ms", "20")(n, w, r)
		case r.Header.Get("X-Test-Run") == "a":
			ok(n, w, r)
		default:
			status(400, invalid)(n, w, r)
		}
	}
	for name, callID := range map[string]bool{"call ids": true, "no call ids": false} {
		t.Run(name, func(t *testing.T) {
			up := &upstream{reply: reply}
			f := startInProcess(t, up, control...)
			synctest.Test(t, func(t *testing.T) {
				var wg sync.WaitGroup
				for _, run := range []string{"a", "b"} {
					opts := []option.RequestOption{option.WithHeader(proxy.HeaderRunID, "run-"+run), option.WithHeader("X-Test-Run", run)}
					if callID {
						opts = append(opts, option.WithHeader(proxy.HeaderCallID, "call-1")) // the same id: runs number their calls alike
					}
					wg.Go(func() { f.openAI(opts...).Chat.Completions.New(context.Background(), chatParams) })
				}
				wg.Wait()
				f.drain()
			})
			runs := f.traces()
			require.Len(t, runs["run-a"], 1)
			require.Len(t, runs["run-b"], 1)
			a, b := runs["run-a"][0], runs["run-b"][0]
			assert.Len(t, a.attempts, 2)
			assert.NotEqual(t, "Error", a.call.Status.Code.String(), "run a's retry succeeded")
			assert.Len(t, b.attempts, 2)
			assert.Equal(t, "invalid_request", attr(b.call, "error.type"), "run b's retry was refused")
			assert.Len(t, up.requests(), 4)
		})
	}

	// One run, two calls with the same body: the first retry to come
	// resumes the oldest open call; each call has its two attempts.
	up := &upstream{reply: reply}
	f := startInProcess(t, up, control...)
	synctest.Test(t, func(t *testing.T) {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				_, err := f.openAI(option.WithHeader("X-Test-Run", "a")).Chat.Completions.New(context.Background(), chatParams)
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		f.drain()
	})
	calls := f.traces()["run-1"]
	require.Len(t, calls, 2)
	for _, c := range calls {
		assert.Len(t, c.attempts, 2)
		assert.NotEqual(t, "Error", c.call.Status.Code.String())
	}
	assert.Equal(t, map[string]int64{"success": 2}, f.counts(t, telemetry.MetricCalls, telemetry.AttrOutcome))
}

// A request that says it is a first attempt (X-Stainless-Retry-Count: 0)
// begins a call even with the call id of an open one; a count the proxy
// cannot read leaves the call unmatched, so it ends at once.
func TestFirstAttemptsAndHostileCounts(t *testing.T) {
	up := &upstream{reply: status(429, rateLimited, "Retry-After-Ms", "20")}
	f := startInProcess(t, up, control...)
	synctest.Test(t, func(t *testing.T) {
		for range 2 {
			read(t, f.post(t, chatPath, chatBody, proxy.HeaderCallID, "call-1", "X-Stainless-Retry-Count", "0"))
		}
		for _, count := range []string{"x", "-1", "1e3", "99999999999999999999", ""} {
			read(t, f.post(t, chatPath, chatBody, proxy.HeaderRunID, "run-hostile", "X-Stainless-Retry-Count", count))
		}
		synctest.Wait()
		assert.Len(t, f.traces()["run-hostile"], 5, "no count to tell a retry by: each request is a call, ended at once")
		assert.Empty(t, f.traces()["run-1"], "both calls await a retry")
		f.drain()
	})
	assert.Len(t, f.traces()["run-1"], 2, "two calls")
}

// A stream cut after a resumed attempt began ends the call at once,
// failed: the SDK does not retry a response it has begun to read. (On
// loopback: the proxy cuts the client's connection as an http.Server lets
// it.)
func TestResumedCallWithCutStream(t *testing.T) {
	up := newUpstream(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			status(429, rateLimited, "Retry-After-Ms", "20")(n, w, r)
			return
		}
		send := sse(w)
		send(`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"o"}}]}`)
		panic(http.ErrAbortHandler)
	})
	f := start(t, "", openAI(up, control...)...)
	stream := f.openAI().Chat.Completions.NewStreaming(context.Background(), chatParams)
	for stream.Next() {
	}
	assert.Error(t, stream.Err())
	stream.Close()
	calls := f.traces()["run-1"]
	require.Len(t, calls, 1, "ended before the client's connection was cut")
	assert.Equal(t, "Error", calls[0].call.Status.Code.String())
	assert.Len(t, calls[0].attempts, 2)
	assert.Len(t, up.requests(), 2, "not retried")
}

// Draining ends the calls that await a retry, and the oldest are ended
// first when more are open than the proxy keeps.
func TestOpenCallsBoundedAndEndedAtShutdown(t *testing.T) {
	up := &upstream{reply: status(429, rateLimited, "Retry-After-Ms", "20")}
	f := startInProcess(t, up, control...)
	proxy.SetMaxOpen(f.proxy, 2)
	synctest.Test(t, func(t *testing.T) {
		for i := range 3 {
			read(t, f.post(t, chatPath, chatBody, proxy.HeaderRunID, fmt.Sprint("run-", i), "X-Stainless-Retry-Count", "0"))
		}
		synctest.Wait()
		runs := f.traces()
		assert.Len(t, runs, 1, "only the oldest was ended")
		assert.Len(t, runs["run-0"], 1)
		assert.Contains(t, f.logs.String(), `"level":"WARN","msg":"dynretry proxy: a control call ended awaiting its client's retry: more control calls awaited a retry than the proxy keeps open (2)"`)
		f.drain()
		runs = f.traces()
		assert.Len(t, runs, 3, "draining ended the others")
		for run, calls := range runs {
			require.Len(t, calls, 1, run)
			assert.Equal(t, "rate_limited", attr(calls[0].call, "error.type"), run)
		}
		assert.Contains(t, f.logs.String(), "the proxy is draining")

		// A call that would stay open while the proxy drains ends at once.
		read(t, f.post(t, chatPath, chatBody, proxy.HeaderRunID, "run-late", "X-Stainless-Retry-Count", "0"))
		synctest.Wait()
		assert.Len(t, f.traces()["run-late"], 1)
	})
}

// Shutdown ends the calls that await a retry before it flushes telemetry:
// the trace file has them, failed with their last outcome.
func TestShutdownEndsOpenCalls(t *testing.T) {
	up := newUpstream(t, status(429, rateLimited, "Retry-After", "1"))
	f := start(t, "", openAI(up, control...)...)
	read(t, f.post(t, chatPath, chatBody, "X-Stainless-Retry-Count", "0"))
	assert.Empty(t, f.traces(), "open: awaiting the SDK's retry")
	require.NoError(t, f.proxy.Shutdown(context.Background()))
	f.settle()
	s, err := cohort.Read(strings.NewReader(f.traceFile.String()))
	require.NoError(t, err)
	c := s.Cohorts[rollout.Control]
	assert.Equal(t, 1, c.Calls)
	assert.Equal(t, 1, c.FailedCalls)
	assert.Equal(t, 1, c.Attempts)
	assert.Equal(t, 1, c.Classes["rate_limited"].FailedCalls)
}

// Treatment calls never stay open: the engine retried within the request,
// and its give-up says X-Should-Retry: false.
func TestTreatmentCallsDoNotStayOpen(t *testing.T) {
	up := &upstream{reply: status(429, quota)}
	f := startInProcess(t, up, treatment...)
	synctest.Test(t, func(t *testing.T) {
		_, err := f.openAI(option.WithHeader(proxy.HeaderCallID, "call-1")).Chat.Completions.New(context.Background(), chatParams)
		var apiErr *openai.Error
		require.True(t, errors.As(err, &apiErr))
		synctest.Wait()
		require.Len(t, f.traces()["run-1"], 1)
		f.drain()
	})
	assert.Len(t, up.requests(), 1)
}
