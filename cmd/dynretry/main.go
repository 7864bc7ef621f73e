// Command dynretry is the command-line face of the dynretry engine: explain
// a captured provider response, run the demo, serve the engine as a local
// HTTP proxy, serve the simulated provider.
//
// Exit status: 0 on success, 1 when the command ran and failed, 2 for a
// usage error (an unknown command or flag, a wrong number of arguments, a
// bad flag value), which is printed with a hint to run dynretry --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/autopack/dynretry/telemetry"
	"github.com/autopack/dynretry/telemetry/export"
	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// usageHint follows every usage error.
const usageHint = "Run 'dynretry --help' for usage."

// run executes the command line args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "dynretry:", err)
	if errors.As(err, new(*usageError)) {
		fmt.Fprintln(stderr, usageHint)
		return 2
	}
	return 1
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "dynretry",
		Short:         "Error-aware retries for LLM API calls",
		Version:       version(),
		Args:          noArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without a subcommand: the help, on standard output, exit 0.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newExplain(), newDemo(), newProxyCmd(), newReport(), newRolloutCmd(), newSim(), newVersion())
	usageArgs(root)
	return root
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the source revision and the Go version it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "dynretry", version())
			return err
		},
	}
}

// version describes the build from its build information: the module
// version ("(devel)" for a build from a source tree), the VCS revision and
// time when the build recorded them (with "modified" for uncommitted
// changes), and the Go version and platform.
func version() string {
	v, vcs := "(devel)", []string(nil)
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		var rev, at, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			vcs = append(vcs, rev[:min(len(rev), 12)])
		}
		if at != "" {
			vcs = append(vcs, at)
		}
		if modified == "true" {
			vcs = append(vcs, "modified")
		}
	}
	if len(vcs) > 0 {
		v += " (" + strings.Join(vcs, ", ") + ")"
	}
	return v + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// telemetryOptions is where the commands' telemetry goes: the exporters the
// standard OTEL_* variables ask for (export.FromEnv), and every span to
// traces, one JSON object per line, when traces is not nil.
func telemetryOptions(ctx context.Context, service string, traces io.Writer) (telemetry.Options, error) {
	env, err := export.FromEnv(ctx)
	if err != nil {
		return telemetry.Options{}, err
	}
	o := telemetry.Options{ServiceName: service, BatchSpanExporters: env.SpanExporters, MetricReaders: env.MetricReaders}
	if traces != nil {
		file, err := export.TraceFile(traces)
		if err != nil {
			return telemetry.Options{}, err
		}
		o.SpanExporters = append(o.SpanExporters, file)
	}
	return o, nil
}

// A usageError is a command line that could not be run as written; main
// exits 2 for it.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a usage error: a flag value or an argument that the
// command refuses.
func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// usageArgs makes the argument check of cmd and every command below it
// return usage errors.
func usageArgs(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return &usageError{err}
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		usageArgs(c)
	}
}

// noArgs refuses arguments to a command that only has subcommands, naming
// the unknown command.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}
