package routing

import (
	"strings"
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
			return Errorf("no canary in progress for service %s/%s: the last one was promoted (stable is now %s); start a new one with kubectl canary start %s{Target}", p.svc.namespace, p.svc.name, st.Stable, p.svc.name)
		case PhaseAborted:
			return Errorf("no canary in progress for service %s/%s: the last one was aborted (stable is %s); start a new one with kubectl canary start %s{Target}", p.svc.namespace, p.svc.name, st.Stable, p.svc.name)
		}
	}
	if err := p.orphanedVersionServicesError(); err != nil {
		return err
	}
	return Errorf("no canary in progress for service %s/%s; start one with kubectl canary start %s{Target}", p.svc.namespace, p.svc.name, p.svc.name)
}

// orphanedVersionServicesError explains a Gateway API canary whose routes
// were all deleted: only the per-version Services start created are left,
// and they do not record which version is stable, so nothing can route to
// it; meanwhile the Service balances over every version's pods.
func (p *planner) orphanedVersionServicesError() error {
	svc := p.snap.Service
	var names, versions []string
	for _, s := range p.snap.Services {
		if s.Name == svc.Name || (s.Namespace != "" && s.Namespace != svc.Namespace) || s.Labels[ManagedByLabel] != ManagedByValue {
			continue
		}
		var extra []string
		for k, v := range s.Spec.Selector {
			if want, ok := svc.Spec.Selector[k]; !ok {
				extra = append(extra, k+"="+v)
			} else if want != v {
				extra = nil
				break
			}
		}
		if len(extra) == 1 && len(s.Spec.Selector) == len(svc.Spec.Selector)+1 {
			names = append(names, s.Name)
			versions = append(versions, extra[0])
		}
	}
	if len(names) == 0 {
		return nil
	}
	return intentErrorf("no routing object records a canary of service %s/%s, but Services %s (%s), which kubectl canary created for one, are still there: the routes that carried the canary were deleted, so the Service balances its traffic over the pods of every version, the canary's too. Nothing records which version is stable, so nothing was written; to send all traffic to it, run kubectl canary start %s{Target} with {Stable} naming it and weight 0, then kubectl canary abort %s{Target}",
		p.svc.namespace, p.svc.name, strings.Join(names, ", "), strings.Join(versions, ", "), p.svc.name, p.svc.name)
}
