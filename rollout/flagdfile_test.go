package rollout_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/rollout"
	"github.com/autopack/dynretry/rollout/flagdfile"
)

// deleteAndRecreate removes the flag file, waits, and writes src's
// contents as a new file of the same name (not a rename over it).
func deleteAndRecreate(t *testing.T, path, src string, gap time.Duration) {
	t.Helper()
	require.NoError(t, os.Remove(path))
	time.Sleep(gap)
	data, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

// TestFlagdFileSurvivesDeleteAndRecreate: flagd alone keeps serving the
// old percentage after its file is deleted and recreated; FlagdFile follows
// the new file.
func TestFlagdFileSurvivesDeleteAndRecreate(t *testing.T) {
	ids := runIDs(2000)
	dir := t.TempDir()

	// flagd alone: the rollout silently stays at 10%.
	plain := filepath.Join(dir, "plain.json")
	replaceFile(t, "testdata/flags-10.json", plain)
	r0 := newRollout(t, newFlagd(t, plain), unset)
	on10 := assignFlagd(t, r0, ids)
	deleteAndRecreate(t, plain, "testdata/flags-50.json", 300*time.Millisecond)
	time.Sleep(time.Second)
	assert.Equal(t, on10, assignFlagd(t, r0, ids), "flagd v0.6.0 no longer watches a recreated file (if this fails, upstream fixed it)")

	// FlagdFile: the same steps reach 50%.
	path := filepath.Join(dir, "flags.json")
	replaceFile(t, "testdata/flags-10.json", path)
	p, err := flagdfile.New(path)
	require.NoError(t, err)
	r := newRollout(t, p, unset)
	before := assignFlagd(t, r, ids)
	assert.Equal(t, on10, before, "the same file, the same answers")

	require.NoError(t, os.Remove(path))
	require.Eventually(t, p.Missing, 5*time.Second, 10*time.Millisecond, "the removal is noticed")
	assert.Equal(t, before, assignFlagd(t, r, ids), "while the file is gone, the flags last read")

	time.Sleep(300 * time.Millisecond)
	data, err := os.ReadFile("testdata/flags-50.json")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	t.Logf("reloaded after %v", waitForReload(t, r, ids[:1000], before))
	on50 := assignFlagd(t, r, ids)
	n := count(on50)
	assert.True(t, n >= 900 && n <= 1100, "50%%: %d of %d on", n, len(ids))
	requireSubset(t, before, on50, "10% → 50%")
	assert.False(t, p.Missing())

	// Replacing by rename still works after the reload.
	replaceFile(t, "testdata/flags-0.json", path)
	waitForReload(t, r, ids[:1000], on50)
	assert.Zero(t, count(assignFlagd(t, r, ids)))
}

// TestFlagdFileEvents: the removal is reported as PROVIDER_STALE, the
// reload as PROVIDER_CONFIGURATION_CHANGED, a broken new file as
// PROVIDER_ERROR (and the flags last read stay).
func TestFlagdFileEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	replaceFile(t, "testdata/flags-10.json", path)
	p, err := flagdfile.New(path)
	require.NoError(t, err)
	require.NoError(t, p.Init(openfeature.EvaluationContext{}))
	defer p.Shutdown()
	next := func() openfeature.Event {
		t.Helper()
		for {
			select {
			case e := <-p.EventChannel():
				if strings.HasSuffix(e.Message, "reloaded by flagd") {
					continue // flagd's own (re)load of the file, passed on
				}
				return e
			case <-time.After(5 * time.Second):
				t.Fatal("no event within 5s")
				return openfeature.Event{}
			}
		}
	}
	eval := func() bool {
		return p.BooleanEvaluation(t.Context(), rollout.FlagKey, false, openfeature.FlattenedContext{openfeature.TargetingKey: "fileorg-phase1-20251203-000001"}).Value
	}
	want := eval()

	require.NoError(t, os.Remove(path))
	e := next()
	assert.Equal(t, openfeature.ProviderStale, e.EventType)
	assert.Contains(t, e.Message, path)
	assert.Contains(t, e.Message, "removed")

	require.NoError(t, os.WriteFile(path, []byte(`{"flags": `), 0o644))
	e = next()
	assert.Equal(t, openfeature.ProviderError, e.EventType, e.Message)
	assert.Contains(t, e.Message, "cannot be loaded")
	assert.True(t, p.Missing())
	assert.Equal(t, want, eval(), "the flags last read")

	replaceFile(t, "testdata/flags-50.json", path)
	for e = next(); e.EventType == openfeature.ProviderError; e = next() {
		// the broken file may have been seen more than once (created, written)
	}
	assert.Equal(t, openfeature.ProviderConfigChange, e.EventType, e.Message)
	assert.False(t, p.Missing())
	assert.Equal(t, "flagd", p.Metadata().Name)
}

func TestFlagdFileMissingAtStart(t *testing.T) {
	p, err := flagdfile.New(filepath.Join(t.TempDir(), "none.json"))
	require.NoError(t, err)
	_, err = rollout.New(t.Context(), p, unset)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "none.json")
}
