package rollout_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/autopack/dynretry/internal/testutil"
)

// flagdHandleEvents is the goroutine flagd v0.6.0 leaves behind after Shutdown: it ranges over the
// in-process service's event channel, which Shutdown never closes.
const flagdHandleEvents = "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg.(*Provider).handleEvents"

// TestMain checks that the tests leave no goroutine behind but flagd's known leak.
func TestMain(m *testing.M) {
	testutil.VerifyNoLeaks(m, goleak.IgnoreTopFunction(flagdHandleEvents))
}
