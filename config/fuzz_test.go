package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/autopack/dynretry/config"
)

// FuzzLoad feeds arbitrary file contents and environment entries (one per
// line) to Load: it must not panic, and must either return a configuration
// that passes retry's Validate and keeps rollout_percent within [0, 100], or
// the zero Settings and an error starting with "config: ".
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	bad, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(append(seeds, filepath.Join("..", "models.yaml")), bad...)
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "")
	}
	f.Add([]byte("lovable_patterns:\n  p1_dynamic_retry_delays: {}\n"),
		"DYNRETRY_MAX_HINT=90s\nDYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS=5\nLOVABLE_DYNAMIC_RETRY_DELAYS=off")
	f.Add([]byte("a: &x {b: *x}\n"), "DYNRETRY_BUDGET__RATIO=NaN")
	f.Add([]byte("lovable_patterns: {p1_dynamic_retry_delays: {policies: {auth: {base: 1s}}}}\n"), "DYNRETRY_POLICIES__AUTH__MAX=1ms")

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		path, err := os.CreateTemp(dir, "models-*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path.Name())
		if _, err := path.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := path.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := config.Load(path.Name(), strings.Split(env, "\n"))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error %q does not start with \"config: \"", err)
			}
			if !reflect.DeepEqual(s, config.Settings{}) {
				t.Fatalf("error %q with non-zero Settings %+v", err, s)
			}
			return
		}
		if s.RolloutPercent < 0 || s.RolloutPercent > 100 {
			t.Fatalf("RolloutPercent = %v, want within [0, 100]", s.RolloutPercent)
		}
		eng := s.Engine
		if err := eng.Validate(); err != nil {
			t.Fatalf("Load succeeded with an invalid engine config: %v", err)
		}
	})
}
