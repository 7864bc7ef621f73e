package retry

import (
	"math"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Fixed instants for the pure functions: t0 is the Date of every response in
// testdata/responses; ts(n) is n seconds after it.
var t0 = time.Date(2026, time.November, 27, 8, 0, 0, 0, time.UTC)

func ts(sec float64) time.Time { return t0.Add(time.Duration(math.Round(sec * float64(time.Second)))) }

// hdr builds a header from name, value pairs.
func hdr(kv ...string) http.Header {
	h := make(http.Header)
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// response is a failed outcome with a status, a body and header pairs.
func response(status int, body string, kv ...string) Outcome {
	return Outcome{Status: status, Header: hdr(kv...), Body: []byte(body)}
}

// with calls f with key's state, under the store's lock: tests set and
// read states through it.
func (m *MemoryStore) with(key Key, f func(*PaceState)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, _ := m.states(key, time.Time{})
	f(s)
}
