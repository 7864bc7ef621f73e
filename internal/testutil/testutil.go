// Package testutil holds what several packages' tests share.
package testutil

import (
	"bytes"
	"sync"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"go.uber.org/goleak"
)

// SyncBuffer is a bytes.Buffer safe for concurrent use: a log or trace
// sink that tests read back. The zero value is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// VerifyNoLeaks runs m's tests and then checks that they left no goroutine
// behind (goleak, with opts). The OpenFeature SDK keeps a process-wide event
// goroutine until openfeature.Shutdown, so that runs between the tests and
// the check. Call it from TestMain.
func VerifyNoLeaks(m *testing.M, opts ...goleak.Option) {
	goleak.VerifyTestMain(shutdownAfter{m}, opts...)
}

type shutdownAfter struct{ m *testing.M }

func (s shutdownAfter) Run() int {
	code := s.m.Run()
	openfeature.Shutdown()
	return code
}
