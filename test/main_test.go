package test

import (
	"testing"

	"github.com/autopack/dynretry/internal/testutil"
)

// TestMain checks that the tests leave no goroutine behind.
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }
