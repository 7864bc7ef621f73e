package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const responses = "../../retry/testdata/responses"

// TestExplainTestdata runs the explain command on every testdata response
// and checks its JSON against expected.json.
func TestExplainTestdata(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(responses, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases map[string]map[string]json.RawMessage `json:"cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) < 30 {
		t.Fatalf("%d cases, want at least 30", len(file.Cases))
	}
	for name, want := range file.Cases {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := newRoot()
			cmd.SetOut(&out)
			cmd.SetArgs([]string{"explain", filepath.Join(responses, name+".http")})
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("output %q: %v", out.String(), err)
			}
			for _, k := range []string{"class", "retry", "hint_ms", "hint_source", "delay_min_ms", "delay_max_ms", "delay_ms", "reason"} {
				if _, ok := got[k]; !ok {
					t.Errorf("output lacks %q: %s", k, out.String())
				}
			}
			var classes []string
			if json.Unmarshal(want["class"], &classes) != nil {
				var one string
				json.Unmarshal(want["class"], &one)
				classes = []string{one}
			}
			if !contains(classes, got["class"]) {
				t.Errorf("class = %v, want one of %v", got["class"], classes)
			}
			var wantRetry bool
			json.Unmarshal(want["retry"], &wantRetry)
			if got["retry"] != wantRetry {
				t.Errorf("retry = %v, want %v", got["retry"], wantRetry)
			}
			if w, ok := want["hint_source"]; ok {
				var s string
				json.Unmarshal(w, &s)
				if got["hint_source"] != s {
					t.Errorf("hint_source = %v, want %v", got["hint_source"], s)
				}
			}
			if w, ok := want["hint_ms"]; ok {
				if string(w) == "null" {
					if got["hint_ms"] != nil {
						t.Errorf("hint_ms = %v, want null", got["hint_ms"])
					}
				} else {
					var ms float64
					json.Unmarshal(w, &ms)
					if got["hint_ms"] != ms {
						t.Errorf("hint_ms = %v, want %v", got["hint_ms"], ms)
					}
				}
			}
			if w, ok := want["hint_min_ms"]; ok {
				var lo, hi float64
				json.Unmarshal(w, &lo)
				json.Unmarshal(want["hint_max_ms"], &hi)
				ms, _ := got["hint_ms"].(float64)
				if got["hint_ms"] == nil || ms < lo || ms > hi {
					t.Errorf("hint_ms = %v, want within [%v, %v]", got["hint_ms"], lo, hi)
				}
			}
			lo, hi, d := got["delay_min_ms"].(float64), got["delay_max_ms"].(float64), got["delay_ms"].(float64)
			if wantRetry && (d < lo || d > hi) {
				t.Errorf("delay_ms %v outside [%v, %v]", d, lo, hi)
			}
			// A hint is a floor, but one past every known window (max_hint, 2m, for
			// a lone response) is first checked by a probe sent soon.
			if h, ok := got["hint_ms"].(float64); ok && wantRetry && h <= 120000 && lo < h {
				t.Errorf("delay_min_ms %v below hint_ms %v", lo, h)
			}
		})
	}
}

func contains(xs []string, v any) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

func TestExplainFlags(t *testing.T) {
	resp := "HTTP/2 429\nretry-after: 10\ncontent-type: application/json\n\n{\"error\":{\"message\":\"slow\",\"code\":\"rate_limit_exceeded\"}}"
	clock := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		flags   explainFlags
		input   string
		wantErr string
		check   func(t *testing.T, e explanation)
	}{
		{name: "http2 status line", flags: explainFlags{attempt: 1}, input: resp, check: func(t *testing.T, e explanation) {
			if e.HintMS == nil || *e.HintMS != 10000 || !e.Retry {
				t.Errorf("got hint %v retry %v, want 10000 ms and a retry", e.HintMS, e.Retry)
			}
			if e.DelayMS != (e.DelayMinMS+e.DelayMaxMS)/2 && e.DelayMS != (e.DelayMinMS+e.DelayMaxMS+1)/2 {
				t.Errorf("delay_ms %d is not the middle of [%d, %d]", e.DelayMS, e.DelayMinMS, e.DelayMaxMS)
			}
		}},
		{name: "last attempt gives up", flags: explainFlags{attempt: 8}, input: resp, check: func(t *testing.T, e explanation) {
			if e.Retry || !strings.Contains(e.Reason, "8 attempts") {
				t.Errorf("retry %v, reason %q; want a give-up after 8 attempts", e.Retry, e.Reason)
			}
		}},
		{name: "seeded draw stays in range", flags: explainFlags{attempt: 1, seed: 7}, input: resp, check: func(t *testing.T, e explanation) {
			if e.DelayMS < e.DelayMinMS || e.DelayMS > e.DelayMaxMS {
				t.Errorf("delay_ms %d outside [%d, %d]", e.DelayMS, e.DelayMinMS, e.DelayMaxMS)
			}
		}},
		{name: "http-date retry-after against --now", flags: explainFlags{attempt: 1, now: "2026-11-27T08:00:00Z"},
			input: "HTTP/1.1 429 Too Many Requests\nretry-after: Fri, 27 Nov 2026 08:00:30 GMT\n\n", check: func(t *testing.T, e explanation) {
				if e.HintMS == nil || *e.HintMS != 30000 {
					t.Errorf("hint_ms = %v, want 30000", e.HintMS)
				}
			}},
		{name: "success", flags: explainFlags{attempt: 1}, input: "HTTP/1.1 200 OK\n\n{}", check: func(t *testing.T, e explanation) {
			if e.Class != nil || e.Retry || e.Reason != "succeeded" {
				t.Errorf("got class %v retry %v reason %q, want a success", e.Class, e.Retry, e.Reason)
			}
		}},
		{name: "bad attempt", flags: explainFlags{attempt: 0}, input: resp, wantErr: "--attempt"},
		{name: "bad provider", flags: explainFlags{attempt: 1, provider: "acme"}, input: resp, wantErr: `--provider "acme"`},
		{name: "bad now", flags: explainFlags{attempt: 1, now: "yesterday"}, input: resp, wantErr: `--now "yesterday"`},
		{name: "not a response", flags: explainFlags{attempt: 1}, input: "hello", wantErr: "reading the response"},
		{name: "empty", flags: explainFlags{attempt: 1}, input: "", wantErr: "reading the response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := explain(strings.NewReader(tt.input), tt.flags, clock)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, e)
		})
	}
}

func TestExplainStdinAndMissingFile(t *testing.T) {
	var out bytes.Buffer
	cmd := newRoot()
	cmd.SetOut(&out)
	cmd.SetIn(strings.NewReader("HTTP/1.1 529 Overloaded\n\n{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}"))
	cmd.SetArgs([]string{"explain", "--provider", "anthropic"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"class":"overloaded"`) {
		t.Errorf("output %s, want class overloaded", out.String())
	}
	cmd = newRoot()
	cmd.SetArgs([]string{"explain", "no-such-file.http"})
	if err := cmd.Execute(); err == nil {
		t.Error("missing file: no error")
	}
}
