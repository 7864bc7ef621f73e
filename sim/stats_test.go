package sim

import (
	"strings"
	"testing"
)

// TestStatsNeverHoldTheKey checks that Stats names credentials by
// CredentialID, never by the key the client sent.
func TestStatsNeverHoldTheKey(t *testing.T) {
	var s stats
	s.received("sk-secret-0123456789")
	out := s.snapshot()
	if _, ok := out.ByCredential[CredentialID("sk-secret-0123456789")]; !ok || len(out.ByCredential) != 1 {
		t.Fatalf("ByCredential = %v, want one entry under CredentialID", out.ByCredential)
	}
	for k := range out.ByCredential {
		if strings.Contains(k, "secret") || len(k) != 16 {
			t.Errorf("ByCredential key %q is not a 16-digit hash", k)
		}
	}
}
