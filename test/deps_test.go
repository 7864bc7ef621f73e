package test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deps lists the packages a program importing pkg compiles, outside the
// standard library, with go list -deps.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.Fields(string(out))
}

// A library user compiles only what it imports: the engine alone needs
// nothing outside the standard library, and the plugin (with hooks,
// config, rollout and telemetry) no SDK, no gRPC, no exporter and no Redis
// client: those come with examples/runner, telemetry/export and
// plugin/coordination, which a runner imports when it wants them.
func TestLibraryDependencies(t *testing.T) {
	assert.Equal(t, []string{"github.com/autopack/dynretry/retry"}, deps(t, "github.com/autopack/dynretry/retry"))

	heavy := []string{
		"github.com/openai/openai-go", "github.com/anthropics/anthropic-sdk-go", "google.golang.org/genai",
		"google.golang.org/grpc", "go.opentelemetry.io/otel/exporters/", "go.opentelemetry.io/contrib/exporters/",
		"github.com/prometheus/", "github.com/open-feature/go-sdk-contrib/", "github.com/redis/",
	}
	for _, pkg := range []string{"plugin", "hooks", "config", "rollout", "telemetry", "proxy"} {
		got := deps(t, "github.com/autopack/dynretry/"+pkg)
		require.NotEmpty(t, got)
		for _, d := range got {
			for _, h := range heavy {
				assert.False(t, strings.HasPrefix(d, h), "%s compiles %s", pkg, d)
			}
		}
	}

	// And the exporters are where the runner finds them.
	assert.Contains(t, deps(t, "github.com/autopack/dynretry/telemetry/export"), "go.opentelemetry.io/contrib/exporters/autoexport")

	// The Redis store needs the engine and the Redis client only; the
	// plugin reaches it through plugin/coordination.
	for _, d := range deps(t, "github.com/autopack/dynretry/retry/redisstore") {
		ok := d == "github.com/autopack/dynretry/retry" || d == "github.com/autopack/dynretry/retry/redisstore" ||
			strings.HasPrefix(d, "github.com/redis/go-redis/") || d == "github.com/cespare/xxhash/v2" || d == "github.com/dgryski/go-rendezvous" ||
			d == "go.uber.org/atomic" || d == "golang.org/x/sys/cpu"
		assert.True(t, ok, "retry/redisstore compiles %s", d)
	}
	assert.Contains(t, deps(t, "github.com/autopack/dynretry/plugin/coordination"), "github.com/redis/go-redis/v9")
}
