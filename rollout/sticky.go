package rollout

import (
	"maps"
	"sync"

	"github.com/open-feature/go-sdk/openfeature"
)

// Bounds of the assignments a Rollout keeps.
const (
	maxStickyRuns   = 4096 // runs; when more come, every assignment kept is forgotten
	maxStickyPerRun = 8    // attribute sets per run; more replace the oldest
)

// sticky keeps the assignments a Rollout made, so that a run's later calls
// with the same attributes get the same one without an evaluation, while the
// flag's configuration stays as it was. An assignment kept is given again
// only when nothing that could change it changed since it was made: no
// provider event (gen), the same EnvVar value, and the same PercentProvider
// setting (percent).
type sticky struct {
	mu   sync.Mutex
	gen  uint64 // provider events seen
	runs map[string][]kept
	bump func(openfeature.EventDetails) // the handler of the events, registered on the client
}

// A kept assignment and what it was made with.
type kept struct {
	attrs   map[string]any // a copy
	env     string
	percent *percentState // nil unless the provider is a PercentProvider
	gen     uint64
	a       Assignment
}

// newSticky returns a sticky for a Rollout whose provider is provider, and
// registers its event handlers on client; nil when provider cannot tell of
// a change of its configuration (it is neither a PercentProvider nor an
// openfeature.EventHandler), so every call is evaluated.
func newSticky(provider openfeature.FeatureProvider, client *openfeature.Client) *sticky {
	_, percent := provider.(*PercentProvider)
	_, events := provider.(openfeature.EventHandler)
	if !percent && !events {
		return nil
	}
	s := &sticky{runs: map[string][]kept{}}
	s.bump = func(openfeature.EventDetails) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.gen++
		clear(s.runs)
	}
	for _, t := range stickyEvents {
		client.AddHandler(t, &s.bump)
	}
	return s
}

// stickyEvents are the provider events that forget every assignment kept.
var stickyEvents = []openfeature.EventType{openfeature.ProviderReady, openfeature.ProviderConfigChange, openfeature.ProviderStale, openfeature.ProviderError}

// release removes s's event handlers from client and forgets every
// assignment kept.
func (s *sticky) release(client *openfeature.Client) {
	for _, t := range stickyEvents {
		client.RemoveHandler(t, &s.bump)
	}
	s.bump(openfeature.EventDetails{})
}

// keepable reports whether attrs holds only values of the types an
// evaluation context's attributes usually have, which == compares.
func keepable(attrs map[string]any) bool {
	for _, v := range attrs {
		switch v.(type) {
		case string, bool, int, int64, float64:
		default:
			return false
		}
	}
	return true
}

// get returns the assignment kept for runID and attrs made with env and
// percent, if any, and the generation to store a new one under.
func (s *sticky) get(runID string, attrs map[string]any, env string, percent *percentState) (Assignment, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.runs[runID] {
		if k.gen == s.gen && k.env == env && k.percent == percent && maps.Equal(k.attrs, attrs) {
			return k.a, s.gen, true
		}
	}
	return Assignment{}, s.gen, false
}

// put keeps a, made for runID and attrs with env and percent, unless a
// provider event came since gen (a was perhaps made with the configuration
// before it).
func (s *sticky) put(runID string, attrs map[string]any, env string, percent *percentState, gen uint64, a Assignment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return
	}
	ks, ok := s.runs[runID]
	if !ok && len(s.runs) >= maxStickyRuns {
		clear(s.runs)
	}
	ks = append(ks, kept{attrs: maps.Clone(attrs), env: env, percent: percent, gen: gen, a: a})
	if len(ks) > maxStickyPerRun {
		ks = ks[1:]
	}
	s.runs[runID] = ks
}
