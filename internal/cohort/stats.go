package cohort

import (
	"fmt"
	"math"
	"slices"
)

// Z95 is the standard normal quantile of a two-sided 95% interval.
const Z95 = 1.959963984540054

// Wilson returns the Wilson score interval for k successes in n trials at
// the two-sided level of the normal quantile z (Z95 for 95%): the set of
// proportions p for which |k/n − p| ≤ z·sqrt(p(1−p)/n). Unlike k/n ± z·se it
// stays within [0, 1] and is not empty at k = 0 or k = n. With n = 0 the
// interval is [0, 1]: nothing is known.
//
// Reference: E. B. Wilson, "Probable inference, the law of succession, and
// statistical inference", JASA 22 (1927).
func Wilson(k, n int, z float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	nf, p, z2 := float64(n), float64(k)/float64(n), z*z
	center := (p + z2/(2*nf)) / (1 + z2/nf)
	half := z / (1 + z2/nf) * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return max(0, center-half), min(1, center+half)
}

// TwoProportionZ is the pooled two-proportion z-test of k1/n1 against
// k2/n2: z = (p1 − p2)/sqrt(p(1−p)(1/n1 + 1/n2)) with p = (k1+k2)/(n1+n2),
// and the two-sided p-value 2(1 − Φ(|z|)). It is valid for one look at the
// data: checked again as data accrue, its false-alarm rate grows with every
// look (see HalfWidth for a test that allows that). ok is false when a
// sample is empty or the pooled proportion is 0 or 1 (no variance: z is
// undefined); z is then 0 and pValue 1.
func TwoProportionZ(k1, n1, k2, n2 int) (z, pValue float64, ok bool) {
	if n1 <= 0 || n2 <= 0 {
		return 0, 1, false
	}
	p := float64(k1+k2) / float64(n1+n2)
	if p <= 0 || p >= 1 {
		return 0, 1, false
	}
	se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	z = (float64(k1)/float64(n1) - float64(k2)/float64(n2)) / se
	return z, math.Erfc(math.Abs(z) / math.Sqrt2), true
}

// HalfWidth is the half-width of a two-sided (1−alpha) confidence sequence
// for a parameter θ estimated by θ̂ with (estimated) variance v: the
// interval θ̂ ± HalfWidth(v, tau2, alpha) covers θ at every look at once
// with probability at least 1−alpha, so a decision may be made at whichever
// look the interval first excludes a value, and the data checked every day,
// without the false-alarm rate growing with the number of looks.
//
// It is the normal-mixture boundary: θ is rejected when the mixture
// likelihood ratio sqrt(v/(v+τ²))·exp(τ²(θ̂−θ)²/(2v(v+τ²))) reaches 1/alpha,
// which gives
//
//	HalfWidth = sqrt( v(v+τ²)/τ² · (2·ln(1/alpha) + ln((v+τ²)/v)) ).
//
// tau2 (τ²) is the variance of the normal mixing distribution: the test is
// most sensitive to differences of about τ. The guarantee is asymptotic
// (θ̂ approximately normal, v consistent), as for the z-test; the package's
// tests check the error rate by simulation at the sample sizes the guard
// requires.
//
// References: H. Robbins, "Statistical methods related to the law of the
// iterated logarithm", Ann. Math. Statist. 41 (1970); R. Johari, P. Koomen,
// L. Pekelis, D. Walsh, "Always valid inference: continuous monitoring of
// A/B tests", Operations Research 70(3) (2022) — the mixture SPRT, in this
// form; S. R. Howard, A. Ramdas, J. McAuliffe, J. Sekhon, "Time-uniform,
// nonparametric, nonasymptotic confidence sequences", Ann. Statist. 49(2)
// (2021).
//
// v ≤ 0 gives 0; tau2 ≤ 0 or alpha outside (0, 1) gives +Inf.
func HalfWidth(v, tau2, alpha float64) float64 {
	switch {
	case tau2 <= 0 || alpha <= 0 || alpha >= 1 || math.IsNaN(v):
		return math.Inf(1)
	case v <= 0:
		return 0
	}
	return math.Sqrt(v * (v + tau2) / tau2 * (2*math.Log(1/alpha) + math.Log((v+tau2)/v)))
}

// smoothedVar is the variance of a sample of n values with the given sum
// and sum of squares, with two pseudo-observations added, 0 and 1. For
// values in {0, 1} that is p̃(1−p̃) with p̃ = (k+1)/(n+2) (the Agresti–Caffo
// adjustment). It keeps an interval from collapsing to a point when every
// value observed is the same (no failures yet, say), and is 1/4 with no
// data.
func smoothedVar(n int, sum, sumSq float64) float64 {
	m := float64(n) + 2
	mean := (sum + 1) / m
	return max(0, (sumSq+1)/m-mean*mean)
}

// Quantile is the q-quantile of xs by the nearest-rank method (the
// smallest x with at least q·len(xs) values ≤ x), 0 for none. xs need not
// be sorted; it is not modified.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[rank(q, len(s))]
}

// rank is the 0-based index of the nearest-rank q-quantile in n sorted
// values.
func rank(q float64, n int) int {
	i := int(math.Ceil(q*float64(n))) - 1
	return min(max(i, 0), n-1)
}

// FormatP writes a p-value for a sentence: "= 0.028", or "< 0.001".
func FormatP(p float64) string {
	if p < 0.001 {
		return "< 0.001"
	}
	return fmt.Sprintf("= %.3f", p)
}
