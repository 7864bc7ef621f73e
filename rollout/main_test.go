package rollout_test

import (
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
	"go.uber.org/goleak"
)

// flagdHandleEvents is the goroutine flagd v0.6.0 leaves behind after Shutdown: it ranges over the
// in-process service's event channel, which Shutdown never closes.
const flagdHandleEvents = "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg.(*Provider).handleEvents"

// TestMain checks that the tests leave no goroutine behind but flagd's known leak. The OpenFeature SDK's
// process-wide event goroutine lives until openfeature.Shutdown, which runs after the tests and before the
// check.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(shutdownAfter{m}, goleak.IgnoreTopFunction(flagdHandleEvents))
}

type shutdownAfter struct{ m *testing.M }

func (s shutdownAfter) Run() int {
	code := s.m.Run()
	openfeature.Shutdown()
	return code
}
