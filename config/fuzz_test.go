package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/config"
)

// FuzzLoad feeds arbitrary file contents and environment entries (one per
// line) to Load: it must not panic, and must either return a configuration
// that passes retry's Validate and keeps rollout_percent within [0, 100], or
// the zero Settings and an error starting with "config: ".
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	require.NoError(f, err)
	bad, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	require.NoError(f, err)
	seeds = append(append(seeds, filepath.Join("..", "models.yaml")), bad...)
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		require.NoError(f, err)
		f.Add(b, "")
	}
	f.Add([]byte("lovable_patterns:\n  p1_dynamic_retry_delays: {}\n"),
		"DYNRETRY_MAX_HINT=90s\nDYNRETRY_POLICIES__RATE_LIMITED__MAX_ATTEMPTS=5\nLOVABLE_DYNAMIC_RETRY_DELAYS=off")
	f.Add([]byte("a: &x {b: *x}\n"), "DYNRETRY_BUDGET__RATIO=NaN")
	f.Add([]byte("lovable_patterns: {p1_dynamic_retry_delays: {policies: {auth: {base: 1s}}}}\n"), "DYNRETRY_POLICIES__AUTH__MAX=1ms")

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		path, err := os.CreateTemp(dir, "models-*.yaml")
		require.NoError(t, err)
		defer os.Remove(path.Name())
		_, err = path.Write(data)
		require.NoError(t, err)
		require.NoError(t, path.Close())
		s, err := config.Load(path.Name(), strings.Split(env, "\n"))
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "config: "), "error %q does not start with \"config: \"", err)
			require.Zero(t, s, "error %q with non-zero Settings", err)
			return
		}
		require.GreaterOrEqual(t, s.RolloutPercent, 0.0)
		require.LessOrEqual(t, s.RolloutPercent, 100.0)
		eng := s.Engine
		require.NoError(t, eng.Validate(), "Load succeeded with an invalid engine config")
	})
}
