// Package flagdfile serves the rollout flag from a flagd flag file, resolved
// in process, following the file when it is deleted and created again. It
// is a package of its own so that rollout, and so the plugin, does not
// compile flagd and gRPC for programs that do not use it.
package flagdfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
	flagd "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	"github.com/open-feature/go-sdk/openfeature"
)

// FlagdFile is an OpenFeature provider serving the flags of a flagd flag
// file, resolved in process (flagd's in-process resolver in file mode),
// that keeps following the file when it is deleted and created again.
//
// flagd watches the file itself, and picks up a file replaced by a rename
// within milliseconds. But a file deleted and recreated (rm, then a new
// file, as some deployment tools do) is no longer watched by flagd v0.6.0:
// it keeps serving the flags it last read, silently, whatever the new file
// says. FlagdFile watches the file's directory too:
//
//   - when the file disappears, it keeps serving the flags last read (the
//     safest answer: the rollout stays where it was), logs a warning and
//     emits PROVIDER_STALE with a message naming the file;
//   - when a file of that name appears again, it starts a new flagd
//     provider on it, swaps it in, shuts the old one down, and emits
//     PROVIDER_CONFIGURATION_CHANGED; if the new file cannot be loaded, it
//     keeps the old flags and emits PROVIDER_ERROR.
//
// The PROVIDER_CONFIGURATION_CHANGED events of the flagd provider in use
// (flagd's own reloads, such as of a file replaced by a rename) are passed
// on too, so that a rollout that keeps assignments forgets them.
//
// The zero value is not usable; call [New]. It is safe for
// concurrent use.
type FlagdFile struct {
	path   string
	events chan openfeature.Event

	mu      sync.RWMutex
	inner   *flagd.Provider
	stop    chan struct{} // closed when inner is swapped out
	missing bool

	watcher *fsnotify.Watcher
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

var (
	_ openfeature.FeatureProvider = (*FlagdFile)(nil)
	_ openfeature.StateHandler    = (*FlagdFile)(nil)
	_ openfeature.EventHandler    = (*FlagdFile)(nil)
)

// New returns a provider for the flag file at path. Init (called
// by OpenFeature when the provider is registered, e.g. by [New]) loads the
// file and starts watching.
func New(path string) (*FlagdFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return &FlagdFile{path: abs, events: make(chan openfeature.Event, 16), done: make(chan struct{})}, nil
}

// start returns a new, initialized flagd provider on the file, and the
// channel to close to stop passing its events on.
func (f *FlagdFile) start() (*flagd.Provider, chan struct{}, error) {
	p, err := flagd.NewProvider(flagd.WithInProcessResolver(), flagd.WithOfflineFilePath(f.path))
	if err != nil {
		return nil, nil, err
	}
	if err := p.Init(openfeature.EvaluationContext{}); err != nil {
		p.Shutdown()
		return nil, nil, err
	}
	stop := make(chan struct{})
	f.wg.Go(func() { f.passOn(p, stop) })
	return p, stop, nil
}

// passOn passes p's PROVIDER_CONFIGURATION_CHANGED events on until stop
// is closed or Shutdown.
func (f *FlagdFile) passOn(p *flagd.Provider, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-f.done:
			return
		case e, ok := <-p.EventChannel():
			if !ok {
				return
			}
			if e.EventType == openfeature.ProviderConfigChange {
				f.emit(openfeature.ProviderConfigChange, "flag file "+f.path+" reloaded by flagd")
			}
		}
	}
}

// Init loads the file and starts watching its directory.
func (f *FlagdFile) Init(openfeature.EvaluationContext) error {
	if _, err := os.Stat(f.path); err != nil {
		return fmt.Errorf("rollout: flag file: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("rollout: watching %s: %w", f.path, err)
	}
	if err := w.Add(filepath.Dir(f.path)); err != nil {
		w.Close()
		return fmt.Errorf("rollout: watching %s: %w", f.path, err)
	}
	p, stop, err := f.start()
	if err != nil {
		w.Close()
		return fmt.Errorf("rollout: flag file %s: %w", f.path, err)
	}
	f.mu.Lock()
	f.inner, f.stop, f.watcher = p, stop, w
	f.mu.Unlock()
	f.wg.Go(f.watch)
	return nil
}

// watch follows the directory's events until Shutdown.
func (f *FlagdFile) watch() {
	for {
		select {
		case <-f.done:
			return
		case err, ok := <-f.watcher.Errors:
			if !ok {
				return
			}
			f.emit(openfeature.ProviderError, fmt.Sprintf("watching %s: %v", f.path, err))
		case ev, ok := <-f.watcher.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) != f.path {
				continue
			}
			switch {
			case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
				if _, err := os.Stat(f.path); errors.Is(err, os.ErrNotExist) {
					f.mu.Lock()
					f.missing = true
					f.mu.Unlock()
					msg := "flag file " + f.path + " was removed: serving the flags last read until it is back"
					slog.Warn("dynretry: " + msg)
					f.emit(openfeature.ProviderStale, msg)
				}
			case ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write):
				f.mu.RLock()
				missing := f.missing
				f.mu.RUnlock()
				if missing {
					f.reload()
				}
			}
		}
	}
}

// reload swaps in a new flagd provider on the file that came back. An
// empty file is one being written: its next write brings it back.
func (f *FlagdFile) reload() {
	data, err := os.ReadFile(f.path)
	if err == nil && len(data) == 0 {
		return
	}
	if err == nil && !json.Valid(data) {
		// Checked here because flagd v0.6.0 leaks a goroutine when its
		// initialization fails.
		err = errors.New("not valid JSON")
	}
	var p *flagd.Provider
	var stop chan struct{}
	if err == nil {
		p, stop, err = f.start()
	}
	if err != nil {
		msg := fmt.Sprintf("flag file %s is back but cannot be loaded: %v; serving the flags last read", f.path, err)
		slog.Error("dynretry: " + msg)
		f.emit(openfeature.ProviderError, msg)
		return
	}
	f.mu.Lock()
	old, oldStop := f.inner, f.stop
	f.inner, f.stop, f.missing = p, stop, false
	f.mu.Unlock()
	close(oldStop)
	old.Shutdown()
	slog.Info("dynretry: flag file " + f.path + " is back: reloaded")
	f.emit(openfeature.ProviderConfigChange, "flag file "+f.path+" is back: reloaded")
}

// emit sends an event without blocking: with nobody listening, events are
// dropped rather than stopping the watch.
func (f *FlagdFile) emit(t openfeature.EventType, msg string) {
	select {
	case f.events <- openfeature.Event{ProviderName: f.Metadata().Name, EventType: t, ProviderEventDetails: openfeature.ProviderEventDetails{Message: msg}}:
	default:
	}
}

// Missing reports whether the file is gone and the flags served are the
// last ones read.
func (f *FlagdFile) Missing() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.missing
}

// Shutdown stops watching and shuts the flagd provider down. Calling it
// again does nothing.
func (f *FlagdFile) Shutdown() {
	f.once.Do(func() {
		close(f.done)
		f.mu.Lock()
		w, p := f.watcher, f.inner
		f.mu.Unlock()
		if w != nil {
			w.Close()
		}
		f.wg.Wait()
		if p != nil {
			p.Shutdown()
		}
	})
}

// EventChannel returns the provider's events (see FlagdFile).
func (f *FlagdFile) EventChannel() <-chan openfeature.Event { return f.events }

// Metadata names the provider "flagd", as flagd's own.
func (f *FlagdFile) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: "flagd"} }

// Hooks returns no hooks.
func (f *FlagdFile) Hooks() []openfeature.Hook { return nil }

func (f *FlagdFile) provider() *flagd.Provider {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.inner
}

// BooleanEvaluation asks the current flagd provider.
func (f *FlagdFile) BooleanEvaluation(ctx context.Context, flag string, def bool, ec openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	if p := f.provider(); p != nil {
		return p.BooleanEvaluation(ctx, flag, def, ec)
	}
	return openfeature.BoolResolutionDetail{Value: def, ProviderResolutionDetail: notLoaded(f.path)}
}

// StringEvaluation asks the current flagd provider.
func (f *FlagdFile) StringEvaluation(ctx context.Context, flag string, def string, ec openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	if p := f.provider(); p != nil {
		return p.StringEvaluation(ctx, flag, def, ec)
	}
	return openfeature.StringResolutionDetail{Value: def, ProviderResolutionDetail: notLoaded(f.path)}
}

// FloatEvaluation asks the current flagd provider.
func (f *FlagdFile) FloatEvaluation(ctx context.Context, flag string, def float64, ec openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	if p := f.provider(); p != nil {
		return p.FloatEvaluation(ctx, flag, def, ec)
	}
	return openfeature.FloatResolutionDetail{Value: def, ProviderResolutionDetail: notLoaded(f.path)}
}

// IntEvaluation asks the current flagd provider.
func (f *FlagdFile) IntEvaluation(ctx context.Context, flag string, def int64, ec openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	if p := f.provider(); p != nil {
		return p.IntEvaluation(ctx, flag, def, ec)
	}
	return openfeature.IntResolutionDetail{Value: def, ProviderResolutionDetail: notLoaded(f.path)}
}

// ObjectEvaluation asks the current flagd provider.
func (f *FlagdFile) ObjectEvaluation(ctx context.Context, flag string, def any, ec openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	if p := f.provider(); p != nil {
		return p.ObjectEvaluation(ctx, flag, def, ec)
	}
	return openfeature.InterfaceResolutionDetail{Value: def, ProviderResolutionDetail: notLoaded(f.path)}
}

func notLoaded(path string) openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{
		ResolutionError: openfeature.NewProviderNotReadyResolutionError("flag file " + path + " not loaded"),
		Reason:          openfeature.ErrorReason,
	}
}
