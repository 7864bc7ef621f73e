// Package atomicfile replaces files whole: a reader sees the old file or the
// new one, never a part.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// Write writes path with write, through a temporary file in the same
// directory that is synced, then renamed over path: so path is either the
// old file or the whole new one, also across a crash. The new file keeps
// the old one's permissions (0644 when there was none). When write or any
// step fails, path is untouched and the temporary file removed.
//
// A watcher of path (flagd's, say) sees one rename, not a truncation
// followed by writes.
func Write(path string, write func(io.Writer) error) (err error) {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
