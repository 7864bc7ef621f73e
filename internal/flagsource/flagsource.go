// Package flagsource reads and writes the rollout percentage where the
// running plugins read it: the rollout_percent key of models.yaml, or the
// fractional weights of the flag in a flagd flag file. Writes replace the
// file atomically (internal/atomicfile) and change nothing else in it.
package flagsource

import (
	"fmt"
	"math"
)

// Source is where the rollout percentage lives.
type Source interface {
	// Percent returns the percentage of runs in the treatment cohort.
	Percent() (float64, error)
	// SetPercent writes percent, within [0, 100], atomically.
	SetPercent(percent float64) error
	// String names the source for messages: "models.yaml (rollout_percent)".
	String() string
}

// checkPercent refuses a percentage outside [0, 100], or not a number.
func checkPercent(p float64) error {
	if math.IsNaN(p) || p < 0 || p > 100 {
		return fmt.Errorf("flagsource: percentage %v is not within [0, 100]", p)
	}
	return nil
}
