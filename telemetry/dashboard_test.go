package telemetry_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autopack/dynretry/internal/promtest"
)

// panelQuery is one query of a dashboard panel.
type panelQuery struct {
	Panel, Expr string
}

// dashboardQueries returns every target's expression in dashboard.json,
// with the panel's title, and the number of panels that are not rows.
func dashboardQueries(t *testing.T) ([]panelQuery, int) {
	t.Helper()
	raw, err := os.ReadFile("dashboard.json")
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Type, Title string
			Targets     []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	var qs []panelQuery
	panels := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		panels++
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, q := range p.Targets {
			qs = append(qs, panelQuery{p.Title, q.Expr})
		}
	}
	return qs, panels
}

// grafana replaces the Grafana variables the dashboard's queries use, as
// Grafana would for a dashboard showing the workload: $cohort is every
// cohort, $__rate_interval and $__range span the workload.
func grafana(expr string, window time.Duration) string {
	r := fmt.Sprintf("%ds", int(math.Ceil(window.Seconds())))
	return strings.NewReplacer("$cohort", "treatment|control", "$__rate_interval", r, "$__range", r).Replace(expr)
}

// TestDashboardOnPrometheus runs a short workload (real SDK clients over
// the simulated provider, both cohorts, 429s, give-ups, an overload) with
// /metrics on loopback, has a real Prometheus scrape it, and checks that
// every query of every panel of dashboard.json parses with Prometheus's
// own parser and returns data — at least one finite value — through
// Prometheus's HTTP API, evaluated at the workload's end over its length.
// It also checks that the dashboard uses every metric the code exports.
func TestDashboardOnPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a workload and Prometheus in real time")
	}
	queries, panels := dashboardQueries(t)
	w := promtest.NewWorkload(t)
	prom := promtest.Start(t, w.MetricsAddr)
	prom.WaitScraped(t, time.Now())
	// Two waves, scraped in between, so that the series the first creates
	// change in the second: a rate needs two samples that differ.
	start := time.Now()
	w.Run(t)
	prom.WaitScraped(t, w.End)
	w.Run(t)
	t.Logf("workload: %d calls in %v", w.Calls, w.End.Sub(start).Round(time.Millisecond))
	prom.WaitScraped(t, w.End)
	at := w.End.Add(promtest.ScrapeInterval)
	window := at.Sub(start) + 2*promtest.ScrapeInterval

	used := map[string]bool{}
	for _, q := range queries {
		expr := grafana(q.Expr, window)
		parsed, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
		require.NoError(t, err, "panel %q: %s", q.Panel, expr)
		parser.Inspect(parsed, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				used[vs.Name] = true
			}
			return nil
		})
		v := prom.Query(t, expr, at)
		finite := slices.ContainsFunc(v, func(s *model.Sample) bool {
			f := float64(s.Value)
			return !math.IsNaN(f) && !math.IsInf(f, 0)
		})
		if !finite && q.Panel == "Error rate reduction" {
			// It has no value while control has no failures in the
			// range: the workload fails in both cohorts in every wave,
			// but Prometheus cannot count the first increment of a
			// series, so a loaded machine that reorders a wave's
			// failures can leave control with none that count.
			controlFailures := prom.Query(t, grafana(`sum(increase(dynretry_calls_total{dynretry_cohort="control",dynretry_outcome="failure"}[$__range]))`, window), at)
			if len(controlFailures) == 0 || controlFailures[0].Value == 0 {
				t.Logf("panel %q has no value: control has no failure Prometheus can count in the range (%v)", q.Panel, controlFailures)
				continue
			}
		}
		assert.True(t, finite, "panel %q returns no data: %s\ngot %v", q.Panel, expr, v)
	}
	t.Logf("%d panels, %d queries, all with data", panels, len(queries))

	// Every metric family of the scrape is on the dashboard.
	resp, err := http.Get("http://" + w.MetricsAddr + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	var families []string
	for _, line := range strings.Split(string(body), "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, kind, _ := strings.Cut(f, " ")
			if name == "target_info" {
				continue
			}
			families = append(families, name)
			covered := used[name]
			if kind == "histogram" {
				covered = used[name+"_bucket"] || used[name+"_sum"] || used[name+"_count"]
			}
			assert.True(t, covered, "the dashboard does not show %s", name)
		}
	}
	assert.Contains(t, families, "gen_ai_client_operation_duration_seconds")
	assert.Contains(t, families, "gen_ai_client_token_usage")
}
