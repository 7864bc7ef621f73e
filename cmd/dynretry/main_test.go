package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCLI runs the command line as main does and returns its exit status and
// output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	want := regexp.MustCompile(`^dynretry \S+( \([^)]*\))? ` + regexp.QuoteMeta(runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) + "\n$")
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, stdout, stderr := runCLI(args...)
		assert.Equal(t, 0, code, args)
		assert.Regexp(t, want, stdout, args)
		assert.Empty(t, stderr, args)
	}
}

// Usage errors exit 2 with a one-line hint; errors of a command that ran
// exit 1 without it.
func TestExitStatus(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		code int
		msg  string // the first line on stderr
	}{
		"unknown command":      {[]string{"frobnicate"}, 2, `dynretry: unknown command "frobnicate" for "dynretry"`},
		"unknown subcommand":   {[]string{"sim", "start"}, 2, `dynretry: unknown command "start" for "dynretry sim"`},
		"unknown flag":         {[]string{"explain", "--verbose"}, 2, "dynretry: unknown flag: --verbose"},
		"unknown root flag":    {[]string{"--verbose"}, 2, "dynretry: unknown flag: --verbose"},
		"too many args":        {[]string{"explain", "a.http", "b.http"}, 2, "dynretry: accepts at most 1 arg(s), received 2"},
		"missing arg":          {[]string{"report"}, 2, "dynretry: accepts 1 arg(s), received 0"},
		"args to version":      {[]string{"version", "now"}, 2, `dynretry: unknown command "now" for "dynretry version"`},
		"flag value type":      {[]string{"explain", "--attempt", "two"}, 2, `dynretry: invalid argument "two" for "--attempt" flag: strconv.ParseInt: parsing "two": invalid syntax`},
		"flag value range":     {[]string{"explain", "--attempt", "0"}, 2, "dynretry: --attempt must be at least 1, got 0"},
		"flag value choice":    {[]string{"sim", "serve", "--hint-mode", "sometimes"}, 2, `dynretry: --hint-mode "sometimes": want one of [truthful omit lie-long lie-past lie-zero]`},
		"flag value sim":       {[]string{"sim", "serve", "--rpm", "-5"}, 2, "dynretry: sim: invalid config: negative limit"},
		"demo flag value":      {[]string{"demo", "--runs", "0"}, 2, "dynretry: --runs must be at least 1, got 0"},
		"runtime: no file":     {[]string{"explain", "no-such-file.http"}, 1, "dynretry: open no-such-file.http: no such file or directory"},
		"runtime: not a reply": {[]string{"explain", "main_test.go"}, 1, "dynretry: reading the response (want a status line, headers, a blank line, a body): malformed HTTP status code \"main\""},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tc.args...)
			assert.Equal(t, tc.code, code)
			assert.Empty(t, stdout)
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			require.NotEmpty(t, lines)
			assert.Equal(t, tc.msg, lines[0])
			if tc.code == 2 {
				assert.Equal(t, []string{tc.msg, usageHint}, lines)
			} else {
				assert.Len(t, lines, 1, "no usage hint for a runtime error")
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"help"}, {"sim"}} {
		code, stdout, stderr := runCLI(args...)
		assert.Equal(t, 0, code, args)
		assert.Contains(t, stdout, "Usage:", args)
		assert.Empty(t, stderr, args)
	}
}

// serveSim runs "dynretry sim serve" with args on a free loopback port and
// returns its address; the server stops with the test.
func serveSim(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	root := newRoot()
	root.SetArgs(append([]string{"sim", "serve", "--addr", "127.0.0.1:0"}, args...))
	root.SetErr(pw)
	var wg sync.WaitGroup
	wg.Go(func() {
		assert.NoError(t, root.ExecuteContext(ctx))
		pw.Close()
	})
	t.Cleanup(func() {
		cancel()
		go io.Copy(io.Discard, pr)
		wg.Wait()
	})
	line, err := readLine(pr)
	require.NoError(t, err)
	m := regexp.MustCompile(`^simulated provider on http://(\S+)$`).FindStringSubmatch(line)
	require.NotNil(t, m, "first line %q", line)
	for _, dialect := range []string{"OpenAI base URL     http://" + m[1] + "/v1", "Anthropic base URL  http://" + m[1], "Gemini base URL     http://" + m[1]} {
		l, err := readLine(pr)
		require.NoError(t, err)
		assert.Equal(t, "  "+dialect, l)
	}
	return m[1]
}

func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := r.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}

// The README's claims about sim serve: its defaults admit 50 concurrent
// calls of the real openai-go client without a 429; with --rpm 6 --burst
// 0.5 the fourth request in a row is refused with a 429 and a hint.
func TestSimServe(t *testing.T) {
	addr := serveSim(t)
	client := openai.NewClient(option.WithBaseURL("http://"+addr+"/v1"), option.WithAPIKey("sk-sim-any"), option.WithMaxRetries(0))
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
				Model:    "gpt-4o-mini",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Write the parser.")},
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}

	addr = serveSim(t, "--rpm", "6", "--burst", "0.5")
	var codes []int
	for range 5 {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer sk-sim-any")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 429 {
			assert.NotEmpty(t, resp.Header.Get("Retry-After"), "a 429 says when")
		}
	}
	assert.Equal(t, []int{200, 200, 200, 429, 429}, codes)
}
