package sim

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStatsNeverHoldTheKey checks that Stats names credentials by
// CredentialID, never by the key the client sent.
func TestStatsNeverHoldTheKey(t *testing.T) {
	var s stats
	s.received("sk-secret-0123456789")
	out := s.snapshot()
	require.Contains(t, out.ByCredential, CredentialID("sk-secret-0123456789"), "ByCredential: want an entry under CredentialID")
	require.Len(t, out.ByCredential, 1, "ByCredential: want one entry")
	for k := range out.ByCredential {
		assert.NotContains(t, k, "secret", "ByCredential key is not a hash")
		assert.Len(t, k, 16, "ByCredential key %q is not a 16-digit hash", k)
	}
}
