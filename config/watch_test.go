package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/config"
	"github.com/autopack/dynretry/retry"
)

type loaded struct {
	s   config.Settings
	err error
}

// watch starts config.Watch on path and returns what apply receives.
func watch(t *testing.T, path string, environ []string) <-chan loaded {
	t.Helper()
	got := make(chan loaded, 16)
	stop, err := config.Watch(path, environ, func(s config.Settings, err error) { got <- loaded{s, err} })
	require.NoError(t, err)
	t.Cleanup(stop)
	return got
}

// next waits for the next configuration applied.
func next(t *testing.T, got <-chan loaded) loaded {
	t.Helper()
	select {
	case l := <-got:
		return l
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no reload within 10s")
		return loaded{}
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte("lovable_patterns:\n  p1_dynamic_retry_delays:\n"+body), 0o644))
}

func TestWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "models.yaml")
	write(t, path, "    rollout_percent: 10\n")
	got := watch(t, path, []string{"DYNRETRY_MAX_HINT=90s"})

	// An edit applies, the environment still over the file.
	write(t, path, "    rollout_percent: 50\n    policies:\n      rate_limited: {max_attempts: 3}\n")
	l := next(t, got)
	require.NoError(t, l.err)
	assert.Equal(t, 50.0, l.s.RolloutPercent)
	assert.Equal(t, 3, l.s.Engine.Policies[retry.RateLimited].MaxAttempts)
	assert.Equal(t, 90*time.Second, l.s.Engine.MaxHint)

	// A bad edit is an error naming the key.
	write(t, path, "    rollout_percent: 500\n")
	l = next(t, got)
	assert.ErrorContains(t, l.err, "rollout_percent = 500: must be within [0, 100]")
	assert.Zero(t, l.s)

	// Replaced by rename, as tools write files atomically.
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte("lovable_patterns:\n  p1_dynamic_retry_delays:\n    rollout_percent: 100\n"), 0o644))
	require.NoError(t, os.Rename(tmp, path))
	l = next(t, got)
	require.NoError(t, l.err)
	assert.Equal(t, 100.0, l.s.RolloutPercent)

	// Removed: reported; back: watched again.
	require.NoError(t, os.Remove(path))
	l = next(t, got)
	assert.True(t, errors.Is(l.err, fs.ErrNotExist), "%v", l.err)
	assert.ErrorContains(t, l.err, "was removed; the last good configuration stays until it is back")
	write(t, path, "    rollout_percent: 20\n")
	l = next(t, got)
	require.NoError(t, l.err)
	assert.Equal(t, 20.0, l.s.RolloutPercent)
	write(t, path, "    rollout_percent: 30\n")
	l = next(t, got)
	require.NoError(t, l.err)
	assert.Equal(t, 30.0, l.s.RolloutPercent)
}

func TestWatchStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "models.yaml")
	write(t, path, "    rollout_percent: 10\n")
	got := make(chan loaded, 16)
	stop, err := config.Watch(path, nil, func(s config.Settings, err error) { got <- loaded{s, err} })
	require.NoError(t, err)
	stop()
	stop() // twice is fine
	write(t, path, "    rollout_percent: 40\n")
	select {
	case l := <-got:
		assert.Fail(t, "applied after stop", "%+v", l)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestWatchNothing(t *testing.T) {
	stop, err := config.Watch("", []string{"DYNRETRY_CONFIG="}, func(config.Settings, error) { panic("called") })
	require.NoError(t, err)
	stop()

	_, err = config.Watch(filepath.Join(t.TempDir(), "absent.yaml"), nil, func(config.Settings, error) {})
	assert.ErrorIs(t, err, fs.ErrNotExist)
}
