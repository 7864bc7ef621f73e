package flagsource_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/config"
	"github.com/autopack/dynretry/internal/flagsource"
)

func write(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// TestModelsYAMLKeepsEverything: the project's own models.yaml, advanced
// and rolled back, differs only in the number; comments and blank lines
// stay, and the plugin's configuration reads the new value.
func TestModelsYAMLKeepsEverything(t *testing.T) {
	orig := read(t, "../../models.yaml")
	path := write(t, "models.yaml", orig)
	m := flagsource.ModelsYAML{Path: path}
	p, err := m.Percent()
	require.NoError(t, err)
	assert.Equal(t, 10.0, p)
	for _, next := range []float64{50, 100, 0, 12.5} {
		require.NoError(t, m.SetPercent(next))
		got, err := m.Percent()
		require.NoError(t, err)
		assert.Equal(t, next, got)
		s, err := config.Load(path, nil)
		require.NoError(t, err)
		assert.Equal(t, next, s.RolloutPercent, "the plugin reads it")
		want := strings.Replace(orig, "rollout_percent: 10\n", "rollout_percent: "+strconv.FormatFloat(next, 'f', -1, 64)+"\n", 1)
		assert.Equal(t, want, read(t, path), "only the number changed")
	}
}

func TestModelsYAMLShapes(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"quoted, with a comment": {
			"lovable_patterns:\n  p1_dynamic_retry_delays:\n    rollout_percent: \"10\"  # stage 1\n    enabled: true\n",
			"lovable_patterns:\n  p1_dynamic_retry_delays:\n    rollout_percent: 50  # stage 1\n    enabled: true\n",
		},
		"flow style": {
			"lovable_patterns: {p1_dynamic_retry_delays: {enabled: true, rollout_percent: 10}}\nother: 1\n",
			"lovable_patterns: {p1_dynamic_retry_delays: {enabled: true, rollout_percent: 50}}\nother: 1\n",
		},
		"missing key: added, comments kept": {
			"# autopack's models\nmodels:\n  - gpt-4o # the default\nlovable_patterns:\n  p1_dynamic_retry_delays:\n    enabled: true\n",
			"# autopack's models\nmodels:\n  - gpt-4o # the default\nlovable_patterns:\n  p1_dynamic_retry_delays:\n    enabled: true\n    rollout_percent: 50\n",
		},
		"missing section": {
			"models: [a, b]\n",
			"models: [a, b]\nlovable_patterns:\n  p1_dynamic_retry_delays:\n    rollout_percent: 50\n",
		},
	} {
		path := write(t, "models.yaml", tc.in)
		m := flagsource.ModelsYAML{Path: path}
		require.NoError(t, m.SetPercent(50), name)
		assert.Equal(t, tc.want, read(t, path), name)
	}
}

func TestModelsYAMLErrors(t *testing.T) {
	bad := write(t, "models.yaml", "lovable_patterns:\n  p1_dynamic_retry_delays:\n    rollout_percent: lots\n")
	_, err := flagsource.ModelsYAML{Path: bad}.Percent()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rollout_percent")
	before := read(t, bad)
	require.Error(t, flagsource.ModelsYAML{Path: bad}.SetPercent(50), "an invalid file is not written")
	assert.Equal(t, before, read(t, bad))

	ok := write(t, "models.yaml", "lovable_patterns:\n  p1_dynamic_retry_delays:\n    rollout_percent: 10\n")
	for _, p := range []float64{-1, 101} {
		assert.Error(t, flagsource.ModelsYAML{Path: ok}.SetPercent(p))
	}
	_, err = flagsource.ModelsYAML{Path: filepath.Join(t.TempDir(), "none.yaml")}.Percent()
	assert.Error(t, err)
}

const flagdFile = `{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "other": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a", "targeting": {"fractional": [["a", 1]]}},
    "dynamic-retry-delays": {
      "state": "ENABLED",
      "variants": {
        "on": true,
        "off": false
      },
      "defaultVariant": "off",
      "targeting": {
        "fractional": [
          ["on", 10],
          ["off", 90]
        ]
      }
    }
  }
}
`

func TestFlagd(t *testing.T) {
	path := write(t, "flags.json", flagdFile)
	f := flagsource.Flagd{Path: path}
	p, err := f.Percent()
	require.NoError(t, err)
	assert.Equal(t, 10.0, p)
	for _, next := range []float64{50, 100, 0} {
		require.NoError(t, f.SetPercent(next))
		got, err := f.Percent()
		require.NoError(t, err)
		assert.Equal(t, next, got)
	}
	assert.Equal(t, strings.Replace(strings.Replace(flagdFile, `["on", 10]`, `["on", 0]`, 1), `["off", 90]`, `["off", 100]`, 1), read(t, path), "only the weights changed")
	assert.Error(t, f.SetPercent(12.5), "weights are whole numbers")

	// The project's test flag files.
	for file, want := range map[string]float64{"flags-0.json": 0, "flags-10.json": 10, "flags-50.json": 50} {
		p, err := flagsource.Flagd{Path: filepath.Join("../../rollout/testdata", file)}.Percent()
		require.NoError(t, err, file)
		assert.Equal(t, want, p, file)
	}
}

func TestFlagdRefuses(t *testing.T) {
	for name, text := range map[string]string{
		"no flag":        `{"flags": {}}`,
		"not json":       `{"flags": `,
		"if targeting":   `{"flags": {"dynamic-retry-delays": {"state": "ENABLED", "variants": {"on": true, "off": false}, "targeting": {"if": [true, "on", "off"]}}}}`,
		"unknown bucket": `{"flags": {"dynamic-retry-delays": {"state": "ENABLED", "variants": {"on": true, "off": false}, "targeting": {"fractional": [["on", 10], ["maybe", 90]]}}}}`,
		"three buckets":  `{"flags": {"dynamic-retry-delays": {"state": "ENABLED", "variants": {"on": true, "off": false, "x": false}, "targeting": {"fractional": [["on", 10], ["off", 80], ["x", 10]]}}}}`,
		"disabled":       `{"flags": {"dynamic-retry-delays": {"state": "DISABLED", "variants": {"on": true, "off": false}, "targeting": {"fractional": [["on", 10], ["off", 90]]}}}}`,
	} {
		path := write(t, "flags.json", text)
		require.Error(t, flagsource.Flagd{Path: path}.SetPercent(50), name)
		assert.Equal(t, text, read(t, path), "%s: untouched", name)
	}
	p, err := flagsource.Flagd{Path: write(t, "flags.json", `{"flags": {"dynamic-retry-delays": {"state": "DISABLED", "variants": {"on": true, "off": false}, "targeting": {"fractional": [["on", 10], ["off", 90]]}}}}`)}.Percent()
	require.NoError(t, err)
	assert.Zero(t, p, "a disabled flag is at 0%")
}
