package retry

import "sync"

// A budget is the retry budget of every limit key, as BudgetConfig
// describes. It is safe for concurrent use.
//
// It holds at most maxBudgetKeys keys that are not full: a new one beyond
// that forgets another, whose budget is full again. A process that calls
// more limits than that at once with failures on each (it would take
// thousands of models or credentials) retries some of them more than the
// budget alone would allow; memory stays bounded whatever the keys.
type budget struct {
	cfg    BudgetConfig
	mu     sync.Mutex
	tokens map[Key]float64 // by limit key; absent means full
}

// maxBudgetKeys bounds the keys a budget remembers.
const maxBudgetKeys = 4096

// record charges a failure of class c or credits a success (c == "") to
// key, and returns the tokens left, or -1 when the budget is disabled.
func (b *budget) record(key Key, c Class) float64 {
	if b.cfg.MaxTokens < 0 {
		return -1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.tokens[key]
	if !ok {
		t = b.cfg.MaxTokens
	}
	switch {
	case c == "":
		t = min(t+b.cfg.Ratio, b.cfg.MaxTokens)
	case c.budgeted():
		t = max(t-1, 0)
	}
	switch {
	case t == b.cfg.MaxTokens:
		delete(b.tokens, key)
	case ok || len(b.tokens) < maxBudgetKeys:
		b.tokens[key] = t
	default:
		for k := range b.tokens {
			delete(b.tokens, k) // any one: Go's map order is random
			break
		}
		b.tokens[key] = t
	}
	return t
}

// peek returns key's tokens left.
func (b *budget) peek(key Key) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.tokens[key]; ok {
		return t
	}
	return b.cfg.MaxTokens
}
