package routing

import (
	"fmt"
)

// endCanary moves traffic first (routes), then prunes the subsets the
// canary added and no route uses any more.
func (b *istioBackend) endCanary(phase Phase) (*State, error) {
	var first *State
	for _, vs := range b.vss {
		st := b.progressingState(vs)
		if st == nil {
			continue
		}
		if err := b.finishRoutes(vs, st, phase); err != nil {
			return nil, err
		}
		b.setState(vs, st)
		if first == nil {
			first = st
		}
	}
	var specs []objectSpec
	for _, vs := range b.vss {
		specs = append(specs, objectSpec{namespace: vs.desired.GetNamespace(), spec: vs.spec()})
	}
	inUse := referencedSubsets(specs, b.svc)
	for _, dr := range b.drs {
		st := b.progressingState(dr)
		if st == nil {
			continue
		}
		b.pruneSubsets(dr, st, phase, inUse)
		dr.stage = StagePrune
		b.setState(dr, st)
		if first == nil {
			first = st
		}
	}
	return first, nil
}

func (b *istioBackend) finishRoutes(vs *object, st *State, phase Phase) error {
	restored, err := st.preStartSpec()
	if phase == PhaseAborted && err == nil && restored != nil && specHash(vs.liveSpec()) == st.SpecHash {
		vs.desired.Object["spec"] = restored
	} else {
		if phase == PhaseAborted && st.PreStartSpec != nil {
			b.warnings = append(b.warnings, fmt.Sprintf("%s changed since the canary started, so its pre-start spec is not restored; only its managed routes are set back to 100%% %s", vs.ref(), st.Stable))
		}
		target := st.StableSubset
		if phase == PhasePromoted {
			target = st.CanarySubset
		}
		finder := newRouteFinder(vs)
		for _, ref := range st.Routes {
			_, route, err := finder.findManaged(ref, st.StableSubset, st.CanarySubset)
			if err != nil {
				return err
			}
			route["route"] = soleDestination(route, st.StableSubset, st.CanarySubset, target, true)
		}
		st.Matches, st.Sticky, st.Mirror = nil, false, 0
		if err := b.shapeExtras(vs, st); err != nil {
			return err
		}
	}
	closeState(st, phase)
	return nil
}

// pruneSubsets removes what start added to a DestinationRule, never a subset
// a route still uses. An untouched adopted object gets its exact pre-start spec.
func (b *istioBackend) pruneSubsets(dr *object, st *State, phase Phase, inUse map[string]bool) {
	restored, err := st.preStartSpec()
	if phase == PhaseAborted && err == nil && restored != nil && specHash(dr.liveSpec()) == st.SpecHash {
		keep := map[string]bool{}
		for _, raw := range subsetsOf(restored) {
			keep[asString(asMap(raw)["name"])] = true
		}
		safe := true
		for _, raw := range subsetsOf(dr.spec()) {
			name := asString(asMap(raw)["name"])
			if !keep[name] && inUse[name] {
				safe = false
			}
		}
		if safe {
			dr.desired.Object["spec"] = restored
			closeState(st, phase)
			return
		}
	}
	prune := map[string]bool{}
	for _, name := range st.AddedSubsets {
		if !inUse[name] {
			prune[name] = true
		}
	}
	removeSubsets(dr.spec(), prune)
	closeState(st, phase)
}
