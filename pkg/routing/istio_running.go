package routing

import (
	"fmt"
	"strings"
)

// setCanaryWeight restores the canary's subsets if they went missing, then
// splits each VirtualService's managed routes at the new weight.
func (b *istioBackend) setCanaryWeight(active *State) (*State, error) {
	if err := b.restoreSubsets(active); err != nil {
		return nil, err
	}
	return b.editProgressing(b.vss, func(vs *object, st *State) error {
		if err := splitRoutes(vs, st.Routes, st.StableSubset, st.CanarySubset, int64(b.intent.Weight)); err != nil {
			return err
		}
		st.Weight = b.intent.Weight
		if b.intent.Mirror != nil {
			st.Mirror = *b.intent.Mirror
		}
		return b.shapeExtras(vs, st)
	})
}

// setCanaryMatches replaces the match routes of each VirtualService that
// carries the canary.
func (b *istioBackend) setCanaryMatches() (*State, error) {
	return b.editProgressing(b.vss, func(vs *object, st *State) error {
		st.Matches = b.intent.Matches
		return b.shapeExtras(vs, st)
	})
}

// restoreSubsets puts back the stable and canary subsets if someone removed
// them while the canary ran, so a new weight never routes to nothing.
func (b *istioBackend) restoreSubsets(active *State) error {
	dr, err := b.destinationRule()
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, raw := range subsetsOf(dr.spec()) {
		names[asString(asMap(raw)["name"])] = true
	}
	var restored []string
	for _, s := range []struct{ name, value string }{{active.StableSubset, active.Stable}, {active.CanarySubset, active.Canary}} {
		if names[s.name] {
			continue
		}
		dr.spec()["subsets"] = append(subsetsOf(dr.spec()), map[string]interface{}{
			"name":   s.name,
			"labels": map[string]interface{}{active.VersionLabel: s.value},
		})
		restored = append(restored, s.name)
	}
	if len(restored) == 0 {
		return nil
	}
	b.warnings = append(b.warnings, fmt.Sprintf("%s had lost subset(s) %s of the running canary; they are added back", dr.ref(), strings.Join(restored, ", ")))
	st := b.progressingState(dr)
	if st == nil {
		copied := *active
		st = &copied
		st.Weight, st.Routes, st.PreStartSpec = 0, nil, nil
	}
	for _, name := range restored {
		st.AddedSubsets = appendUnique(st.AddedSubsets, name)
	}
	b.setState(dr, st)
	return nil
}
