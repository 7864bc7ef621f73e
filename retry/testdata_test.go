package retry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// expectation is one case of testdata/responses/expected.json.
type expectation struct {
	Class      json.RawMessage `json:"class"` // a name or a list of names
	Retry      bool            `json:"retry"`
	HintMS     *int64          `json:"hint_ms"`
	HasHintMS  bool            `json:"-"`
	HintMinMS  *int64          `json:"hint_min_ms"`
	HintMaxMS  *int64          `json:"hint_max_ms"`
	HintSource *string         `json:"hint_source"`
}

func (e expectation) classes() []Class {
	var one string
	if json.Unmarshal(e.Class, &one) == nil {
		return []Class{Class(one)}
	}
	var many []Class
	json.Unmarshal(e.Class, &many)
	return many
}

func loadExpectations(t testing.TB) map[string]expectation {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "responses", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases map[string]json.RawMessage `json:"cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]expectation)
	for name, c := range file.Cases {
		var e expectation
		if err := json.Unmarshal(c, &e); err != nil {
			t.Fatal(err)
		}
		var keys map[string]json.RawMessage
		json.Unmarshal(c, &keys)
		_, e.HasHintMS = keys["hint_ms"]
		out[name] = e
	}
	return out
}

// readResponse parses a raw HTTP response file into an Outcome.
func readResponse(t testing.TB, path string) Outcome {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return Outcome{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// TestResponses checks every testdata response against expected.json: a
// first failed attempt under default settings, at the response's Date.
func TestResponses(t *testing.T) {
	cfg := DefaultConfig()
	for name, want := range loadExpectations(t) {
		t.Run(name, func(t *testing.T) {
			o := readResponse(t, filepath.Join("testdata", "responses", name+".http"))
			now, _ := http.ParseTime(o.Header.Get("Date")) // at the response's Date
			d := cfg.Decide(Input{Assessment: Assess(o, now), Attempt: 1, Now: now, Budget: -1, Rand: 0.5})
			ok := false
			for _, c := range want.classes() {
				ok = ok || d.Class == c
			}
			if !ok {
				t.Errorf("class = %q, want one of %v", d.Class, want.classes())
			}
			if got := d.Action == Retry; got != want.Retry {
				t.Errorf("retry = %v, want %v (reason: %s)", got, want.Retry, d.Reason)
			}
			if want.HintSource != nil && string(d.HintSource) != *want.HintSource {
				t.Errorf("hint_source = %q, want %q", d.HintSource, *want.HintSource)
			}
			ms := d.Hint.Wait.Milliseconds()
			switch {
			case want.HasHintMS && want.HintMS == nil && d.Hint.Valid():
				t.Errorf("hint = %v (%s), want none", d.Hint.Wait, d.Hint.Source)
			case want.HintMS != nil && (!d.Hint.Valid() || ms != *want.HintMS):
				t.Errorf("hint_ms = %d (valid %v), want %d", ms, d.Hint.Valid(), *want.HintMS)
			}
			if want.HintMinMS != nil && (!d.Hint.Valid() || ms < *want.HintMinMS || ms > *want.HintMaxMS) {
				t.Errorf("hint_ms = %d (valid %v), want within [%d, %d]", ms, d.Hint.Valid(), *want.HintMinMS, *want.HintMaxMS)
			}
			underCheck := d.Hold.By == HeldCheck // a suspicious hint: one probe goes before it
			if d.Action == Retry && (d.Delay < d.DelayMin || d.Delay > d.DelayMax || (d.Hint.Valid() && !underCheck && d.Delay < d.Hint.Wait)) {
				t.Errorf("delay %v outside [%v, %v] or below hint %v", d.Delay, d.DelayMin, d.DelayMax, d.Hint.Wait)
			}
			if strings.TrimSpace(d.Reason) == "" {
				t.Error("empty reason")
			}
		})
	}
}
