package retry_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/autopack/dynretry/retry"
	"github.com/autopack/dynretry/retry/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(*testing.T) retry.Store { return new(retry.MemoryStore) },
		Forgets: func(t *testing.T, s retry.Store, keys []retry.Key, idle time.Time) {
			m := s.(*retry.MemoryStore)
			// A MemoryStore sweeps when its states double: use enough new
			// limits, in use at idle.
			for i := range 2048 {
				k := retry.Key{Provider: retry.OpenAI, Model: "gpt-4o", Credential: "new-" + strconv.Itoa(i)}
				_, err := m.Book(context.Background(), k, retry.Ask{Now: idle, Cost: retry.Cost{Requests: 1}})
				require.NoError(t, err)
			}
			for _, k := range keys {
				assert.False(t, m.Holds(k), "%s is still held", k)
			}
		},
	})
}
