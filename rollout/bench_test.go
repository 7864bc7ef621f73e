package rollout_test

import (
	"testing"

	"github.com/autopack/dynretry/rollout"
)

// BenchmarkAssign measures one evaluation of the flag, as every call makes
// it: through the environment switch, unset, to a PercentProvider at 50%,
// and with the switch set.
func BenchmarkAssign(b *testing.B) {
	for name, env := range map[string]string{"percent": "", "env": "true"} {
		b.Run(name, func(b *testing.B) {
			r, err := rollout.New(b.Context(), rollout.NewPercentProvider(true, 50), func(string) string { return env })
			if err != nil {
				b.Fatal(err)
			}
			defer r.Shutdown(b.Context())
			attrs := map[string]any{"provider": "openai", "model": "gpt-4o-mini"}
			b.ReportAllocs()
			for b.Loop() {
				if a := r.Assign(b.Context(), "fileorg-phase1-20251203-000042", attrs); a.Err != nil {
					b.Fatal(a.Err)
				}
			}
		})
	}
}
