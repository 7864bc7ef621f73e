package telemetry

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exprs returns every "expr" string in a decoded JSON value.
func exprs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "expr" {
				out = append(out, s)
				continue
			}
			out = append(out, exprs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, exprs(x)...)
		}
	}
	return out
}

var (
	promVariable  = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	promString    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promRange     = regexp.MustCompile(`\[[^\]]*\]`)
	promMatchers  = regexp.MustCompile(`\{([^}]*)\}`)
	promSelector  = regexp.MustCompile(`([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	promIdent     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promCall      = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*\s*\(`)
	promNumber    = regexp.MustCompile(`\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b`)
	promMatcherKV = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promKeywords  = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}
)

// promNames returns the metric names a PromQL expression uses, the label
// names each selector matches on (metric → labels), and the label names
// it groups by. Functions, keywords, numbers, strings, ranges and Grafana
// variables are not names.
func promNames(expr string) (metrics []string, matchers map[string][]string, grouping []string) {
	e := promVariable.ReplaceAllString(expr, "")
	e = promString.ReplaceAllString(e, `""`)
	e = promRange.ReplaceAllString(e, "")
	matchers = map[string][]string{}
	for _, m := range promSelector.FindAllStringSubmatch(e, -1) {
		for _, kv := range promMatcherKV.FindAllStringSubmatch(m[2], -1) {
			matchers[m[1]] = append(matchers[m[1]], kv[1])
		}
	}
	e = promMatchers.ReplaceAllString(e, " ")
	for _, m := range promGrouping.FindAllStringSubmatch(e, -1) {
		grouping = append(grouping, promIdent.FindAllString(m[1], -1)...)
	}
	e = promGrouping.ReplaceAllString(e, " ")
	e = promCall.ReplaceAllString(e, " ")
	e = promNumber.ReplaceAllString(e, " ")
	for _, id := range promIdent.FindAllString(e, -1) {
		if !promKeywords[strings.ToLower(id)] {
			metrics = append(metrics, id)
		}
	}
	return metrics, matchers, grouping
}

func TestPromNames(t *testing.T) {
	m, sel, by := promNames(`histogram_quantile(0.99, sum by (le, a_b) (rate(x_bucket{c=~"$v",d!="y"}[$__rate_interval]))) / on(a_b) y_total > bool 2`)
	assert.Equal(t, []string{"x_bucket", "y_total"}, m)
	assert.Equal(t, map[string][]string{"x_bucket": {"c", "d"}}, sel)
	assert.Equal(t, []string{"le", "a_b", "a_b"}, by)
}

// TestDashboardQueriesExportedSeries checks that every metric and label the
// dashboard queries is in a real scrape of the Prometheus handler.
func TestDashboardQueriesExportedSeries(t *testing.T) {
	raw, err := os.ReadFile("dashboard.json")
	require.NoError(t, err)
	var dash any
	require.NoError(t, json.Unmarshal(raw, &dash))
	queries := exprs(dash)
	require.NotEmpty(t, queries)

	h := newHarness(t, Options{})
	recordCall(h.tel)
	scrape := scrapeMetrics(t, h)
	series := map[string]string{} // metric name → its sample lines
	for _, line := range strings.Split(scrape, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := promIdent.FindString(line)
		series[name] += line + "\n"
	}

	used := map[string]bool{}
	for _, q := range queries {
		metrics, matchers, grouping := promNames(q)
		require.NotEmpty(t, metrics, "query %q names no metric", q)
		var all string
		for _, m := range metrics {
			used[m] = true
			lines, ok := series[m]
			assert.True(t, ok, "query %q uses %s, which the scrape lacks", q, m)
			all += lines
			for _, l := range matchers[m] {
				assert.Contains(t, lines, l+`="`, "query %q matches %s on label %s, which its series lack", q, m, l)
			}
		}
		for _, l := range grouping {
			assert.Contains(t, all, l+`="`, "query %q groups by label %s, which none of its series has", q, l)
		}
	}
	var names []string
	for m := range used {
		names = append(names, m)
	}
	sort.Strings(names)
	assert.Equal(t, []string{
		"dynretry_attempts_total", "dynretry_calls_total", "dynretry_giveups_total",
		"dynretry_retry_delay_seconds_bucket", "dynretry_retry_delay_seconds_count", "dynretry_retry_delay_seconds_sum",
	}, names, "the dashboard covers every exported instrument")
}
