// Package report renders the comparison of the cohorts as one
// self-contained HTML page: inline CSS and SVG charts drawn here, no
// network, no script library.
package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/autopack/dynretry/internal/cohort"
	"github.com/autopack/dynretry/rollout"
)

//go:embed report.html.tmpl
var pageText string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":  func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) },
	"f2":   func(x float64) string { return fmt.Sprintf("%.2f", x) },
	"secs": func(x float64) string { return fmt.Sprintf("%.2f s", x) },
}).Parse(pageText))

// colors of the cohorts in every chart.
var colors = map[rollout.Cohort]string{rollout.Treatment: "#1f77b4", rollout.Control: "#e8710a"}

// Row is one cohort's line of the page's tables.
type Row struct {
	Cohort        rollout.Cohort
	Color         string
	Stats         *cohort.Stats
	Low, High     float64 // the error rate's 95% Wilson interval
	WastedPerCall float64
	P95Answer     string
}

// ClassRow is one error class's line of the breakdown.
type ClassRow struct {
	Class string
	By    []*cohort.ClassStats // in the order of cohort.Cohorts; never nil
}

// data is what the template renders.
type data struct {
	Source          string
	Start, End      string
	Span            string
	Rows            []Row
	Empty           []rollout.Cohort
	Reduction       string
	ZTest           string
	Classes         []ClassRow
	ErrorChart      template.HTML
	WastedChart     template.HTML
	LatencyChart    template.HTML
	TimelineChart   template.HTML
	Count429, Waits map[rollout.Cohort]int
}

// Write renders s as the page; source names the traces it came from.
func Write(w io.Writer, s *cohort.Summary, source string) error {
	d := data{Source: source, Count429: map[rollout.Cohort]int{}, Waits: map[rollout.Cohort]int{}}
	if !s.Start.IsZero() {
		d.Start, d.End = s.Start.UTC().Format(time.RFC3339), s.End.UTC().Format(time.RFC3339)
		d.Span = s.End.Sub(s.Start).Round(time.Second).String()
	}
	classes := map[string]bool{}
	for _, c := range cohort.Cohorts {
		st := s.Cohorts[c]
		if st == nil {
			st = &cohort.Stats{}
		}
		if st.Calls == 0 {
			d.Empty = append(d.Empty, c)
		}
		lo, hi := cohort.Wilson(st.FailedCalls, st.Calls, cohort.Z95)
		p95 := "none"
		if st.Calls > 0 {
			if x := st.AnswerQuantile(0.95); math.IsInf(x, 1) {
				p95 = "unbounded"
			} else {
				p95 = fmt.Sprintf("%.2f s", x)
			}
		}
		d.Rows = append(d.Rows, Row{Cohort: c, Color: colors[c], Stats: st, Low: lo, High: hi, WastedPerCall: st.WastedPerCall(), P95Answer: p95})
		for name := range st.Classes {
			classes[name] = true
		}
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range classes {
			if !yield(k) {
				return
			}
		}
	}) {
		row := ClassRow{Class: name}
		for _, r := range d.Rows {
			cs := r.Stats.Classes[name]
			if cs == nil {
				cs = &cohort.ClassStats{}
			}
			row.By = append(row.By, cs)
		}
		d.Classes = append(d.Classes, row)
	}
	t, c := s.Cohorts[rollout.Treatment], s.Cohorts[rollout.Control]
	if s.ErrorRateReduction != nil {
		d.Reduction = fmt.Sprintf("%.0f%%", 100**s.ErrorRateReduction)
	}
	if t != nil && c != nil {
		if z, p, ok := cohort.TwoProportionZ(t.FailedCalls, t.Calls, c.FailedCalls, c.Calls); ok {
			d.ZTest = fmt.Sprintf("z = %.2f, two-sided p %s", z, cohort.FormatP(p))
		}
	}
	for _, e := range s.Timeline {
		switch e.Kind {
		case cohort.Event429:
			d.Count429[e.Cohort]++
		case cohort.EventWait:
			d.Waits[e.Cohort]++
		}
	}
	d.ErrorChart = errorChart(d.Rows)
	d.WastedChart = wastedChart(d.Rows)
	d.LatencyChart = latencyChart(d.Rows)
	d.TimelineChart = timelineChart(s)
	return page.Execute(w, d)
}

// svg collects the elements of one chart.
type svg struct {
	b    strings.Builder
	w, h float64
}

func newSVG(w, h float64, label string) *svg {
	s := &svg{w: w, h: h}
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="%s">`, w, h, w, h, template.HTMLEscapeString(label))
	return s
}

func (s *svg) add(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

func (s *svg) text(x, y float64, anchor, class, text string) {
	s.add(`<text x="%.1f" y="%.1f" text-anchor="%s" class="%s">%s</text>`, x, y, anchor, class, template.HTMLEscapeString(text))
}

func (s *svg) html() template.HTML { return template.HTML(s.b.String() + "</svg>") }

// bar is one cohort's bar in a bar chart: its value, an optional interval
// around it, the value's label and the bar's tooltip.
type bar struct {
	value, low, high float64
	interval         bool
	label, title     string
}

// barChart draws one horizontal bar per cohort on a scale from 0 to top;
// a cohort without calls gets "no calls" instead of a bar.
func barChart(rows []Row, name string, top float64, tick func(float64) string, of func(Row) bar) template.HTML {
	const left, width, barH, gap = 90.0, 420.0, 26.0, 18.0
	s := newSVG(left+width+70, gap+float64(len(rows))*(barH+gap)+20, name)
	axis(s, left, width, gap+float64(len(rows))*(barH+gap)-gap/2, top, tick)
	x := func(v float64) float64 { return left + width*v/top }
	for i, r := range rows {
		y := gap + float64(i)*(barH+gap)
		ym := y + barH/2
		s.text(left-8, ym+4, "end", "label", string(r.Cohort))
		if r.Stats.Calls == 0 {
			s.text(left+4, ym+4, "start", "muted", "no calls")
			continue
		}
		b := of(r)
		s.add(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`,
			left, y, x(b.value)-left, barH, r.Color, template.HTMLEscapeString(b.title))
		end := x(b.value)
		if b.interval {
			x0, x1 := x(b.low), x(b.high)
			s.add(`<path d="M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1fV%.1f" class="whisker"/>`, x0, ym, x1, x0, ym-7, ym+7, x1, ym-7, ym+7)
			end = max(end, x1)
		}
		s.text(end+6, ym+4, "start", "value", b.label)
	}
	return s.html()
}

// errorChart draws each cohort's error rate with its 95% Wilson interval.
func errorChart(rows []Row) template.HTML {
	return barChart(rows, "error rate per cohort with 95% intervals", 1,
		func(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) },
		func(r Row) bar {
			return bar{value: r.Stats.ErrorRate, low: r.Low, high: r.High, interval: true,
				label: fmt.Sprintf("%.1f%%", 100*r.Stats.ErrorRate),
				title: fmt.Sprintf("%s: %d of %d calls failed", r.Cohort, r.Stats.FailedCalls, r.Stats.Calls)}
		})
}

// wastedChart draws each cohort's wasted attempts per call.
func wastedChart(rows []Row) template.HTML {
	top := 0.0
	for _, r := range rows {
		top = max(top, r.WastedPerCall)
	}
	return barChart(rows, "wasted attempts per call per cohort", niceCeil(max(top, 0.1)),
		func(x float64) string { return fmt.Sprintf("%.2g", x) },
		func(r Row) bar {
			return bar{value: r.WastedPerCall, label: fmt.Sprintf("%.2f", r.WastedPerCall),
				title: fmt.Sprintf("%s: %d wasted attempts over %d calls", r.Cohort, r.Stats.WastedAttempts, r.Stats.Calls)}
		})
}

// axis draws a horizontal axis at y from left over width, for values 0 to
// top, with 5 ticks.
func axis(s *svg, left, width, y, top float64, label func(float64) string) {
	s.add(`<path d="M%.1f %.1fH%.1f" class="axis"/>`, left, y, left+width)
	for i := 0; i <= 4; i++ {
		x := left + width*float64(i)/4
		s.add(`<path d="M%.1f %.1fV%.1f" class="axis"/>`, x, y, y+4)
		s.text(x, y+16, "middle", "tick", label(top*float64(i)/4))
	}
}

// niceCeil rounds x up to 1, 2 or 5 times a power of ten.
func niceCeil(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// latencyChart draws the empirical distribution of call durations of each
// cohort (failed calls included), with its p50 and p95 marked.
func latencyChart(rows []Row) template.HTML {
	const left, top, width, height = 56.0, 14.0, 560.0, 220.0
	hi := 0.0
	for _, r := range rows {
		if n := len(r.Stats.Durations); n > 0 {
			hi = max(hi, r.Stats.Durations[n-1])
		}
	}
	hi = niceCeil(max(hi, 0.1))
	s := newSVG(left+width+20, top+height+70, "distribution of call durations per cohort")
	x := func(v float64) float64 { return left + width*v/hi }
	y := func(q float64) float64 { return top + height*(1-q) }
	for i := 0; i <= 4; i++ {
		q := float64(i) / 4
		s.add(`<path d="M%.1f %.1fH%.1f" class="grid"/>`, left, y(q), left+width)
		s.text(left-6, y(q)+4, "end", "tick", fmt.Sprintf("%.0f%%", 100*q))
	}
	axis(s, left, width, top+height, hi, func(v float64) string { return fmt.Sprintf("%.3g s", v) })
	for i, r := range rows {
		n := len(r.Stats.Durations)
		if n == 0 {
			continue
		}
		var p strings.Builder
		fmt.Fprintf(&p, "M%.1f %.1f", x(0), y(0))
		for k, d := range r.Stats.Durations {
			fmt.Fprintf(&p, "H%.1fV%.1f", x(d), y(float64(k+1)/float64(n)))
		}
		s.add(`<path d="%s" fill="none" stroke="%s" stroke-width="2"><title>%s: %d calls</title></path>`, p.String(), r.Color, r.Cohort, n)
		for _, q := range []struct {
			name string
			v    float64
		}{{"p50", r.Stats.LatencyP50S}, {"p95", r.Stats.LatencyP95S}} {
			s.add(`<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s %s: %.2f s</title></circle>`, x(q.v), y(map[string]float64{"p50": 0.5, "p95": 0.95}[q.name]), r.Color, r.Cohort, q.name, q.v)
		}
		ly := top + height + 30 + float64(i)*18
		s.add(`<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`, left, ly, r.Color)
		s.text(left+18, ly+10, "start", "label", fmt.Sprintf("%s (p50 %.2f s, p95 %.2f s)", r.Cohort, r.Stats.LatencyP50S, r.Stats.LatencyP95S))
	}
	return s.html()
}

// timelineChart draws, per time bucket, the 429 responses of each cohort
// (bars, above the axis) and how many calls of each cohort were waiting
// before a retry on average (lines).
func timelineChart(s *cohort.Summary) template.HTML {
	const left, top, width, height = 56.0, 14.0, 560.0, 200.0
	g := newSVG(left+width+20, top+height+70, "timeline of 429 responses and waits")
	span := s.End.Sub(s.Start).Seconds()
	if span <= 0 || len(s.Timeline) == 0 {
		g.text(left, top+20, "start", "muted", "no 429s and no waits")
		return g.html()
	}
	const buckets = 60
	bw := span / buckets
	n429 := map[rollout.Cohort][]float64{}
	waiting := map[rollout.Cohort][]float64{}
	for _, c := range cohort.Cohorts {
		n429[c], waiting[c] = make([]float64, buckets), make([]float64, buckets)
	}
	bucket := func(sec float64) int { return min(max(int(sec/bw), 0), buckets-1) }
	for _, e := range s.Timeline {
		at := e.At.Sub(s.Start).Seconds()
		switch e.Kind {
		case cohort.Event429:
			n429[e.Cohort][bucket(at)]++
		case cohort.EventWait:
			end := at + e.Length.Seconds()
			for b := bucket(at); b <= bucket(end); b++ {
				lo, hi := max(at, float64(b)*bw), min(end, float64(b+1)*bw)
				if hi > lo {
					waiting[e.Cohort][b] += (hi - lo) / bw
				}
			}
		}
	}
	peak := 1.0
	for _, c := range cohort.Cohorts {
		for b := range buckets {
			peak = max(peak, n429[c][b], waiting[c][b])
		}
	}
	peak = niceCeil(peak)
	x := func(b float64) float64 { return left + width*b/buckets }
	y := func(v float64) float64 { return top + height*(1-v/peak) }
	for i := 0; i <= 4; i++ {
		v := peak * float64(i) / 4
		g.add(`<path d="M%.1f %.1fH%.1f" class="grid"/>`, left, y(v), left+width)
		g.text(left-6, y(v)+4, "end", "tick", fmt.Sprintf("%.3g", v))
	}
	axis(g, left, width, top+height, span, func(v float64) string { return fmt.Sprintf("%.0f s", v) })
	slot := width / buckets / 2
	for i, c := range cohort.Cohorts {
		for b, v := range n429[c] {
			if v > 0 {
				g.add(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.55"><title>%s: %g 429s at %.0f–%.0f s</title></rect>`,
					x(float64(b))+float64(i)*slot, y(v), slot, top+height-y(v), colors[c], c, v, float64(b)*bw, float64(b+1)*bw)
			}
		}
		var p strings.Builder
		for b, v := range waiting[c] {
			cmd := "L"
			if b == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&p, "%s%.1f %.1f", cmd, x(float64(b)+0.5), y(v))
		}
		g.add(`<path d="%s" fill="none" stroke="%s" stroke-width="2"><title>%s: calls waiting before a retry</title></path>`, p.String(), colors[c], c)
		ly := top + height + 30 + float64(i)*18
		g.add(`<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s" opacity="0.55"/>`, left, ly, colors[c])
		g.text(left+18, ly+10, "start", "label", fmt.Sprintf("%s: 429s (bars), calls waiting (line)", c))
	}
	return g.html()
}
