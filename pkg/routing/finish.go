package routing

import (
	"fmt"
)

// finish promotes or aborts: traffic moves first (routes), then subsets the
// canary added and no route uses any more are pruned.
func (p *planner) finish(phase Phase) (*State, error) {
	states, err := p.states()
	if err != nil {
		return nil, err
	}
	var inProgress, done *State
	for _, st := range states {
		switch {
		case st.Phase == PhaseProgressing && inProgress == nil:
			inProgress = st
		case st.Phase == phase && done == nil:
			done = st
		}
	}
	if inProgress == nil {
		if done != nil {
			// Already promoted (or aborted): nothing to write, and the
			// objects that carry the state are reported unchanged.
			for _, o := range append(append([]*object{}, p.vss...), p.drs...) {
				if st, _ := p.recorded(o); st != nil {
					o.touched = true
				}
			}
			return done, nil
		}
		return nil, p.noCanaryError()
	}

	var first *State
	for _, vs := range p.vss {
		st := p.progressingState(vs)
		if st == nil {
			continue
		}
		if err := p.finishRoutes(vs, st, phase); err != nil {
			return nil, err
		}
		p.setState(vs, st)
		if first == nil {
			first = st
		}
	}
	var specs []objectSpec
	for _, vs := range p.vss {
		specs = append(specs, objectSpec{namespace: vs.desired.GetNamespace(), spec: vs.spec()})
	}
	inUse := referencedSubsets(specs, p.svc)
	for _, dr := range p.drs {
		st := p.progressingState(dr)
		if st == nil {
			continue
		}
		p.pruneSubsets(dr, st, phase, inUse)
		dr.stage = StagePrune
		p.setState(dr, st)
		if first == nil {
			first = st
		}
	}
	return first, nil
}

func (p *planner) finishRoutes(vs *object, st *State, phase Phase) error {
	restored, err := st.preStartSpec()
	if phase == PhaseAborted && err == nil && restored != nil && specHash(vs.liveSpec()) == st.SpecHash {
		vs.desired.Object["spec"] = restored
	} else {
		if phase == PhaseAborted && st.PreStartSpec != nil {
			p.warnings = append(p.warnings, fmt.Sprintf("%s changed since the canary started, so its pre-start spec is not restored; only its managed routes are set back to 100%% %s", vs.ref(), st.Stable))
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
		if err := p.shapeExtras(vs, st); err != nil {
			return err
		}
	}
	closeState(st, phase)
	return nil
}

// pruneSubsets removes what start added to a DestinationRule, never a subset
// a route still uses. An untouched adopted object gets its exact pre-start spec.
func (p *planner) pruneSubsets(dr *object, st *State, phase Phase, inUse map[string]bool) {
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

func closeState(st *State, phase Phase) {
	if phase == PhasePromoted {
		st.PromotedFrom = st.Stable
		st.Stable, st.StableSubset = st.Canary, st.CanarySubset
	}
	if phase == PhasePromoted {
		// The canary is the stable version now; an aborted state keeps its
		// canary so status can say what was rolled back.
		st.Canary, st.CanarySubset = "", ""
	}
	st.Phase = phase
	st.Weight = 0
	st.PreStartSpec = nil
	st.AddedSubsets = nil
	st.Matches, st.Sticky, st.Mirror, st.AddedRoutes = nil, false, 0, nil
}

func (p *planner) noCanaryError() error {
	states, _ := p.states()
	for _, st := range states {
		switch st.Phase {
		case PhasePromoted:
			return fmt.Errorf("no canary in progress for service %s/%s: the last one was promoted (stable is now %s); start a new one with kubectl canary start %s", p.svc.namespace, p.svc.name, st.Stable, p.svc.name)
		case PhaseAborted:
			return fmt.Errorf("no canary in progress for service %s/%s: the last one was aborted (stable is %s); start a new one with kubectl canary start %s", p.svc.namespace, p.svc.name, st.Stable, p.svc.name)
		}
	}
	return fmt.Errorf("no canary in progress for service %s/%s; start one with kubectl canary start %s", p.svc.namespace, p.svc.name, p.svc.name)
}
