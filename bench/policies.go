package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/cenkalti/backoff/v5"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/sim"
)

// The endpoints the clients name. No socket is opened: every client's
// transport ends in sim.Transport, which serves the request in-process
// whatever its host. The real hosts are used so that every library, dynretry
// included, sees the requests it would see in production.
const (
	openAIBase     = "https://api.openai.com/v1"
	anthropicBase  = "https://api.anthropic.com"
	openAIModel    = "gpt-4o-mini"
	anthropicModel = "claude-sonnet-4-5"
	// apiKey is the one credential of every scenario: all clients share
	// its limits.
	apiKey = "sk-bench-0000"
)

// A Client makes the calls of one client of a workload. Call returns nil
// when the call succeeded (a complete 200 reply).
type Client interface {
	Call(ctx context.Context, r Request) error
}

// ClientFunc adapts a function to Client.
type ClientFunc func(ctx context.Context, r Request) error

// Call calls f(ctx, r).
func (f ClientFunc) Call(ctx context.Context, r Request) error { return f(ctx, r) }

// An Env is what a policy's clients are built from, one per cell.
type Env struct {
	// Transport reaches the simulated provider through the harness's
	// tracker; every client's HTTP traffic must go through it.
	Transport http.RoundTripper
	// Config is the provider's configuration (the oracle reads it).
	Config sim.Config
	// Start is the provider's start.
	Start time.Time
	// Seed seeds the policy's randomness where the library lets it be set.
	Seed uint64
	// Clients is the number of clients to build.
	Clients int

	// turns orders the steps of calls that share state at one instant;
	// a policy whose clients share state beyond the provider (a store, an
	// oracle) takes a turn before each step on it.
	turns *turns
}

// A Policy is one way of retrying, built from a real library.
type Policy struct {
	// Name is the policy's name in design.md's vocabulary.
	Name string
	// Dialect is the API the policy's clients speak.
	Dialect Dialect
	// About says how the library is set up.
	About string
	// New builds Env.Clients clients sharing whatever the policy shares
	// between clients.
	New func(e Env) ([]Client, error)
}

// Policies returns every policy, dynretry first and the oracle last.
func Policies() []Policy {
	return []Policy{
		{Name: "dynretry", Dialect: OpenAI, New: newDynretry,
			About: "openai-go with option.WithMaxRetries(0) over retry.Transport; retry.Config{} defaults; the clients of a cell share one retry.MemoryStore (retry.WithStore)"},
		{Name: "openai-go-default", Dialect: OpenAI, New: newOpenAIDefault,
			About: "openai-go as is: 2 retries, 0.5 s·2ⁿ up to 8 s with jitter, retry-after(-ms) up to 60 s"},
		{Name: "anthropic-go-default", Dialect: Anthropic, New: newAnthropicDefault,
			About: "anthropic-sdk-go as is (2 retries), against the Anthropic dialect of the same limits"},
		{Name: "cenkalti-backoff", Dialect: OpenAI, New: newCenkalti,
			About: "backoff.Retry with v5 defaults (0.5 s ×1.5 ±50 % up to 60 s, 15 min); 429 → backoff.RetryAfter(Retry-After seconds), other 4xx → backoff.Permanent, as its example shows"},
		{Name: "retryablehttp", Dialect: OpenAI, New: newRetryableHTTP,
			About: "retryablehttp.NewClient() defaults (4 retries, 1 s·2ⁿ up to 30 s, Retry-After on 429/503), logger off"},
		{Name: "failsafe-go", Dialect: OpenAI, New: newFailsafe,
			About: "failsafehttp.NewRetryPolicyBuilder() (failsafehttp.DelayFunc for Retry-After) .WithBackoff(1s, 30s).WithMaxRetries(3), as its HTTP docs show, in failsafehttp.NewRoundTripper"},
		{Name: "oracle", Dialect: OpenAI, New: newOracleClients,
			About: "sends each call when the provider's buckets (copied exactly) hold it; retries only server errors; the physical limit"},
	}
}

// newDynretry: the real openai-go client, its own retries off, over
// dynretry's RoundTripper. Each client has its own Retrier; all share one
// MemoryStore, as clients of one process would.
func newDynretry(e Env) ([]Client, error) {
	store := turnStore{new(retry.MemoryStore), e.turns}
	out := make([]Client, e.Clients)
	for i := range out {
		r, err := retry.New(retry.Config{}, retry.WithStore(store), retry.WithRand(lockedRand(e.Seed, uint64(i))))
		if err != nil {
			return nil, err
		}
		hc := &http.Client{Transport: &retry.Transport{Base: e.Transport, Retrier: r}}
		out[i] = openAIClient(hc, option.WithMaxRetries(0))
	}
	return out, nil
}

// newOpenAIDefault: the openai-go client with its built-in retries.
func newOpenAIDefault(e Env) ([]Client, error) {
	out := make([]Client, e.Clients)
	for i := range out {
		out[i] = openAIClient(&http.Client{Transport: e.Transport})
	}
	return out, nil
}

func openAIClient(hc *http.Client, opts ...option.RequestOption) Client {
	c := openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(openAIBase), option.WithAPIKey(apiKey), option.WithHTTPClient(hc),
	}, opts...)...)
	return ClientFunc(func(ctx context.Context, r Request) error {
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:               openAIModel,
			Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage(r.Prompt)},
			MaxCompletionTokens: openai.Int(int64(r.MaxTokens)),
		})
		return err
	})
}

// newAnthropicDefault: the anthropic-sdk-go client with its built-in
// retries.
func newAnthropicDefault(e Env) ([]Client, error) {
	out := make([]Client, e.Clients)
	for i := range out {
		c := anthropic.NewClient(
			aoption.WithBaseURL(anthropicBase), aoption.WithAPIKey(apiKey),
			aoption.WithHTTPClient(&http.Client{Transport: e.Transport}),
		)
		out[i] = ClientFunc(func(ctx context.Context, r Request) error {
			_, err := c.Messages.New(ctx, anthropic.MessageNewParams{
				Model:     anthropicModel,
				MaxTokens: int64(r.MaxTokens),
				Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(r.Prompt))},
			})
			return err
		})
	}
	return out, nil
}

// chatBody is the OpenAI chat completions request the plain-HTTP policies
// send: what openai-go sends for the same call.
func chatBody(r Request) []byte {
	type message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	b, err := json.Marshal(struct {
		Model     string    `json:"model"`
		Messages  []message `json:"messages"`
		MaxTokens int       `json:"max_completion_tokens"`
	}{openAIModel, []message{{"user", r.Prompt}}, r.MaxTokens})
	if err != nil {
		panic(err)
	}
	return b
}

// chatRequest returns the call as an HTTP request; its body can be replayed
// (GetBody is set).
func chatRequest(ctx context.Context, r Request) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, openAIBase+"/chat/completions", bytes.NewReader(chatBody(r)))
	if err != nil {
		panic(err)
	}
	setChatHeaders(req.Header)
	return req
}

func setChatHeaders(h http.Header) {
	h.Set("Authorization", "Bearer "+apiKey)
	h.Set("Content-Type", "application/json")
}

// StatusError is a call that ended on a failed response.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return "HTTP " + strconv.Itoa(e.Status) }

// finish reads and closes resp and returns nil for a complete 200 reply.
func finish(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &StatusError{resp.StatusCode}
	}
	return nil
}

// newCenkalti: backoff.Retry with its defaults around one POST, the way its
// example handles HTTP: a 429 with a Retry-After in seconds becomes
// backoff.RetryAfter, other client errors are permanent. (Unlike the
// example, a 429 without a usable Retry-After is retried rather than taken
// for a success.)
func newCenkalti(e Env) ([]Client, error) {
	out := make([]Client, e.Clients)
	for i := range out {
		hc := &http.Client{Transport: e.Transport}
		out[i] = ClientFunc(func(ctx context.Context, r Request) error {
			_, err := backoff.Retry(ctx, func() (struct{}, error) {
				resp, err := hc.Do(chatRequest(ctx, r))
				if err != nil {
					return struct{}{}, err
				}
				err = finish(resp, nil)
				switch s := resp.StatusCode; {
				case err == nil:
					return struct{}{}, nil
				case s == http.StatusTooManyRequests:
					if secs, perr := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 64); perr == nil {
						return struct{}{}, backoff.RetryAfter(int(secs))
					}
				case s >= 400 && s < 500:
					return struct{}{}, backoff.Permanent(err)
				}
				return struct{}{}, err
			})
			return err
		})
	}
	return out, nil
}

// newRetryableHTTP: retryablehttp.NewClient() with its defaults; only its
// inner http.Client is replaced, to reach the simulator, and its logger
// silenced.
func newRetryableHTTP(e Env) ([]Client, error) {
	out := make([]Client, e.Clients)
	for i := range out {
		c := retryablehttp.NewClient()
		c.Logger = nil
		c.HTTPClient = &http.Client{Transport: e.Transport}
		out[i] = ClientFunc(func(ctx context.Context, r Request) error {
			req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, openAIBase+"/chat/completions", chatBody(r))
			if err != nil {
				return err
			}
			setChatHeaders(req.Header)
			return finish(c.Do(req))
		})
	}
	return out, nil
}

// newFailsafe: failsafe-go's HTTP retry policy (retryable statuses and
// errors, Retry-After through failsafehttp.DelayFunc) with the backoff and
// retries its HTTP documentation shows, in its RoundTripper.
func newFailsafe(e Env) ([]Client, error) {
	out := make([]Client, e.Clients)
	for i := range out {
		hc := &http.Client{Transport: failsafehttp.NewRoundTripper(e.Transport, failsafePolicy())}
		out[i] = ClientFunc(func(ctx context.Context, r Request) error {
			return finish(hc.Do(chatRequest(ctx, r)))
		})
	}
	return out, nil
}

// failsafePolicy is failsafe-go's retry policy as its HTTP documentation
// shows it.
func failsafePolicy() retrypolicy.RetryPolicy[*http.Response] {
	return failsafehttp.NewRetryPolicyBuilder().
		WithBackoff(time.Second, 30*time.Second).
		WithMaxRetries(3).
		Build()
}

// newOracleClients: every client books its calls with one oracle that
// knows the provider. A call is retried only after a server error (the
// oracle cannot know those in advance); a rate limit means the oracle's copy
// of the buckets is wrong, and is retried too so that it shows as waste.
func newOracleClients(e Env) ([]Client, error) {
	o := newOracle(e.Config, e.Start)
	hc := &http.Client{Transport: e.Transport}
	call := ClientFunc(func(ctx context.Context, r Request) error {
		deadline, _ := ctx.Deadline()
		for {
			e.turns.wait(ctx)
			at, ok := o.book(time.Now(), r, deadline)
			if !ok {
				return fmt.Errorf("oracle: the call cannot succeed before its deadline or quota")
			}
			if err := sleepUntil(ctx, at); err != nil {
				return err
			}
			err := finish(hc.Do(chatRequest(ctx, r)))
			var se *StatusError
			if err == nil || !errors.As(err, &se) || (se.Status != http.StatusInternalServerError && se.Status != http.StatusTooManyRequests) {
				return err
			}
		}
	})
	out := make([]Client, e.Clients)
	for i := range out {
		out[i] = call
	}
	return out, nil
}

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// turnStore is a retry.Store whose every step waits for the call's turn
// (see turns).
type turnStore struct {
	retry.Store
	turns *turns
}

func (s turnStore) Book(ctx context.Context, key retry.Key, a retry.Ask) (retry.Verdict, error) {
	s.turns.wait(ctx)
	return s.Store.Book(ctx, key, a)
}

func (s turnStore) Observe(ctx context.Context, key retry.Key, o retry.Observation) error {
	s.turns.wait(ctx)
	return s.Store.Observe(ctx, key, o)
}

// lockedRand returns a seeded source of numbers in [0, 1), safe for
// concurrent use.
func lockedRand(seed, stream uint64) func() float64 {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, stream^0xda3e39cb94b95bdb))
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return rng.Float64()
	}
}
