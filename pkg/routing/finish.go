package routing

import (
	"fmt"
)

// finish promotes or aborts the canary in progress; promoting or aborting
// again is reported as done.
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
			for _, o := range p.backend.objects() {
				if st, _ := p.recorded(o); st != nil {
					o.touched = true
				}
			}
			return done, nil
		}
		return nil, p.noCanaryError()
	}

	return p.backend.endCanary(phase)
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
