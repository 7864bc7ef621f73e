package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const responses = "../../retry/testdata/responses"

// TestExplainTestdata runs the explain command on every testdata response
// and checks its JSON against expected.json.
func TestExplainTestdata(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(responses, "expected.json"))
	require.NoError(t, err)
	var file struct {
		Cases map[string]map[string]json.RawMessage `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(raw, &file))
	require.GreaterOrEqual(t, len(file.Cases), 30)
	for name, want := range file.Cases {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runCLI("explain", filepath.Join(responses, name+".http"))
			require.Equal(t, 0, code, stderr)
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(stdout), &got), "output %q", stdout)
			for _, k := range []string{"class", "retry", "hint_ms", "hint_source", "delay_min_ms", "delay_max_ms", "delay_ms", "reason"} {
				assert.Contains(t, got, k, "output %s", stdout)
			}
			var classes []string
			if json.Unmarshal(want["class"], &classes) != nil {
				var one string
				require.NoError(t, json.Unmarshal(want["class"], &one))
				classes = []string{one}
			}
			assert.Contains(t, classes, got["class"])
			var wantRetry bool
			require.NoError(t, json.Unmarshal(want["retry"], &wantRetry))
			assert.Equal(t, wantRetry, got["retry"], "retry")
			if w, ok := want["hint_source"]; ok {
				var s string
				require.NoError(t, json.Unmarshal(w, &s))
				assert.Equal(t, s, got["hint_source"], "hint_source")
			}
			if w, ok := want["hint_ms"]; ok {
				if string(w) == "null" {
					assert.Nil(t, got["hint_ms"], "hint_ms")
				} else {
					var ms float64
					require.NoError(t, json.Unmarshal(w, &ms))
					assert.Equal(t, ms, got["hint_ms"], "hint_ms")
				}
			}
			if w, ok := want["hint_min_ms"]; ok {
				var lo, hi float64
				require.NoError(t, json.Unmarshal(w, &lo))
				require.NoError(t, json.Unmarshal(want["hint_max_ms"], &hi))
				require.NotNil(t, got["hint_ms"])
				assert.GreaterOrEqual(t, got["hint_ms"], lo)
				assert.LessOrEqual(t, got["hint_ms"], hi)
			}
			lo, hi, d := got["delay_min_ms"].(float64), got["delay_max_ms"].(float64), got["delay_ms"].(float64)
			if wantRetry {
				assert.GreaterOrEqual(t, d, lo, "delay_ms within its range")
				assert.LessOrEqual(t, d, hi, "delay_ms within its range")
				// A hint is a floor, but one past every known window (max_hint,
				// 2m, for a lone response) is first checked by a probe sent soon.
				if h, ok := got["hint_ms"].(float64); ok && h <= 120000 {
					assert.GreaterOrEqual(t, lo, h, "delay_min_ms not below hint_ms")
				}
			}
		})
	}
}

func TestExplainFlags(t *testing.T) {
	resp := "HTTP/2 429\nretry-after: 10\ncontent-type: application/json\n\n{\"error\":{\"message\":\"slow\",\"code\":\"rate_limit_exceeded\"}}"
	clock := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		flags   explainFlags
		input   string
		wantErr string
		usage   bool // the error is a usage error (exit 2)
		check   func(t *testing.T, e explanation)
	}{
		{name: "http2 status line", flags: explainFlags{attempt: 1}, input: resp, check: func(t *testing.T, e explanation) {
			require.NotNil(t, e.HintMS)
			assert.EqualValues(t, 10000, *e.HintMS)
			assert.True(t, e.Retry)
			assert.Contains(t, []int64{(e.DelayMinMS + e.DelayMaxMS) / 2, (e.DelayMinMS + e.DelayMaxMS + 1) / 2}, e.DelayMS, "the middle of the range")
		}},
		{name: "last attempt gives up", flags: explainFlags{attempt: 8}, input: resp, check: func(t *testing.T, e explanation) {
			assert.False(t, e.Retry)
			assert.Contains(t, e.Reason, "8 attempts")
		}},
		{name: "seeded draw stays in range", flags: explainFlags{attempt: 1, seed: 7}, input: resp, check: func(t *testing.T, e explanation) {
			assert.GreaterOrEqual(t, e.DelayMS, e.DelayMinMS)
			assert.LessOrEqual(t, e.DelayMS, e.DelayMaxMS)
		}},
		{name: "http-date retry-after against --now", flags: explainFlags{attempt: 1, now: "2026-11-27T08:00:00Z"},
			input: "HTTP/1.1 429 Too Many Requests\nretry-after: Fri, 27 Nov 2026 08:00:30 GMT\n\n", check: func(t *testing.T, e explanation) {
				require.NotNil(t, e.HintMS)
				assert.EqualValues(t, 30000, *e.HintMS)
			}},
		{name: "success", flags: explainFlags{attempt: 1}, input: "HTTP/1.1 200 OK\n\n{}", check: func(t *testing.T, e explanation) {
			assert.Nil(t, e.Class)
			assert.False(t, e.Retry)
			assert.Equal(t, "succeeded", e.Reason)
		}},
		{name: "bad attempt", flags: explainFlags{attempt: 0}, input: resp, wantErr: "--attempt", usage: true},
		{name: "bad provider", flags: explainFlags{attempt: 1, provider: "acme"}, input: resp, wantErr: `--provider "acme"`, usage: true},
		{name: "bad now", flags: explainFlags{attempt: 1, now: "yesterday"}, input: resp, wantErr: `--now "yesterday"`, usage: true},
		{name: "not a response", flags: explainFlags{attempt: 1}, input: "hello", wantErr: "reading the response"},
		{name: "empty", flags: explainFlags{attempt: 1}, input: "", wantErr: "reading the response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := explain(strings.NewReader(tt.input), tt.flags, clock)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.Equal(t, tt.usage, errors.As(err, new(*usageError)), "a usage error")
				return
			}
			require.NoError(t, err)
			tt.check(t, e)
		})
	}
}

func TestExplainStdinAndMissingFile(t *testing.T) {
	var out bytes.Buffer
	code := run([]string{"explain", "--provider", "anthropic"},
		strings.NewReader("HTTP/1.1 529 Overloaded\n\n{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}"), &out, io.Discard)
	require.Equal(t, 0, code)
	assert.Contains(t, out.String(), `"class":"overloaded"`)

	code, _, stderr := runCLI("explain", "no-such-file.http")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no-such-file.http")
}
