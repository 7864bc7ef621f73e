package atomicfile_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.yaml")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o600))
	ino := func() uint64 { fi, err := os.Stat(path); require.NoError(t, err); return inode(fi) }
	before := ino()

	require.NoError(t, atomicfile.Write(path, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "new", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "permissions kept")
	assert.NotEqual(t, before, ino(), "replaced by a rename, not rewritten in place")

	boom := errors.New("boom")
	err = atomicfile.Write(path, func(w io.Writer) error { io.WriteString(w, "half"); return boom })
	assert.ErrorIs(t, err, boom)
	b, _ = os.ReadFile(path)
	assert.Equal(t, "new", string(b), "untouched on failure")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")

	assert.Error(t, atomicfile.Write(filepath.Join(dir, "missing", "f"), func(io.Writer) error { return nil }))
}
