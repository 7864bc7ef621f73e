package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// write appends the section to a file without one and replaces it in a
// file with one, leaving the rest as it was.
func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	require.NoError(t, os.WriteFile(path, []byte("# Benchmarks\n\nfigures\n"), 0o644))
	require.NoError(t, write(path, []byte(begin+"\none\n"+end+"\n")))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "# Benchmarks\n\nfigures\n\n"+begin+"\none\n"+end+"\n", string(b))

	require.NoError(t, os.WriteFile(path, append(b, "after\n"...), 0o644))
	require.NoError(t, write(path, []byte(begin+"\ntwo\n"+end+"\n")))
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "# Benchmarks\n\nfigures\n\n"+begin+"\ntwo\n"+end+"\nafter\n", string(b))
}
