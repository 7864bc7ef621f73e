package cohort

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWilson(t *testing.T) {
	for _, tc := range []struct {
		k, n   int
		lo, hi float64
	}{
		{0, 10, 0, 0.2775},
		{5, 10, 0.2366, 0.7634},
		{10, 10, 0.7225, 1},
		{3, 100, 0.0103, 0.0845},
		{0, 0, 0, 1},
	} {
		lo, hi := Wilson(tc.k, tc.n, Z95)
		assert.InDelta(t, tc.lo, lo, 5e-5, "%d/%d low", tc.k, tc.n)
		assert.InDelta(t, tc.hi, hi, 5e-5, "%d/%d high", tc.k, tc.n)
	}
}

func TestTwoProportionZ(t *testing.T) {
	z, p, ok := TwoProportionZ(45, 100, 30, 100)
	require.True(t, ok)
	assert.InDelta(t, 2.1909, z, 1e-4)
	assert.InDelta(t, 0.02846, p, 1e-5)
	z, p, ok = TwoProportionZ(30, 100, 45, 100)
	require.True(t, ok)
	assert.InDelta(t, -2.1909, z, 1e-4, "sign follows the first sample")
	assert.InDelta(t, 0.02846, p, 1e-5)
	for _, c := range [][4]int{{0, 0, 1, 10}, {0, 10, 0, 10}, {10, 10, 5, 5}} {
		_, p, ok := TwoProportionZ(c[0], c[1], c[2], c[3])
		assert.False(t, ok, "%v", c)
		assert.Equal(t, 1.0, p, "%v", c)
	}
}

func TestHalfWidthEdges(t *testing.T) {
	assert.Zero(t, HalfWidth(0, 0.01, 0.05))
	assert.True(t, math.IsInf(HalfWidth(0.01, 0, 0.05), 1))
	assert.True(t, math.IsInf(HalfWidth(0.01, 0.01, 0), 1))
	assert.True(t, math.IsInf(HalfWidth(math.NaN(), 0.01, 0.05), 1))
	// Wider than the fixed-sample interval (the price of looking often),
	// narrower with more data.
	v := 0.05 * 0.95 / 1000
	assert.Greater(t, HalfWidth(v, 1e-4, 0.05), Z95*math.Sqrt(v))
	assert.Less(t, HalfWidth(v/10, 1e-4, 0.05), HalfWidth(v, 1e-4, 0.05))
}

func TestSmoothedVar(t *testing.T) {
	// Binary: p̃(1−p̃) with p̃ = (k+1)/(n+2).
	assert.InDelta(t, (4.0/12)*(8.0/12), smoothedVar(10, 3, 3), 1e-12)
	assert.InDelta(t, 0.25, smoothedVar(0, 0, 0), 1e-12)
	assert.Positive(t, smoothedVar(1000, 0, 0), "no failures yet is not certainty")
}

// monitor simulates rollouts checked once a day for days days, with n calls
// a day in treatment and 4n in control (the 10%-ish stage, where control
// is the larger cohort), failure rates pt and pc. It returns the shares of
// rollouts whose always-valid interval for pt − pc ever lay entirely above
// bound (a false rollback when pt − pc ≤ bound) and entirely below it (a
// false advance when pt − pc ≥ bound), and the first share for the
// fixed-sample 95% z interval checked every day.
func monitor(rng *rand.Rand, sims, days, n int, pt, pc, bound, tau, alpha float64) (above, below, naive float64) {
	var seqHits, belowHits, naiveHits int
	for range sims {
		var kt, nt, kc, nc int
		seqHit, belowHit, naiveHit := false, false, false
		for range days {
			nt, nc = nt+n, nc+4*n
			kt += binomial(rng, n, pt)
			kc += binomial(rng, 4*n, pc)
			est := float64(kt)/float64(nt) - float64(kc)/float64(nc)
			v := smoothedVar(nt, float64(kt), float64(kt))/float64(nt) + smoothedVar(nc, float64(kc), float64(kc))/float64(nc)
			h := HalfWidth(v, tau*tau, alpha)
			if est-h > bound {
				seqHit = true
			}
			if est+h <= bound {
				belowHit = true
			}
			if est-Z95*math.Sqrt(v) > bound {
				naiveHit = true
			}
		}
		if seqHit {
			seqHits++
		}
		if belowHit {
			belowHits++
		}
		if naiveHit {
			naiveHits++
		}
	}
	return float64(seqHits) / float64(sims), float64(belowHits) / float64(sims), float64(naiveHits) / float64(sims)
}

func binomial(rng *rand.Rand, n int, p float64) int {
	k := 0
	for range n {
		if rng.Float64() < p {
			k++
		}
	}
	return k
}

// TestConfidenceSequenceCheckedDaily checks the sequential test's error
// rate by simulation (fixed seed): two months of daily looks at a 5%
// error rate, at the level the guard uses for one figure (alpha 0.05/3).
// The always-valid interval keeps its promise; the fixed-sample interval,
// checked as often, does not.
func TestConfidenceSequenceCheckedDaily(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	const sims, days, perDay, alpha, tol, tau = 2000, 60, 50, 0.05 / 3, 0.01, TauErrorRate
	rng := rand.New(rand.NewPCG(1, 2))

	// Equal rates: a rollback (the interval above the tolerance) is a false
	// alarm; so is any claim that treatment is worse (above 0).
	seq, _, naive := monitor(rng, sims, days, perDay, 0.05, 0.05, 0, tau, alpha)
	t.Logf("equal rates, interval above 0 on some day: sequential %.3f, fixed-sample 95%% %.3f", seq, naive)
	assert.LessOrEqual(t, seq, alpha, "the always-valid interval's false alarms stay within alpha")
	assert.Greater(t, naive, 0.05, "checked daily, the fixed-sample interval errs more often than its 5%%")

	// Treatment worse by exactly the tolerance: advancing (the interval
	// entirely below the tolerance) is the error.
	_, below, _ := monitor(rng, sims, days, perDay, 0.06, 0.05, tol, tau, alpha)
	t.Logf("worse by the tolerance, interval below it on some day: %.3f", below)
	assert.LessOrEqual(t, below, alpha)

	// Power: treatment fails half as often; the interval should come to
	// lie below the tolerance in most rollouts.
	pass := 0
	for range 200 {
		var kt, nt, kc, nc int
		for range days {
			nt, nc = nt+perDay, nc+4*perDay
			kt += binomial(rng, perDay, 0.025)
			kc += binomial(rng, 4*perDay, 0.05)
		}
		est := float64(kt)/float64(nt) - float64(kc)/float64(nc)
		v := smoothedVar(nt, float64(kt), float64(kt))/float64(nt) + smoothedVar(nc, float64(kc), float64(kc))/float64(nc)
		if est+HalfWidth(v, tau*tau, alpha) <= tol {
			pass++
		}
	}
	t.Logf("treatment halves the error rate: passes after %d days in %d of 200 rollouts", days, pass)
	assert.GreaterOrEqual(t, pass, 180)
}

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	assert.Equal(t, 3.0, Quantile(xs, 0.5))
	assert.Equal(t, 5.0, Quantile(xs, 0.95))
	assert.Equal(t, 1.0, Quantile(xs, 0))
	assert.Equal(t, []float64{5, 1, 4, 2, 3}, xs, "not modified")
	assert.Zero(t, Quantile(nil, 0.5))
}
