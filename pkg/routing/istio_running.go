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
	var first *State
	for _, vs := range b.vss {
		st := b.progressingState(vs)
		if st == nil {
			continue
		}
		if err := splitRoutes(vs, st.Routes, st.StableSubset, st.CanarySubset, int64(b.intent.Weight)); err != nil {
			return nil, err
		}
		st.Weight = b.intent.Weight
		if b.intent.Mirror != nil {
			st.Mirror = *b.intent.Mirror
		}
		if err := b.shapeExtras(vs, st); err != nil {
			return nil, err
		}
		b.setState(vs, st)
		if first == nil {
			first = st
		}
	}
	return first, nil
}

// setCanaryMatches replaces the match routes of each VirtualService that
// carries the canary.
func (b *istioBackend) setCanaryMatches() (*State, error) {
	var first *State
	for _, vs := range b.vss {
		st := b.progressingState(vs)
		if st == nil {
			continue
		}
		st.Matches = b.intent.Matches
		if err := b.shapeExtras(vs, st); err != nil {
			return nil, err
		}
		b.setState(vs, st)
		if first == nil {
			first = st
		}
	}
	return first, nil
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
