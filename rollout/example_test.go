package rollout_test

import (
	"context"
	"fmt"

	"github.com/autopack/dynretry/rollout"
)

func ExampleNew() {
	ctx := context.Background()
	env := map[string]string{} // stands in for os.Getenv
	stage := rollout.NewPercentProvider(true, 10)
	r, err := rollout.New(ctx, stage, func(name string) string { return env[name] })
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Shutdown(ctx)

	show := func(step, run string) {
		a := r.Assign(ctx, run, nil)
		fmt.Printf("%-12s %-16s bucket %5.2f  %-9s %-7s %-15s %s\n", step, run, rollout.Bucket(run), a.Cohort, a.Variant, a.Reason, a.Provider)
	}
	show("10%", "lovable-p33-core")
	show("10%", "lovable-p5-core")
	stage.Set(true, 50) // a week later
	show("50%", "lovable-p5-core")
	env[rollout.EnvVar] = "false" // kill switch
	show("env=false", "lovable-p5-core")
	env[rollout.EnvVar] = ""
	stage.Set(false, 50) // the way back to 0%, without touching the environment
	show("disabled", "lovable-p33-core")
	// Output:
	// 10%          lovable-p33-core bucket  1.52  treatment on      TARGETING_MATCH dynretry-percent
	// 10%          lovable-p5-core  bucket 12.68  control   off     TARGETING_MATCH dynretry-percent
	// 50%          lovable-p5-core  bucket 12.68  treatment on      TARGETING_MATCH dynretry-percent
	// env=false    lovable-p5-core  bucket 12.68  control   env-off STATIC          dynretry-env
	// disabled     lovable-p33-core bucket  1.52  control   off     DISABLED        dynretry-percent
}
