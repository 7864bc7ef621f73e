package config

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/knadh/koanf/providers/file"
)

// settle is how long Watch waits after the last change to the file before
// it reads it, so that a file being written is read once, whole.
const settle = 50 * time.Millisecond

// rewatch is how often Watch looks for a removed file to reappear.
const rewatch = 250 * time.Millisecond

// Watch watches the file Load(path, environ) reads, with koanf's file
// provider, and after each change calls apply with what Load returns then:
// the new Settings and nil, or the zero Settings and Load's error. A file
// that is removed is watched again when it reappears (as when an editor or
// a tool replaces it); the removal itself is reported to apply as an error
// that wraps fs.ErrNotExist. Changes within 50ms of each other are read
// once.
//
// apply is called from one goroutine at a time. When Load reads no file
// (path and DYNRETRY_CONFIG are empty) there is nothing to watch: Watch
// returns a stop that does nothing. stop ends the watch and waits for a
// call of apply in progress; after it returns apply is not called again.
func Watch(path string, environ []string, apply func(Settings, error)) (stop func(), err error) {
	resolved, _ := resolve(path, lastValues(environ))
	if resolved == "" {
		return func() {}, nil
	}
	w := &watcher{path: resolved, reload: func() { apply(Load(path, environ)) }, report: func(err error) { apply(Settings{}, err) }}
	w.timer = time.AfterFunc(time.Hour, w.fire)
	w.timer.Stop()
	if err := w.arm(); err != nil {
		return nil, fmt.Errorf("config: watching %s: %w", resolved, err)
	}
	return w.stop, nil
}

type watcher struct {
	path   string
	reload func()      // reads the file and applies it
	report func(error) // applies an error of the watch itself

	mu      sync.Mutex // guards the fields below and serializes the calls of apply
	f       *file.File
	timer   *time.Timer
	stopped bool
	done    chan struct{} // closed by stop; ends a wait for the file's return
}

// arm starts watching the file.
func (w *watcher) arm() error {
	f := file.Provider(w.path)
	if err := f.Watch(w.event); err != nil {
		return err
	}
	w.f = f
	if w.done == nil {
		w.done = make(chan struct{})
	}
	return nil
}

// event is the file provider's callback.
func (w *watcher) event(_ any, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if err == nil {
		w.timer.Reset(settle)
		return
	}
	// The provider has stopped watching: the file went away, or the
	// watcher failed. Report it and wait for the file to be back.
	if _, serr := os.Stat(w.path); errors.Is(serr, os.ErrNotExist) {
		err = fmt.Errorf("config: %s was removed; the last good configuration stays until it is back: %w", w.path, serr)
	} else {
		err = fmt.Errorf("config: watching %s: %w", w.path, err)
	}
	w.report(err)
	go w.waitForFile()
}

// waitForFile re-arms the watch once the file exists again, and reads it.
func (w *watcher) waitForFile() {
	t := time.NewTicker(rewatch)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		}
		if _, err := os.Stat(w.path); err != nil {
			continue
		}
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return
		}
		err := w.arm()
		w.mu.Unlock()
		if err == nil {
			w.fire()
			return
		}
	}
}

// fire reads the file and applies it.
func (w *watcher) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.reload()
	}
}

func (w *watcher) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	w.stopped = true
	w.timer.Stop()
	close(w.done)
	w.f.Unwatch()
}
