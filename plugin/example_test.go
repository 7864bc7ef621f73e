package plugin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/autopack/dynretry/examples/runner"
	"github.com/autopack/dynretry/hooks"
	"github.com/autopack/dynretry/plugin"
	"github.com/autopack/dynretry/sim"
)

// A runner registers dynretry at startup, builds its SDK clients on the
// transport the plugin wrapped, and runs. Here the runner is the example
// one, against the simulated provider; LOVABLE_DYNAMIC_RETRY_DELAYS=true
// puts every run in the treatment cohort.
func ExampleRegister() {
	ctx := context.Background()
	provider, err := sim.New(sim.Config{})
	if err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "runner")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	host := new(runner.Host)
	p, err := plugin.Register(ctx, host, plugin.Options{
		ConfigPath: filepath.Join("..", "models.yaml"),
		Environ:    []string{"LOVABLE_DYNAMIC_RETRY_DELAYS=true"},
	})
	if err != nil {
		fmt.Println(err) // a bad models.yaml or variable: nothing was installed
		return
	}
	defer p.Shutdown(ctx) // stops watching models.yaml, flushes telemetry

	r := runner.New(host, runner.Options{
		BaseURL: "http://sim.local", APIKey: "sk-example", Dir: dir,
		Transport: sim.Transport{Handler: provider}, // the network, in process
	})
	res := r.Run(ctx, "lovable-p1-core-precision", []runner.Phase{{ID: "phase-1", Steps: []runner.Step{
		{Role: "auditor", Provider: "openai", Request: hooks.Request{System: "You audit.", Prompt: "Check the diff.", MaxTokens: 50}},
		{Role: "doctor", Provider: "gemini", Request: hooks.Request{System: "You diagnose.", Prompt: "Why did it fail?", MaxTokens: 50}},
	}}})
	fmt.Printf("calls %d, failed %d\n", res.Calls, res.Failed)
	fmt.Println("rollout_percent:", p.Settings().RolloutPercent, "enabled:", p.Settings().Enabled)
	// Output:
	// calls 2, failed 0
	// rollout_percent: 10 enabled: true
}
