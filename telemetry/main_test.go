package telemetry

import (
	"testing"

	"github.com/autopack/dynretry/internal/testutil"
)

// TestMain checks that the tests leave no goroutine behind (the dashboard
// test registers the plugin, whose OpenFeature SDK is shut down after the
// tests).
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }
