package hooks

import (
	"context"
	"errors"
)

// Reporter returns the error-reporter decorator: when the reported error is
// a failed LLM call (a *CallError anywhere in its chain), the report's
// Context gains what happened to its attempts, under these keys:
// dynretry.cohort, dynretry.class, dynretry.attempts, dynretry.waited_ms,
// dynretry.status, dynretry.hint_ms and dynretry.hint_source (when a
// provider gave a hint), dynretry.decision and dynretry.reason. The
// caller's Context map is not modified.
func Reporter(next ErrorReporter) ErrorReporter {
	return ReporterFunc(func(ctx context.Context, r ErrorReport) (string, error) {
		var ce *CallError
		if errors.As(r.Err, &ce) {
			s := ce.Summary
			c := make(map[string]any, len(r.Context)+9)
			for k, v := range r.Context {
				c[k] = v
			}
			c["dynretry.cohort"] = string(s.Cohort)
			c["dynretry.class"] = string(s.Class)
			c["dynretry.attempts"] = s.Attempts
			c["dynretry.waited_ms"] = s.Waited.Milliseconds()
			c["dynretry.status"] = s.Status
			if s.HintSource != "" {
				c["dynretry.hint_ms"] = s.Hint.Milliseconds()
				c["dynretry.hint_source"] = string(s.HintSource)
			}
			c["dynretry.decision"] = string(s.Decision)
			c["dynretry.reason"] = s.Reason
			r.Context = c
		}
		return next.Report(ctx, r)
	})
}
