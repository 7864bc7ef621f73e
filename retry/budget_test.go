package retry

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A budget remembers at most maxBudgetKeys keys that are not full, and
// keeps charging the ones it remembers.
func TestBudgetForgetsBeyondItsBound(t *testing.T) {
	b := budget{cfg: BudgetConfig{MaxTokens: 10, Ratio: 0.1}, tokens: map[Key]float64{}}
	for i := range 3 * maxBudgetKeys {
		assert.Equal(t, 9.0, b.record(Key{Model: "model-" + strconv.Itoa(i)}, Overloaded))
	}
	assert.Len(t, b.tokens, maxBudgetKeys)
	last := Key{Model: "model-" + strconv.Itoa(3*maxBudgetKeys-1)}
	assert.Equal(t, 8.0, b.record(last, ServerError), "a remembered key is charged again")
	assert.Len(t, b.tokens, maxBudgetKeys)
}
