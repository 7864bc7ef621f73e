package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/autopack/dynretry/telemetry"
)

// FileReporter writes error reports in autopack's layout:
// Dir/.autonomous_runs/{run_id}/errors/{YYYYmmdd_HHMMSS}_{component}_{ErrorType}.json,
// and a readable .txt twin beside it. Unlike autopack's reporter, two
// reports in the same second never overwrite each other (the second gets
// a _2 suffix, and so on), and the path returned is the one written.
// Secrets are redacted everywhere in the report. It is safe for concurrent
// use.
type FileReporter struct {
	// Dir is the runner's working directory; "" means the current one.
	Dir string
	// Secrets are values to redact wherever they appear, e.g. API keys.
	// Whatever telemetry.Redact finds (keys whole or provider-masked,
	// bearer tokens, values after a secret-naming word) is redacted even
	// when not listed.
	Secrets []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex // serializes the choice of file names
}

// maxValue is the longest context value kept, in characters.
const maxValue = 200

// report is the JSON written.
type report struct {
	Timestamp    string         `json:"timestamp"`
	ErrorType    string         `json:"error_type"`
	ErrorMessage string         `json:"error_message"`
	RunID        string         `json:"run_id"`
	PhaseID      string         `json:"phase_id"`
	Component    string         `json:"component"`
	Operation    string         `json:"operation"`
	ErrorChain   []string       `json:"error_chain"`
	ContextData  map[string]any `json:"context_data"`
	Runtime      map[string]any `json:"runtime"`
}

// Report implements ErrorReporter.
func (f *FileReporter) Report(_ context.Context, r ErrorReport) (string, error) {
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	t := now().UTC()
	rep := report{
		Timestamp: t.Format(time.RFC3339Nano), ErrorType: errorType(r.Err),
		ErrorMessage: f.redact(errText(r.Err)), RunID: r.RunID, PhaseID: r.PhaseID,
		Component: r.Component, Operation: r.Operation, ContextData: map[string]any{},
		Runtime: map[string]any{"go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH, "pid": os.Getpid()},
	}
	walkErrors(r.Err, func(e error) {
		rep.ErrorChain = append(rep.ErrorChain, fmt.Sprintf("%T: %s", e, f.redact(e.Error())))
	})
	for k, v := range r.Context {
		s := fmt.Sprint(v)
		if secretName(k) {
			rep.ContextData[k] = telemetry.Redacted
			continue
		}
		switch v.(type) {
		case bool, int, int64, float64:
			rep.ContextData[k] = v
		default:
			rep.ContextData[k] = cut(f.redact(s), maxValue)
		}
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", fmt.Errorf("hooks: encoding error report: %w", err)
	}
	dir := filepath.Join(f.Dir, ".autonomous_runs", safeName(r.RunID), "errors")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("hooks: error report: %w", err)
	}
	base := t.Format("20060102_150405") + "_" + safeName(r.Component) + "_" + rep.ErrorType
	f.mu.Lock()
	defer f.mu.Unlock()
	path, err := create(dir, base, js)
	if err != nil {
		return "", err
	}
	txt := strings.TrimSuffix(path, ".json") + ".txt"
	if err := os.WriteFile(txt, []byte(text(rep)), 0o644); err != nil {
		return path, fmt.Errorf("hooks: error report twin: %w", err)
	}
	return path, nil
}

// walkErrors calls f for err and every error it wraps, depth first, through
// both Unwrap() error and Unwrap() []error (errors.Join).
func walkErrors(err error, f func(error)) {
	if err == nil {
		return
	}
	f(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, f)
		}
	}
}

// create writes data to dir/base.json, or base_2.json, base_3.json… — the
// first that does not exist — and returns the path written.
func create(dir, base string, data []byte) (string, error) {
	for n := 1; ; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s_%d", base, n)
		}
		path := filepath.Join(dir, name+".json")
		file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("hooks: error report: %w", err)
		}
		_, err = file.Write(data)
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("hooks: error report: %w", err)
		}
		return path, nil
	}
}

func (f *FileReporter) redact(s string) string {
	for _, sec := range f.Secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, telemetry.Redacted)
		}
	}
	return telemetry.Redact(s)
}

// secretName reports whether a context key names a secret (api_key,
// authorization, …_token): one whose value telemetry.Redact would hide
// after it, whatever the value holds.
func secretName(k string) bool {
	const probe = "=v"
	return telemetry.Redact(k+probe) != k+probe
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// errorType names the error for the file name: a failed LLM call by its
// class in CamelCase (RateLimited), any other error by its Go type with its
// package (openai.Error).
func errorType(err error) string {
	if err == nil {
		return "Error"
	}
	var ce *CallError
	if errors.As(err, &ce) && ce.Summary.Class != "" {
		return camel(string(ce.Summary.Class))
	}
	t := reflect.TypeOf(err)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := t.String()
	if name == "" {
		name = "Error"
	}
	return safeName(name)
}

// camel turns rate_limited into RateLimited.
func camel(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == '_' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// safeName keeps a file-name part to letters, digits, '.', '-' and '_'.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
	s = strings.Trim(s, ".")
	if s == "" {
		return "_"
	}
	return cut(s, 100)
}

func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// text renders a report for people.
func text(r report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Error report %s\n\n%s: %s\n\nrun %s, phase %s, %s/%s\n", r.Timestamp, r.ErrorType, r.ErrorMessage, r.RunID, r.PhaseID, r.Component, r.Operation)
	keys := make([]string, 0, len(r.ContextData))
	for k := range r.ContextData {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		b.WriteString("\nContext:\n")
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %v\n", k, r.ContextData[k])
	}
	b.WriteString("\nError chain:\n")
	for _, e := range r.ErrorChain {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}
