package runner_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/autopack/dynretry/examples/runner"
	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	baseURL = "http://sim.local"
	apiKey  = "sk-runner-test-0123456789abcdef"
)

var (
	auditor = runner.Step{Role: "auditor", Provider: "openai", Request: hooks.Request{System: "You audit.", Prompt: "Check the diff.", MaxTokens: 40}}
	builder = runner.Step{Role: "builder", Provider: "anthropic", Request: hooks.Request{System: "You build.", Prompt: "Write the parser.", MaxTokens: 40, Stream: true}}
	doctor  = runner.Step{Role: "doctor", Provider: "anthropic", Request: hooks.Request{System: "You diagnose.", Prompt: "Why?", MaxTokens: 40}}
	gemini  = runner.Step{Role: "auditor", Provider: "gemini", Request: hooks.Request{System: "You review.", Prompt: "Review the plan.", MaxTokens: 40}}
)

func newSim(t *testing.T, cfg sim.Config) *sim.Provider {
	t.Helper()
	p, err := sim.New(cfg)
	require.NoError(t, err)
	return p
}

// responses records what the LLM service answered.
type responses struct {
	mu   sync.Mutex
	got  []hooks.Response
	errs []error
}

func (r *responses) wrap(next hooks.LLMService) hooks.LLMService {
	return hooks.LLMFunc(func(ctx context.Context, call hooks.Call, req hooks.Request) (hooks.Response, error) {
		resp, err := next.Complete(ctx, call, req)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got, r.errs = append(r.got, resp), append(r.errs, err)
		return resp, err
	})
}

// TestRunAgainstSim: the three real SDK clients, a streamed builder call
// included, talk to the simulated provider.
func TestRunAgainstSim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSim(t, sim.Config{})
		host := new(runner.Host)
		rec := new(responses)
		host.WrapLLM(rec.wrap)
		r := runner.New(host, runner.Options{BaseURL: baseURL, APIKey: apiKey, Dir: t.TempDir(), Transport: sim.Transport{Handler: p}})
		res := r.Run(context.Background(), "run-ok", []runner.Phase{{ID: "phase-1", Steps: []runner.Step{builder, auditor, doctor, gemini}}})
		assert.Equal(t, runner.Result{RunID: "run-ok", Calls: 4}, res)
		require.Len(t, rec.got, 4)
		for i, resp := range rec.got {
			assert.NoError(t, rec.errs[i])
			assert.NotEmpty(t, resp.Text, "call %d", i)
			assert.Positive(t, resp.InputTokens, "call %d", i)
			assert.Positive(t, resp.OutputTokens, "call %d", i)
		}
		st := p.Stats()
		assert.Equal(t, 4, st.Succeeded)
		assert.Equal(t, 4, st.ByCredential[sim.CredentialID(apiKey)].Received, "the key is sent by every client")
	})
}

// TestHostAppliesWrappersFirstInnermost: wrappers apply in registration
// order, the first registered innermost, for each of the runner's parts.
func TestHostAppliesWrappersFirstInnermost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSim(t, sim.Config{})
		var mu sync.Mutex
		var order []string
		mark := func(s string) {
			mu.Lock()
			order = append(order, s)
			mu.Unlock()
		}
		host := new(runner.Host)
		for _, name := range []string{"first", "second"} {
			host.WrapLLM(func(next hooks.LLMService) hooks.LLMService {
				return hooks.LLMFunc(func(ctx context.Context, c hooks.Call, r hooks.Request) (hooks.Response, error) {
					mark("llm " + name)
					return next.Complete(ctx, c, r)
				})
			})
			host.WrapTransport(func(next http.RoundTripper) http.RoundTripper {
				return roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mark("transport " + name)
					return next.RoundTrip(req)
				})
			})
			host.WrapErrorReporter(func(next hooks.ErrorReporter) hooks.ErrorReporter {
				return hooks.ReporterFunc(func(ctx context.Context, r hooks.ErrorReport) (string, error) {
					mark("reporter " + name)
					return next.Report(ctx, r)
				})
			})
		}
		r := runner.New(host, runner.Options{BaseURL: baseURL, APIKey: apiKey, Dir: t.TempDir(), Transport: sim.Transport{Handler: p}})
		unknown := runner.Step{Role: "doctor", Provider: "mistral"}
		res := r.Run(context.Background(), "run-order", []runner.Phase{{ID: "p", Steps: []runner.Step{auditor, unknown}}})
		assert.Equal(t, 2, res.Calls)
		assert.Equal(t, 1, res.Failed)
		assert.Equal(t, []string{
			"llm second", "llm first", "transport second", "transport first",
			"llm second", "llm first", "reporter second", "reporter first",
		}, order)
	})
}

// TestRunReportsFailuresAndGoesOn: a failed call is reported under
// Dir/.autonomous_runs/{run_id}/errors and the run continues.
func TestRunReportsFailuresAndGoesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSim(t, sim.Config{})
		dir := t.TempDir()
		r := runner.New(new(runner.Host), runner.Options{BaseURL: baseURL, APIKey: apiKey, Dir: dir, Transport: sim.Transport{Handler: p}})
		unknown := runner.Step{Role: "doctor", Provider: "mistral"}
		res := r.Run(context.Background(), "run-fail", []runner.Phase{
			{ID: "phase-1", Steps: []runner.Step{unknown, auditor}},
			{ID: "phase-2", Steps: []runner.Step{builder}},
		})
		assert.Equal(t, 3, res.Calls)
		assert.Equal(t, 1, res.Failed)
		require.Len(t, res.Reports, 1)
		rel, err := filepath.Rel(dir, res.Reports[0])
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(filepath.ToSlash(rel), ".autonomous_runs/run-fail/errors/"), rel)
		assert.True(t, strings.HasSuffix(rel, "_llm_service_errors.joinError.json"), rel)
		b, err := os.ReadFile(res.Reports[0])
		require.NoError(t, err)
		assert.Contains(t, string(b), `unknown provider \"mistral\"`)
		assert.Contains(t, string(b), `"phase_id": "phase-1"`)
		assert.Contains(t, string(b), `"operation": "doctor"`)
		assert.Equal(t, 2, p.Stats().Succeeded)
	})
}

// TestRunStopsWhenCanceled: a canceled context ends the run after the call
// in progress.
func TestRunStopsWhenCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSim(t, sim.Config{})
		ctx, cancel := context.WithCancel(context.Background())
		host := new(runner.Host)
		host.WrapLLM(func(next hooks.LLMService) hooks.LLMService {
			return hooks.LLMFunc(func(ctx context.Context, c hooks.Call, r hooks.Request) (hooks.Response, error) {
				defer cancel()
				return next.Complete(ctx, c, r)
			})
		})
		r := runner.New(host, runner.Options{BaseURL: baseURL, APIKey: apiKey, Dir: t.TempDir(), Transport: sim.Transport{Handler: p}})
		res := r.Run(ctx, "run-cancel", []runner.Phase{{ID: "p", Steps: []runner.Step{auditor, auditor, auditor}}})
		assert.Equal(t, 1, res.Calls)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSDKRetriesFollowCohort: the runner's service turns the SDK's own
// retries off exactly for treatment calls (hooks.SDKRetriesOff), for both
// clients, streamed or not. Control calls keep the SDKs' 2 retries; genai
// makes none by default, in either cohort.
func TestSDKRetriesFollowCohort(t *testing.T) {
	for _, step := range []runner.Step{auditor, builder, doctor, gemini} {
		for _, cohort := range []rollout.Cohort{rollout.Treatment, rollout.Control} {
			want := 3
			if cohort == rollout.Treatment || step.Provider == "gemini" {
				want = 1
			}
			t.Run(step.Role+"/"+string(cohort), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var sent atomic.Int32
					var retryCounts []string
					base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						sent.Add(1)
						retryCounts = append(retryCounts, req.Header.Get("X-Stainless-Retry-Count"))
						io.Copy(io.Discard, req.Body)
						req.Body.Close()
						body := `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`
						switch step.Provider {
						case "anthropic":
							body = `{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}`
						case "gemini":
							body = `{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}`
						}
						return &http.Response{
							StatusCode: 429, Status: "429 Too Many Requests", Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
							Header: http.Header{"Content-Type": {"application/json"}, "Retry-After-Ms": {"100"}, "Retry-After": {"1"}},
							Body:   io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
						}, nil
					})
					host := new(runner.Host)
					host.WrapLLM(func(next hooks.LLMService) hooks.LLMService {
						return hooks.LLMFunc(func(ctx context.Context, c hooks.Call, r hooks.Request) (hooks.Response, error) {
							return next.Complete(hooks.WithCohort(ctx, cohort), c, r)
						})
					})
					r := runner.New(host, runner.Options{BaseURL: baseURL, APIKey: apiKey, Dir: t.TempDir(), Transport: base})
					res := r.Run(context.Background(), "run-sdk", []runner.Phase{{ID: "p", Steps: []runner.Step{step}}})
					assert.Equal(t, 1, res.Failed)
					assert.Equal(t, want, int(sent.Load()), "requests sent by the SDK")
					wantCounts := []string{"0", "1", "2"}[:want]
					if step.Provider == "gemini" {
						wantCounts = []string{""} // genai sends no retry count
					}
					assert.Equal(t, wantCounts, retryCounts, "X-Stainless-Retry-Count of each attempt")
				})
			})
		}
	}
}
