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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, err)
	var file struct {
		Cases map[string]json.RawMessage `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(raw, &file), "expected.json")
	out := make(map[string]expectation)
	for name, c := range file.Cases {
		var e expectation
		require.NoError(t, json.Unmarshal(c, &e), "expected.json case %s", name)
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
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	require.NoError(t, err, path)
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
			assert.Contains(t, want.classes(), d.Class, "class")
			assert.Equal(t, want.Retry, d.Action == Retry, "retry (reason: %s)", d.Reason)
			if want.HintSource != nil {
				assert.Equal(t, *want.HintSource, string(d.HintSource), "hint_source")
			}
			ms := d.Hint.Wait.Milliseconds()
			switch {
			case want.HintMS != nil:
				assert.True(t, d.Hint.Valid(), "hint valid, want hint_ms %d", *want.HintMS)
				assert.Equal(t, *want.HintMS, ms, "hint_ms")
			case want.HasHintMS:
				assert.False(t, d.Hint.Valid(), "hint = %v (%s), want none", d.Hint.Wait, d.Hint.Source)
			}
			if want.HintMinMS != nil {
				assert.True(t, d.Hint.Valid(), "hint valid, want hint_ms within [%d, %d]", *want.HintMinMS, *want.HintMaxMS)
				assert.GreaterOrEqual(t, ms, *want.HintMinMS, "hint_ms")
				assert.LessOrEqual(t, ms, *want.HintMaxMS, "hint_ms")
			}
			underCheck := d.Hold.By == HeldCheck // a suspicious hint: one probe goes before it
			if d.Action == Retry {
				assert.GreaterOrEqual(t, d.Delay, d.DelayMin, "delay below the range [%v, %v]", d.DelayMin, d.DelayMax)
				assert.LessOrEqual(t, d.Delay, d.DelayMax, "delay above the range [%v, %v]", d.DelayMin, d.DelayMax)
				if d.Hint.Valid() && !underCheck {
					assert.GreaterOrEqual(t, d.Delay, d.Hint.Wait, "delay below the hint")
				}
			}
			assert.NotEmpty(t, strings.TrimSpace(d.Reason), "empty reason")
		})
	}
}
