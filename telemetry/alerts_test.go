package telemetry

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// promtool runs Prometheus's promtool (Debian's prometheus package; `make
// test` installs it) with args in this directory.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool is needed: run scripts/deps.sh (as root) or apt-get install prometheus")
	out, err := exec.Command(bin, args...).CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// TestAlertRules checks alerts.yaml with promtool and runs its unit tests
// (alerts_test.yaml), in which each rule fires and stays quiet at least
// once.
func TestAlertRules(t *testing.T) {
	out := promtool(t, "check", "rules", "alerts.yaml")
	assert.Contains(t, out, "SUCCESS: 3 rules found")
	out = promtool(t, "test", "rules", "alerts_test.yaml")
	assert.Contains(t, out, "SUCCESS")
}

// TestAlertRulesCanFail: promtool test rules fails a rule that does not do
// what its test expects, so TestAlertRules's pass means something.
func TestAlertRulesCanFail(t *testing.T) {
	tests, err := os.ReadFile("alerts_test.yaml")
	require.NoError(t, err)
	rules, err := os.ReadFile("alerts.yaml")
	require.NoError(t, err)
	dir := t.TempDir()
	// A tolerance of 10 points instead of 1: the first test's alert must no
	// longer fire as expected.
	broken := strings.Replace(string(rules), ") + 0.01\n", ") + 0.10\n", 1)
	require.NotEqual(t, string(rules), broken)
	require.NoError(t, os.WriteFile(dir+"/alerts.yaml", []byte(broken), 0o644))
	require.NoError(t, os.WriteFile(dir+"/alerts_test.yaml", tests, 0o644))
	bin, err := exec.LookPath("promtool")
	require.NoError(t, err)
	cmd := exec.Command(bin, "test", "rules", "alerts_test.yaml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "%s", out)
	assert.Contains(t, string(out), "DynretryTreatmentErrorRateAboveControl")
}

// TestAlertRulesUseExportedSeries: every series the rule tests feed the
// rules with is one a real scrape of the Prometheus exporter has, with the
// same labels (instance is Prometheus's own).
func TestAlertRulesUseExportedSeries(t *testing.T) {
	tests, err := os.ReadFile("alerts_test.yaml")
	require.NoError(t, err)
	h := newHarness(t, Options{})
	recordCall(h.tel)
	scrape := scrapeMetrics(t, h)

	series := regexp.MustCompile(`series: '([a-z_]+)\{([^}]*)\}'`).FindAllStringSubmatch(string(tests), -1)
	require.NotEmpty(t, series)
	for _, s := range series {
		name, labels := s[1], s[2]
		assert.Contains(t, scrape, "\n"+name+"{", "the rule tests use %s, which the scrape lacks", name)
		for _, kv := range strings.Split(labels, ",") {
			label := strings.TrimSpace(strings.SplitN(kv, "=", 2)[0])
			if label == "instance" {
				continue
			}
			assert.Regexp(t, `(?m)^`+name+`\{[^}]*\b`+label+`="`, scrape, "%s's label %s", name, label)
		}
	}
}
