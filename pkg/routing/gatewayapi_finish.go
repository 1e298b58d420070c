package routing

import (
	"fmt"
)

// endCanary moves traffic first (routes), then deletes the per-version
// Services the canary created that no route names any more: the writes
// come in stage order, so no route ever names a missing Service.
func (b *gatewayAPIBackend) endCanary(phase Phase) (*State, error) {
	var first *State
	var added []string
	for _, route := range b.routes {
		st := b.progressingState(route)
		if st == nil {
			continue
		}
		for _, name := range st.AddedSubsets {
			added = appendUnique(added, name)
		}
		if err := b.finishRules(route, st, phase); err != nil {
			return nil, err
		}
		b.setState(route, st)
		if first == nil {
			first = st
		}
	}
	b.pruneServices(added)
	return first, nil
}

// finishRules gives an adopted route that nobody changed since the plugin
// last wrote it its pre-start spec back on abort; otherwise it sends its
// managed rules' traffic to the version phase keeps and drops the extras.
func (b *gatewayAPIBackend) finishRules(route *object, st *State, phase Phase) error {
	restored, err := st.preStartSpec()
	if phase == PhaseAborted && err == nil && restored != nil && revertedByOthers(route, restored, st) {
		b.warnings = append(b.warnings, fmt.Sprintf("%s was set back to its pre-start spec by someone else while the canary ran; it keeps that spec, whose managed rules send all their traffic to stable %s", route.ref(), st.StableSubset))
		route.desired.Object["spec"] = restored
		b.stopPreStartCanary(route, st)
		closeState(st, phase)
		return nil
	}
	if phase == PhaseAborted && err == nil && restored != nil && specHash(route.liveSpec()) == st.SpecHash {
		route.desired.Object["spec"] = restored
		b.stopPreStartCanary(route, st)
		closeState(st, phase)
		return nil
	}
	if phase == PhaseAborted && st.PreStartSpec != nil {
		b.warnings = append(b.warnings, fmt.Sprintf("%s changed since the canary started, so its pre-start spec is not restored; only its managed rules are set back to 100%% %s", route.ref(), st.StableSubset))
	}
	t := targetsOf(st)
	target := t.stable
	if phase == PhasePromoted {
		target = t.canary
	}
	finder := newRouteFinder(route)
	for _, ref := range st.Routes {
		_, rule, err := b.findManagedRule(finder, ref, t)
		if err != nil {
			return err
		}
		rule["backendRefs"] = b.soleBackend(route, rule, t, target, true)
	}
	st.Matches, st.Sticky, st.Mirror = nil, false, 0
	if err := b.shapeExtras(route, st); err != nil {
		return err
	}
	closeState(st, phase)
	return nil
}
