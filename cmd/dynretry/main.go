// Command dynretry is the command-line face of the dynretry engine: explain
// a captured provider response, run the demo, serve the simulated provider.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "dynretry:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "dynretry",
		Short:         "Error-aware retries for LLM API calls",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newExplain(), newDemo(), newReport(), newRolloutCmd(), newSim())
	return root
}
