package bench

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
)

// TestMeasureDeterminism (temporary measurement) runs DET_SCENARIO ×
// dynretry × seed DET_SEED DET_N times and logs every cell.
func TestMeasureDeterminism(t *testing.T) {
	name := os.Getenv("DET_SCENARIO")
	if name == "" {
		t.Skip("DET_SCENARIO not set")
	}
	seed, _ := strconv.ParseUint(os.Getenv("DET_SEED"), 10, 64)
	n, _ := strconv.Atoi(os.Getenv("DET_N"))
	pol := os.Getenv("DET_POLICY")
	if pol == "" {
		pol = "dynretry"
	}
	var s Scenario
	for _, sc := range Scenarios() {
		if sc.Name == name {
			s = sc
		}
	}
	var p Policy
	for _, pp := range Policies() {
		if pp.Name == pol {
			p = pp
		}
	}
	var first Cell
	for i := range n {
		var c Cell
		synctest.Test(t, func(t *testing.T) {
			var err error
			c, err = RunCell(s, "", p, seed)
			require.NoError(t, err)
		})
		t.Logf("%d: att=%d failed=%d wasted=%d makespan=%.4f x=%.4f p50=%.4f p99=%.4f rej=%v", i, c.Attempts, c.Failed, c.WastedAttempts, c.MakespanS, c.XBound, c.P50S, c.P99S, c.Rejected)
		if i == 0 {
			first = c
		} else if !strings.EqualFold("", "") && first.Attempts != c.Attempts {
		}
	}
}
