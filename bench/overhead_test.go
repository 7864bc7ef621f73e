package bench

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/cenkalti/backoff/v5"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/retry"
)

// okBody is the reply of okTransport: a chat completion.
const okBody = `{"id":"chatcmpl-1","object":"chat.completion","created":0,"model":"gpt-4o-mini",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":100,"completion_tokens":1,"total_tokens":101}}`

// okTransport answers every request at once, in-process, with 200 and
// okBody: the success path with no provider cost, so that a benchmark
// measures the retry layer and the HTTP plumbing only.
type okTransport struct{}

func (okTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(okBody))}},
		Body:          io.NopCloser(strings.NewReader(okBody)),
		ContentLength: int64(len(okBody)),
		Request:       req,
	}, nil
}

// BenchmarkSuccessPath measures one successful call (one POST of a
// 100-token chat request, reply read) through each retry layer, against
// okTransport, in real time, each layer set up as in TestScenarios: none
// (the bare http.Client, for reference), dynretry (retry.Transport with the
// default config), failsafe-go (failsafePolicy in
// failsafehttp.NewRoundTripper) and cenkalti-backoff (backoff.Retry with its
// defaults around the call).
func BenchmarkSuccessPath(b *testing.B) {
	req := Request{Prompt: strings.Repeat("abc ", 100), Input: 100, MaxTokens: 500}
	ctx := context.Background()
	do := func(b *testing.B, hc *http.Client) {
		b.ReportAllocs()
		for b.Loop() {
			require.NoError(b, finish(hc.Do(chatRequest(ctx, req))))
		}
	}
	b.Run("none", func(b *testing.B) {
		do(b, &http.Client{Transport: okTransport{}})
	})
	b.Run("dynretry", func(b *testing.B) {
		r, err := retry.New(retry.Config{})
		require.NoError(b, err)
		do(b, &http.Client{Transport: &retry.Transport{Base: okTransport{}, Retrier: r}})
	})
	b.Run("failsafe-go", func(b *testing.B) {
		do(b, &http.Client{Transport: failsafehttp.NewRoundTripper(okTransport{}, failsafePolicy())})
	})
	b.Run("cenkalti-backoff", func(b *testing.B) {
		hc := &http.Client{Transport: okTransport{}}
		b.ReportAllocs()
		for b.Loop() {
			_, err := backoff.Retry(ctx, func() (struct{}, error) {
				return struct{}{}, finish(hc.Do(chatRequest(ctx, req)))
			})
			require.NoError(b, err)
		}
	})
}
