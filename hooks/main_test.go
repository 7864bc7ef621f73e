package hooks_test

import (
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"go.uber.org/goleak"
)

// TestMain checks that the tests leave no goroutine behind. The OpenFeature
// SDK's process-wide event goroutine, started by the Rollouts the middleware
// tests build, lives until openfeature.Shutdown, which runs after the tests
// and before the check.
func TestMain(m *testing.M) { goleak.VerifyTestMain(shutdownAfter{m}) }

type shutdownAfter struct{ m *testing.M }

func (s shutdownAfter) Run() int {
	code := s.m.Run()
	openfeature.Shutdown()
	return code
}
