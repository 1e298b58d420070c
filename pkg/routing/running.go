package routing

import (
	"fmt"
	"strings"
)

func (p *planner) setWeight() (*State, error) {
	if err := validateWeight(p.intent.Weight); err != nil {
		return nil, err
	}
	active, err := p.activeState()
	if err != nil {
		return nil, err
	}
	if active == nil {
		return nil, p.noCanaryError()
	}
	if err := p.restoreSubsets(active); err != nil {
		return nil, err
	}
	var first *State
	for _, vs := range p.vss {
		st := p.progressingState(vs)
		if st == nil {
			continue
		}
		if err := splitRoutes(vs, st.Routes, st.StableSubset, st.CanarySubset, int64(p.intent.Weight)); err != nil {
			return nil, err
		}
		st.Weight = p.intent.Weight
		if p.intent.Mirror != nil {
			st.Mirror = *p.intent.Mirror
		}
		if err := p.shapeExtras(vs, st); err != nil {
			return nil, err
		}
		p.setState(vs, st)
		if first == nil {
			first = st
		}
	}
	if first == nil {
		return nil, p.noCanaryError()
	}
	return first, nil
}

// changeMatches replaces the match rules of a running canary; the split of
// the managed routes stays as it is.
func (p *planner) changeMatches() (*State, error) {
	active, err := p.activeState()
	if err != nil {
		return nil, err
	}
	if active == nil {
		return nil, p.noCanaryError()
	}
	var first *State
	for _, vs := range p.vss {
		st := p.progressingState(vs)
		if st == nil {
			continue
		}
		st.Matches = p.intent.Matches
		if err := p.shapeExtras(vs, st); err != nil {
			return nil, err
		}
		p.setState(vs, st)
		if first == nil {
			first = st
		}
	}
	if first == nil {
		return nil, p.noCanaryError()
	}
	return first, nil
}

// restoreSubsets puts back the stable and canary subsets if someone removed
// them while the canary ran, so a new weight never routes to nothing.
func (p *planner) restoreSubsets(active *State) error {
	dr, err := p.destinationRule()
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
	p.warnings = append(p.warnings, fmt.Sprintf("%s had lost subset(s) %s of the running canary; they are added back", dr.ref(), strings.Join(restored, ", ")))
	st := p.progressingState(dr)
	if st == nil {
		copied := *active
		st = &copied
		st.Weight, st.Routes, st.PreStartSpec = 0, nil, nil
	}
	for _, name := range restored {
		st.AddedSubsets = appendUnique(st.AddedSubsets, name)
	}
	p.setState(dr, st)
	return nil
}
