package retry_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/autopack/dynretry/retry"
)

// Read a raw provider response, assess it and decide what follows the first
// failed attempt.
func Example_assessAndDecide() {
	raw := "HTTP/1.1 429 Too Many Requests\r\n" +
		"Date: Fri, 27 Nov 2026 08:00:00 GMT\r\n" +
		"Retry-After: 3\r\n" +
		"Content-Type: application/json\r\n\r\n" +
		`{"error":{"message":"Rate limit reached for gpt-4o on requests per min (RPM): Limit 60, Used 60, Requested 1.","code":"rate_limit_exceeded"}}`
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	o := retry.Outcome{Status: resp.StatusCode, Header: resp.Header, Body: body}

	now, _ := http.ParseTime(resp.Header.Get("Date"))
	a := retry.Assess(o, now)
	cfg := retry.DefaultConfig()
	d := cfg.Decide(retry.Input{Assessment: a, Attempt: 1, Now: now, Budget: -1, Rand: 0.5})

	fmt.Println("class:", d.Class, "provider:", d.Provider)
	fmt.Println("hint:", d.Hint.Wait, "from", d.HintSource)
	fmt.Println("action:", d.Action, "delay:", d.Delay, "in", d.DelayMin, "to", d.DelayMax)
	fmt.Println(d.Reason)
	// Output:
	// class: rate_limited provider: generic
	// hint: 3s from retry-after
	// action: retry delay: 3.15s in 3s to 3.3s
	// rate_limited (HTTP 429): the server asked for 3s (retry-after); retrying in 3.15s (range 3s–3.3s), attempt 2 of at most 8
}

// Call an API with retries: the first attempt is rate limited with a 10ms
// hint, the second succeeds.
func ExampleRetrier_Do() {
	r, err := retry.New(retry.Config{}, retry.WithRand(func() float64 { return 0 }))
	if err != nil {
		panic(err)
	}
	key := retry.Key{Provider: retry.OpenAI, Model: "gpt-4o", Credential: retry.CredentialID("sk-example")}
	attempts := 0
	err = r.Do(context.Background(), key, func(ctx context.Context) error {
		attempts++
		if attempts == 1 {
			return &retry.ResponseError{Status: 429, Header: http.Header{"Retry-After-Ms": {"10"}}}
		}
		return nil
	})
	fmt.Println("attempts:", attempts, "error:", err)

	// A failure no wait can fix ends the call at once.
	err = r.Do(context.Background(), key, func(ctx context.Context) error {
		return &retry.ResponseError{Status: 401, Body: []byte(`{"error":{"message":"Incorrect API key provided"}}`)}
	})
	var e *retry.Error
	if errors.As(err, &e) {
		fmt.Println("attempts:", e.Attempts, "class:", e.Decision.Class)
	}
	// Output:
	// attempts: 2 error: <nil>
	// attempts: 1 class: auth
}

// Put a Transport under an SDK's HTTP client; a stub stands in for the
// provider here.
func ExampleTransport() {
	calls := 0
	provider := roundTripper(func(req *http.Request) (*http.Response, error) {
		calls++
		if calls == 1 {
			return &http.Response{StatusCode: 500, Header: http.Header{"Retry-After-Ms": {"5"}},
				Body: io.NopCloser(strings.NewReader(`{"error":{"message":"internal error"}}`)), Request: req}, nil
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"id":"chatcmpl-1"}`)), Request: req}, nil
	})
	r, err := retry.New(retry.Config{}, retry.WithRand(func() float64 { return 0 }))
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: &retry.Transport{Base: provider, Retrier: r}}
	resp, err := client.Post("https://api.openai.com/v1/chat/completions", "application/json", strings.NewReader(`{"model":"gpt-4o"}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", calls, "attempts")
	// Output:
	// 200 {"id":"chatcmpl-1"} after 2 attempts
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// What a Transport returns. A response, whenever one was obtained, with a
// nil error — also when the engine gives up after it. An *Error when the
// call ends without a response to return: its Decision gives the class and
// the reason, and it wraps the last attempt's error and the cause.
func ExampleTransport_errors() {
	reset := errors.New("connection reset by peer")
	provider := roundTripper(func(req *http.Request) (*http.Response, error) {
		if req.Header.Get("Authorization") == "Bearer sk-flaky" {
			return nil, reset
		}
		return &http.Response{StatusCode: 429, Header: http.Header{}, Request: req, Body: io.NopCloser(strings.NewReader(
			`{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","code":"insufficient_quota"}}`))}, nil
	})
	r, err := retry.New(retry.Config{}, retry.WithRand(func() float64 { return 0 }))
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: &retry.Transport{Base: provider, Retrier: r}}
	post := func(ctx context.Context, key string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", "https://api.openai.com/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		return client.Do(req)
	}

	// 1. The provider says the credential's quota is exhausted: no retry,
	// the 429 itself is returned.
	resp, err := post(context.Background(), "sk-spent")
	fmt.Println("1:", resp.StatusCode, err)
	resp.Body.Close()

	// 2. The next call on that credential is not sent at all.
	_, err = post(context.Background(), "sk-spent")
	var e *retry.Error
	if errors.As(err, &e) {
		fmt.Println("2:", e.Decision.Class, "after", e.Attempts, "attempts")
	}

	// 3. No response, and no time left to try again: the error wraps the
	// last attempt's error and ErrDeadline (a context.DeadlineExceeded).
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = post(ctx, "sk-flaky")
	if errors.As(err, &e) {
		fmt.Println("3:", e.Decision.Class, "after", e.Attempts, "attempts;",
			errors.Is(err, reset), errors.Is(err, retry.ErrDeadline), errors.Is(err, context.DeadlineExceeded))
	}
	// Output:
	// 1: 429 <nil>
	// 2: quota_exhausted after 0 attempts
	// 3: connection after 1 attempts; true true true
}
