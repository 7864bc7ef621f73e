package cohort

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/autopack/dynretry/rollout"
)

// Recommendation is what the guard says to do with the rollout.
type Recommendation string

// The recommendations.
const (
	// Advance: move to the next stage.
	Advance Recommendation = "advance"
	// Hold: stay at the current stage (too little data, an inconclusive
	// comparison, or the last stage reached).
	Hold Recommendation = "hold"
	// Rollback: return to 0%: treatment is significantly worse than control
	// by more than a tolerance.
	Rollback Recommendation = "rollback"
)

// Stages are the rollout's percentages, in order: the plan's 10 → 50 →
// 100, from 0.
var Stages = []float64{0, 10, 50, 100}

// NextStage returns the first stage above percent, or 100 at 100.
func NextStage(percent float64) float64 {
	for _, s := range Stages {
		if s > percent {
			return s
		}
	}
	return 100
}

// Policy says how sure the guard must be, and what worsening it accepts.
// The zero value of each field means the default of DefaultPolicy.
type Policy struct {
	// MinCalls is the sample each cohort needs before any decision.
	MinCalls int
	// Alpha bounds the probability that the guard ever advances while a
	// figure is worse than its tolerance, or ever rolls back while none
	// is, over the three figures and every look at the data together. It
	// is split evenly between the three figures.
	Alpha float64
	// MaxErrorIncrease is the accepted increase of the error rate, in
	// proportion (0.01: one percentage point above control's).
	MaxErrorIncrease float64
	// MaxWastedIncrease is the accepted increase of wasted attempts per
	// call (0.1: a tenth of an attempt per call above control's).
	MaxWastedIncrease float64
	// MaxP95Increase is the accepted increase of the p95 time to answer,
	// relative to control's (0.2: 20% slower).
	MaxP95Increase float64
}

// DefaultPolicy is the guard's policy when a field is left zero.
var DefaultPolicy = Policy{MinCalls: 200, Alpha: 0.05, MaxErrorIncrease: 0.01, MaxWastedIncrease: 0.1, MaxP95Increase: 0.2}

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy
	if p.MinCalls > 0 {
		d.MinCalls = p.MinCalls
	}
	if p.Alpha > 0 && p.Alpha < 1 {
		d.Alpha = p.Alpha
	}
	if p.MaxErrorIncrease > 0 {
		d.MaxErrorIncrease = p.MaxErrorIncrease
	}
	if p.MaxWastedIncrease > 0 {
		d.MaxWastedIncrease = p.MaxWastedIncrease
	}
	if p.MaxP95Increase > 0 {
		d.MaxP95Increase = p.MaxP95Increase
	}
	return d
}

// The τ of each figure's normal mixture (see HalfWidth): its intervals are
// narrowest once the estimate's standard error is near τ/3 or below, and
// still valid, wider, before that.
const (
	TauErrorRate = 0.05 // 5 points of error rate
	TauWasted    = 0.5  // half an attempt per call
	TauSlowShare = 0.05 // 5 points of the slow-call share
)

// Result is the outcome of one check.
type Result string

// The results of a check.
const (
	Pass         Result = "pass"         // within tolerance, with confidence
	Inconclusive Result = "inconclusive" // not yet known either way
	Regression   Result = "regression"   // worse than the tolerance, with confidence
	NoData       Result = "no_data"      // a cohort has too few calls
)

// Number is a float64 that marshals +Inf and NaN as JSON null.
type Number float64

// MarshalJSON writes the number, or null when it is not finite.
func (n Number) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(n), 0) || math.IsNaN(float64(n)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(n))
}

// Check is the comparison of one figure.
type Check struct {
	// Name is error_rate, wasted_per_call or p95_time_to_answer.
	Name   string `json:"name"`
	Result Result `json:"result"`
	// Treatment and Control are the cohorts' figures (the p95 in seconds,
	// null when unbounded).
	Treatment Number `json:"treatment"`
	Control   Number `json:"control"`
	// Estimate is the quantity tested, and [Low, High] its always-valid
	// interval at level Level: for error_rate and wasted_per_call the
	// difference treatment − control; for p95_time_to_answer the share of
	// treatment's calls that failed or were slower than (1 + tolerance) ×
	// control's p95, which is at most 0.05 exactly when treatment's p95 is
	// within the tolerance.
	Estimate Number `json:"estimate"`
	Low      Number `json:"low"`
	High     Number `json:"high"`
	Level    Number `json:"level"`
	// Tolerance is the policy's accepted worsening for the figure.
	Tolerance Number `json:"tolerance"`
	// Reason says it in a sentence.
	Reason string `json:"reason"`
}

// Verdict is the guard's answer.
type Verdict struct {
	// Percent is the rollout's current percentage, Next the one the
	// recommendation leads to.
	Percent        float64        `json:"percent"`
	Next           float64        `json:"next"`
	Recommendation Recommendation `json:"recommendation"`
	Reasons        []string       `json:"reasons"`
	Checks         []Check        `json:"checks"`
}

// Evaluate compares the cohorts of s at the rollout percentage percent
// under policy p and recommends what to do.
//
// Each of three figures is compared with an always-valid interval
// (HalfWidth at level 1 − Alpha/3), so the verdict may be asked for every day:
//
//   - error rate: the difference of proportions, variances with the
//     Agresti–Caffo adjustment;
//   - wasted attempts per call: the difference of means, variances from
//     each call's count (two pseudo-calls, of 0 and 1, keep them positive);
//   - p95 time to answer, where a failed call counts as never answered:
//     the share of treatment's calls slower than L = (1 + MaxP95Increase)
//     × control's p95 is tested against 5% (control's p95 taken at its
//     estimate). When control fails more than 5% of its calls its p95 is
//     unbounded and the check passes: the error-rate check judges failures.
//
// The mixtures' τ are fixed scales of the differences that matter, chosen
// so the intervals are narrow from a few hundred calls to a few hundred
// thousand: [TauErrorRate], [TauWasted], [TauSlowShare].
//
// A figure passes when its interval lies within the tolerance
// (High ≤ tolerance), and is a regression when the interval lies beyond it
// (Low > tolerance). With fewer than MinCalls calls in either cohort every
// check is NoData. The recommendation:
//
//   - Rollback when a check is a regression (at 0% already: Hold);
//   - Advance when every check passes, to NextStage(percent); from 0%,
//     which has no treatment to compare, Advance to 10% unless the data
//     show a regression;
//   - Hold otherwise, and always at 100%.
func Evaluate(s *Summary, percent float64, p Policy) Verdict {
	p = p.withDefaults()
	t, c := s.Cohorts[rollout.Treatment], s.Cohorts[rollout.Control]
	if t == nil {
		t = &Stats{}
	}
	if c == nil {
		c = &Stats{}
	}
	v := Verdict{Percent: percent, Next: percent}
	alpha := p.Alpha / 3
	level := Number(1 - alpha)
	enough := t.Calls >= p.MinCalls && c.Calls >= p.MinCalls

	// Error rate.
	errCheck := Check{Name: "error_rate", Result: NoData, Treatment: Number(t.ErrorRate), Control: Number(c.ErrorRate), Level: level, Tolerance: Number(p.MaxErrorIncrease)}
	if enough {
		vt := smoothedVar(t.Calls, float64(t.FailedCalls), float64(t.FailedCalls)) / float64(t.Calls)
		vc := smoothedVar(c.Calls, float64(c.FailedCalls), float64(c.FailedCalls)) / float64(c.Calls)
		judge(&errCheck, t.ErrorRate-c.ErrorRate, HalfWidth(vt+vc, TauErrorRate*TauErrorRate, alpha), p.MaxErrorIncrease)
	}
	errCheck.Reason = fmt.Sprintf("error rate: treatment %s vs control %s%s", pct(t.ErrorRate), pct(c.ErrorRate),
		explain(errCheck, enough, "difference", func(x Number) string { return signedPoints(float64(x)) }, "+"+points(p.MaxErrorIncrease)))

	// Wasted attempts per call.
	wt, wc := t.WastedPerCall(), c.WastedPerCall()
	wasteCheck := Check{Name: "wasted_per_call", Result: NoData, Treatment: Number(wt), Control: Number(wc), Level: level, Tolerance: Number(p.MaxWastedIncrease)}
	if enough {
		vt := smoothedVar(t.Calls, float64(t.WastedAttempts), t.WastedSumSq) / float64(t.Calls)
		vc := smoothedVar(c.Calls, float64(c.WastedAttempts), c.WastedSumSq) / float64(c.Calls)
		judge(&wasteCheck, wt-wc, HalfWidth(vt+vc, TauWasted*TauWasted, alpha), p.MaxWastedIncrease)
	}
	wasteCheck.Reason = fmt.Sprintf("wasted attempts per call: treatment %.2f vs control %.2f%s", wt, wc,
		explain(wasteCheck, enough, "difference", func(x Number) string { return fmt.Sprintf("%+.2f", float64(x)) }, fmt.Sprintf("+%.2f", p.MaxWastedIncrease)))

	// p95 time to answer.
	pt, pc := t.AnswerQuantile(0.95), c.AnswerQuantile(0.95)
	latCheck := Check{Name: "p95_time_to_answer", Result: NoData, Treatment: Number(pt), Control: Number(pc), Level: level, Tolerance: Number(p.MaxP95Increase)}
	latReason := fmt.Sprintf("p95 time to answer (a failed call counts as never answered): treatment %s vs control %s", secs(pt), secs(pc))
	switch {
	case !enough:
		latReason += explain(latCheck, false, "", nil, "")
	case len(t.Durations) != t.Calls || len(c.Durations) != c.Calls:
		latReason += ": the data have no call durations"
	case math.IsInf(pc, 1):
		latCheck.Result = Pass
		latReason += ": control fails more than 5% of its calls, so its p95 is unbounded and treatment cannot be slower (the error rate judges failures): pass"
	default:
		limit := (1 + p.MaxP95Increase) * pc
		k := t.SlowerThan(limit)
		share := float64(k) / float64(t.Calls)
		h := HalfWidth(smoothedVar(t.Calls, float64(k), float64(k))/float64(t.Calls), TauSlowShare*TauSlowShare, alpha)
		judge(&latCheck, share, h, 0.05)
		latCheck.Tolerance = Number(p.MaxP95Increase)
		latReason += fmt.Sprintf("; %s of treatment's calls failed or took longer than %s (control's p95 +%.0f%%), interval [%s, %s] at %s, limit 5%%: %s",
			pct(share), secs(limit), 100*p.MaxP95Increase, pct(float64(latCheck.Low)), pct(float64(latCheck.High)), pct(float64(level)), latCheck.Result)
	}
	latCheck.Reason = latReason
	v.Checks = []Check{errCheck, wasteCheck, latCheck}

	regressed := slices.ContainsFunc(v.Checks, func(c Check) bool { return c.Result == Regression })
	passed := !slices.ContainsFunc(v.Checks, func(c Check) bool { return c.Result != Pass })
	switch {
	case percent <= 0 && regressed:
		v.Recommendation = Hold
		v.Reasons = append(v.Reasons, "the rollout is at 0% and the data show a regression: find its cause before starting again")
	case percent <= 0:
		v.Recommendation, v.Next = Advance, NextStage(percent)
		v.Reasons = append(v.Reasons, fmt.Sprintf("the rollout is at 0%%: starting it at %g%% needs no comparison (treatment has no calls at 0%%)", v.Next))
	case regressed:
		v.Recommendation, v.Next = Rollback, 0
		v.Reasons = append(v.Reasons, "treatment is worse than control beyond a tolerance: return to 0%")
	case percent >= 100:
		v.Recommendation = Hold
		v.Reasons = append(v.Reasons, "the rollout is complete (100%)")
	case !enough:
		v.Recommendation = Hold
		v.Reasons = append(v.Reasons, fmt.Sprintf("too little data: treatment has %d calls and control %d, each needs %d", t.Calls, c.Calls, p.MinCalls))
	case passed:
		v.Recommendation, v.Next = Advance, NextStage(percent)
		v.Reasons = append(v.Reasons, fmt.Sprintf("treatment is not worse than control on any figure: advance from %g%% to %g%%", percent, v.Next))
	default:
		v.Recommendation = Hold
		v.Reasons = append(v.Reasons, "the comparison is not yet conclusive: hold and look again with more data")
	}
	for _, c := range v.Checks {
		v.Reasons = append(v.Reasons, c.Reason)
	}
	return v
}

// judge sets c's estimate and interval, and its result against the
// tolerance tol.
func judge(c *Check, estimate, half, tol float64) {
	c.Estimate, c.Low, c.High = Number(estimate), Number(estimate-half), Number(estimate+half)
	switch {
	case estimate+half <= tol:
		c.Result = Pass
	case estimate-half > tol:
		c.Result = Regression
	default:
		c.Result = Inconclusive
	}
}

// explain ends a check's reason: the interval and the result, or that there
// is too little data.
func explain(c Check, enough bool, what string, format func(Number) string, tol string) string {
	if !enough {
		return ": too little data"
	}
	return fmt.Sprintf("; %s %s, interval [%s, %s] at %s, tolerance %s: %s", what, format(c.Estimate),
		format(c.Low), format(c.High), pct(float64(c.Level)), tol, c.Result)
}

func pct(x float64) string          { return fmt.Sprintf("%.1f%%", 100*x) }
func points(x float64) string       { return fmt.Sprintf("%.1f points", 100*x) }
func signedPoints(x float64) string { return fmt.Sprintf("%+.1f points", 100*x) }

// secs formats a duration in seconds; +Inf as "unbounded", NaN as "none".
func secs(x float64) string {
	switch {
	case math.IsNaN(x):
		return "none"
	case math.IsInf(x, 1):
		return "unbounded"
	}
	return fmt.Sprintf("%.2fs", x)
}
