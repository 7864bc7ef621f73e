package retry

// Holds reports whether m holds a state for key's limit: for the
// conformance suite's check that idle limits are forgotten.
func (m *MemoryStore) Holds(key Key) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.limits[key]
	return ok
}
