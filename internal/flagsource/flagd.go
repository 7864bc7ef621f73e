package flagsource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/autopack/dynretry/internal/atomicfile"
	"github.com/autopack/dynretry/rollout"
)

// Flagd is the flag rollout.FlagKey in a flagd flag file (JSON), rolled out
// by a "fractional" rule:
//
//	"targeting": {"fractional": [["on", 10], ["off", 90]]}
//
// The percentage is the share of the weights that go to variants whose
// value is true; a flag whose state is DISABLED is at 0%. Other targeting
// (an "if", a bucketing expression before the buckets) is not a rollout
// this package can set: it is an error, and the file is left alone.
type Flagd struct{ Path string }

func (f Flagd) String() string { return f.Path + " (flagd flag " + rollout.FlagKey + ")" }

// flagdFlag is the part of a flag definition Flagd reads.
type flagdFlag struct {
	State     string                     `json:"state"`
	Variants  map[string]json.RawMessage `json:"variants"`
	Targeting map[string]json.RawMessage `json:"targeting"`
}

// buckets reads the flag's fractional buckets: variant names, weights, and
// which variants are on (value true).
func (f Flagd) buckets(data []byte) (flag flagdFlag, names []string, weights []float64, err error) {
	var file struct {
		Flags map[string]json.RawMessage `json:"flags"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return flag, nil, nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	raw, ok := file.Flags[rollout.FlagKey]
	if !ok {
		return flag, nil, nil, fmt.Errorf("%s: no flag %q", f.Path, rollout.FlagKey)
	}
	if err := json.Unmarshal(raw, &flag); err != nil {
		return flag, nil, nil, fmt.Errorf("%s: flag %s: %w", f.Path, rollout.FlagKey, err)
	}
	frac, ok := flag.Targeting["fractional"]
	if len(flag.Targeting) != 1 || !ok {
		return flag, nil, nil, fmt.Errorf(`%s: flag %s: targeting is not a plain rollout: want {"fractional": [["on", N], ["off", 100-N]]}`, f.Path, rollout.FlagKey)
	}
	var bs [][]json.RawMessage
	if err := json.Unmarshal(frac, &bs); err != nil || len(bs) == 0 {
		return flag, nil, nil, fmt.Errorf(`%s: flag %s: fractional: want a list of ["variant", weight] buckets`, f.Path, rollout.FlagKey)
	}
	for _, b := range bs {
		var name string
		var w float64
		if len(b) != 2 || json.Unmarshal(b[0], &name) != nil || json.Unmarshal(b[1], &w) != nil || w < 0 {
			return flag, nil, nil, fmt.Errorf(`%s: flag %s: fractional: want ["variant", weight] buckets with weights ≥ 0`, f.Path, rollout.FlagKey)
		}
		if _, ok := flag.Variants[name]; !ok {
			return flag, nil, nil, fmt.Errorf("%s: flag %s: fractional names variant %q, which is not defined", f.Path, rollout.FlagKey, name)
		}
		names, weights = append(names, name), append(weights, w)
	}
	return flag, names, weights, nil
}

func isOn(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("true")) }

// Percent reads the share of the fractional weights that go to true.
func (f Flagd) Percent() (float64, error) {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return 0, err
	}
	return f.percent(data)
}

// percent is Percent of the file's contents data.
func (f Flagd) percent(data []byte) (float64, error) {
	flag, names, weights, err := f.buckets(data)
	if err != nil {
		return 0, err
	}
	if flag.State == "DISABLED" {
		return 0, nil
	}
	on, total := 0.0, 0.0
	for i, w := range weights {
		total += w
		if isOn(flag.Variants[names[i]]) {
			on += w
		}
	}
	if total == 0 {
		return 0, fmt.Errorf("%s: flag %s: the fractional weights add up to 0", f.Path, rollout.FlagKey)
	}
	return 100 * on / total, nil
}

// SetPercent sets the weights of a rule with exactly one bucket of a true
// variant and one of a false variant to percent and 100 − percent (whole
// numbers: flagd's weights are integers). Only the two numbers change in
// the file. A DISABLED flag is refused: enabling it is an operator's
// decision.
func (f Flagd) SetPercent(percent float64) error {
	if err := checkPercent(percent); err != nil {
		return err
	}
	if percent != math.Trunc(percent) {
		return fmt.Errorf("flagsource: flagd weights are whole numbers, not %v", percent)
	}
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return err
	}
	flag, names, _, err := f.buckets(data)
	if err != nil {
		return err
	}
	if flag.State == "DISABLED" {
		return fmt.Errorf("%s: flag %s is DISABLED: set its state to ENABLED first", f.Path, rollout.FlagKey)
	}
	if len(names) != 2 || isOn(flag.Variants[names[0]]) == isOn(flag.Variants[names[1]]) {
		return fmt.Errorf("%s: flag %s: want two buckets, one of a true variant and one of a false one", f.Path, rollout.FlagKey)
	}
	want := []string{strconv.Itoa(int(percent)), strconv.Itoa(100 - int(percent))}
	if !isOn(flag.Variants[names[0]]) {
		want[0], want[1] = want[1], want[0]
	}
	spans, err := weightSpans(data)
	if err != nil || len(spans) != 2 {
		return fmt.Errorf("%s: could not find the two weights to replace", f.Path)
	}
	var out []byte
	last := 0
	for i, s := range spans {
		out = append(append(out, data[last:s[0]]...), want[i]...)
		last = s[1]
	}
	out = append(out, data[last:]...)
	if p, err := f.percent(out); err != nil || p != percent {
		return fmt.Errorf("%s: internal error: the edited file does not read back as %v%%", f.Path, percent)
	}
	return atomicfile.Write(f.Path, func(w io.Writer) error {
		_, err := w.Write(out)
		return err
	})
}

// weightSpans returns the byte ranges of the weights in
// flags[FlagKey].targeting.fractional, in order, by walking the JSON tokens.
func weightSpans(data []byte) ([][2]int, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object    bool
		key       string
		index     int
		expectKey bool
	}
	var stack []frame
	path := func() []string {
		p := make([]string, 0, len(stack))
		for _, f := range stack {
			if f.object {
				p = append(p, f.key)
			} else {
				p = append(p, strconv.Itoa(f.index))
			}
		}
		return p
	}
	// advance marks a value as read in the enclosing container.
	advance := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].expectKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
	var spans [][2]int
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return spans, nil
		}
		if err != nil {
			return nil, err
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
			if k, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].expectKey = k, false
				continue
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, frame{object: true, expectKey: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:len(stack)-1]
				advance()
			}
		case json.Number:
			p := path()
			if len(p) == 6 && p[0] == "flags" && p[1] == rollout.FlagKey && p[2] == "targeting" && p[3] == "fractional" && p[5] == "1" {
				end := int(dec.InputOffset())
				spans = append(spans, [2]int{end - len(t), end})
			}
			advance()
		default:
			advance()
		}
	}
}
