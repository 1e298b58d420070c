package routing

import (
	"fmt"
	"strings"
)

// endCanary moves traffic first (routes), then prunes the subsets the
// canary added and no route uses any more.
func (b *istioBackend) endCanary(phase Phase) (*State, error) {
	recorded, err := b.activeState()
	if err != nil {
		return nil, err
	}
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
	var stableDR *object
	if phase == PhaseAborted {
		if stableDR, err = b.routeLostTrafficToStable(recorded); err != nil {
			return nil, err
		}
	}
	var specs []objectSpec
	for _, vs := range b.vss {
		specs = append(specs, objectSpec{namespace: vs.desired.GetNamespace(), spec: vs.spec()})
		if stableDR != nil && vs.live != nil {
			// That DestinationRule is written before the routes: a subset
			// the live routes still name must stay until they are written.
			specs = append(specs, objectSpec{namespace: vs.live.GetNamespace(), spec: vs.liveSpec()})
		}
	}
	inUse := referencedSubsets(specs, b.svc)
	for _, dr := range b.drs {
		st := b.progressingState(dr)
		if st == nil {
			continue
		}
		b.pruneSubsets(dr, st, phase, inUse)
		dr.stage = StagePrune
		if dr == stableDR {
			dr.stage = StageSubsets
		}
		b.setState(dr, st)
		if first == nil {
			first = st
		}
	}
	return first, nil
}

// routeLostTrafficToStable makes abort's promise hold where someone deleted
// routing objects of the canary: with no VirtualService holding the
// Service's host for in-mesh traffic, the Service balances its calls over
// every version's pods, the canary's too, so one is created that sends all
// of it to stable; and the stable subset every route now names is put back
// where it went missing (with the DestinationRule, if that is gone too). It
// returns the DestinationRule given the stable subset back, which is then
// written before the routes.
func (b *istioBackend) routeLostTrafficToStable(recorded *State) (*object, error) {
	if recorded == nil {
		return nil, nil
	}
	b.warnReplacedRoutesToCanary(recorded)
	if !b.meshRouted() {
		if err := b.recreateVirtualService(recorded); err != nil {
			return nil, fmt.Errorf("cannot send the traffic of service %s/%s back to stable %s=%s: no VirtualService routes it any more (the canary's was deleted) and %v; nothing was written", b.svc.namespace, b.svc.name, recorded.VersionLabel, recorded.Stable, err)
		}
	}
	dr, err := b.destinationRule()
	if err != nil {
		return nil, fmt.Errorf("cannot send the traffic of service %s/%s back to stable %s=%s: %v; nothing was written", b.svc.namespace, b.svc.name, recorded.VersionLabel, recorded.Stable, err)
	}
	for _, raw := range subsetsOf(dr.spec()) {
		if asString(asMap(raw)["name"]) == recorded.StableSubset {
			return nil, nil
		}
	}
	dr.spec()["subsets"] = append(subsetsOf(dr.spec()), map[string]interface{}{
		"name":   recorded.StableSubset,
		"labels": map[string]interface{}{recorded.VersionLabel: recorded.Stable},
	})
	if dr.live == nil {
		// Deleted with the canary recorded on it: created again, as start
		// would create it, and recorded as aborted.
		st := *recorded
		st.Routes, st.OtherNamespaces, st.Created = nil, nil, true
		closeState(&st, PhaseAborted)
		b.setState(dr, &st)
		b.warnings = append(b.warnings, fmt.Sprintf("%s, which named the versions of the canary, is gone; it is created again with subset %s of stable %s=%s, which the routes send all traffic to", dr.ref(), recorded.StableSubset, recorded.VersionLabel, recorded.Stable))
		return dr, nil
	}
	b.warnings = append(b.warnings, fmt.Sprintf("%s had lost subset %s of stable %s=%s, which the routes send all traffic to; it is added back", dr.ref(), recorded.StableSubset, recorded.VersionLabel, recorded.Stable))
	if b.progressingState(dr) == nil {
		// Only a DestinationRule that records the canary is written by
		// endCanary's loop; this one is given the subset alone.
		dr.touched = true
		return nil, nil
	}
	return dr, nil
}

// recreateVirtualService creates the Service's VirtualService again, as
// start creates it, with every route sending all traffic to stable, and
// records the canary on it as aborted.
func (b *istioBackend) recreateVirtualService(recorded *State) error {
	vs, err := b.newVirtualService()
	if err != nil {
		return err
	}
	st := *recorded
	st.Routes, st.OtherNamespaces, st.Created = nil, nil, true
	for _, kind := range routeKinds {
		for i, raw := range routesOf(vs.spec(), kind) {
			route := asMap(raw)
			route["route"] = soleDestination(route, st.StableSubset, st.CanarySubset, st.StableSubset, true)
			st.Routes = append(st.Routes, routeRefFor(kind, i, route))
		}
	}
	closeState(&st, PhaseAborted)
	b.setState(vs, &st)
	b.warnings = append(b.warnings, fmt.Sprintf("no VirtualService routes service %s/%s any more (the canary's was deleted), so the Service would balance calls over every version's pods, the canary's too; %s is created again, sending all of them to stable subset %s (%s=%s)", b.svc.namespace, b.svc.name, vs.ref(), st.StableSubset, st.VersionLabel, st.Stable))
	return nil
}

func (b *istioBackend) finishRoutes(vs *object, st *State, phase Phase) error {
	restored, err := st.preStartSpec()
	if phase == PhaseAborted && err == nil && restored != nil && revertedByOthers(vs, restored, st) {
		// Someone applied the pre-start spec again (kubectl apply keeps
		// the plugin's annotations): it is what abort restores anyway.
		b.warnings = append(b.warnings, fmt.Sprintf("%s was set back to its pre-start spec by someone else while the canary ran; it keeps that spec, whose managed routes send all their traffic to stable subset %s", vs.ref(), st.StableSubset))
		vs.desired.Object["spec"] = restored
		b.stopPreStartCanary(vs, st)
	} else if phase == PhaseAborted && err == nil && restored != nil && specHash(vs.liveSpec()) == st.SpecHash {
		vs.desired.Object["spec"] = restored
		b.stopPreStartCanary(vs, st)
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

// revertedByOthers says whether an adopted object's live spec is its
// pre-start spec again, written by someone else since the plugin last
// wrote it.
func revertedByOthers(o *object, preStart map[string]interface{}, st *State) bool {
	live := o.liveSpec()
	return specHash(live) != st.SpecHash && sameObject(live, preStart)
}

// warnReplacedRoutesToCanary says which routes still send traffic to the
// canary's subset in VirtualServices that record no canary: someone
// replaced them (kubectl replace, a server-side apply) after start, so
// abort cannot tell the routes it manages there and leaves them as they are.
func (b *istioBackend) warnReplacedRoutesToCanary(recorded *State) {
	for _, vs := range b.vss {
		if vs.live == nil {
			continue
		}
		if st, _ := b.recorded(vs); st != nil {
			continue
		}
		var routes []string
		for _, kind := range routeKinds {
			for i, raw := range routesOf(vs.spec(), kind) {
				route := asMap(raw)
				dests := destinationsOf(route)
				for _, d := range dests {
					d := asMap(d)
					if destinationSubset(d) == recorded.CanarySubset && b.svc.isHost(destinationHost(d), vs.desired.GetNamespace()) && sendsTraffic(d, len(dests)) {
						routes = append(routes, routeRefFor(kind, i, route).String())
						break
					}
				}
			}
		}
		if len(routes) > 0 {
			b.warnings = append(b.warnings, fmt.Sprintf("%s records no canary (someone replaced it since start) and its %s still send traffic to canary subset %s (%s=%s); abort leaves them as they are: point them at stable subset %s by hand (kubectl edit virtualservice %s -n %s)", vs.ref(), strings.Join(routes, ", "), recorded.CanarySubset, recorded.VersionLabel, recorded.Canary, recorded.StableSubset, vs.desired.GetName(), vs.desired.GetNamespace()))
		}
	}
}
