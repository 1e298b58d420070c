package routing

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
)

// Extras are what a canary adds to a VirtualService besides the split of its
// managed routes: routes that send matching requests (headers, cookies, the
// sticky cookie) to the canary, and a mirror of managed traffic.
//
// shapeExtras makes the VirtualService carry exactly the extras st asks for:
// routes it added before are dropped and added again, a mirror it set is
// updated or removed, and nothing it did not add is touched. Added routes
// shift the HTTP routes, so each managed route's index is recorded anew.
func (b *istioBackend) shapeExtras(vs *object, st *State) error {
	managed := make([]map[string]interface{}, len(st.Routes))
	at := make([]int, len(st.Routes)) // index of managed[i] among its kind's routes
	managedHTTP := map[int]bool{}
	finder := newRouteFinder(vs)
	for i, ref := range st.Routes {
		j, route, err := finder.findManaged(ref, st.StableSubset, st.CanarySubset)
		if err != nil {
			return err
		}
		managed[i], at[i] = route, j
		if ref.Kind == "http" {
			managedHTTP[j] = true
		}
	}
	movedTo, err := b.shapeMatchRoutes(vs, st, managedHTTP)
	if err != nil {
		return err
	}
	for i, ref := range st.Routes {
		if ref.Kind != "http" {
			continue
		}
		if err := b.shapeMirror(vs, st, managed[i], ref); err != nil {
			return err
		}
		for _, raw := range destinationsOf(managed[i]) {
			d := asMap(raw)
			clearStickyCookie(d, b.svc.name)
			if st.Sticky && destinationSubset(d) == st.CanarySubset {
				setStickyCookie(d, b.svc.name, st.Canary)
			}
		}
	}
	for i, ref := range st.Routes {
		j := at[i]
		if ref.Kind == "http" {
			if j = movedTo[j]; j < 0 {
				continue
			}
		}
		st.Routes[i] = routeRefFor(ref.Kind, j, managed[i])
	}
	return nil
}

// shapeMatchRoutes puts, before each managed HTTP route (by index), a copy of
// it that sends the requests matching the canary's rules 100% to the canary.
// It returns where each HTTP route went, -1 for the added routes it dropped.
func (b *istioBackend) shapeMatchRoutes(vs *object, st *State, managed map[int]bool) ([]int, error) {
	spec := vs.spec()
	sets := canaryMatchSets(st, b.svc.name)
	out, movedTo, err := placeMatchItems(routesOf(spec, "http"), st, managed, func(route map[string]interface{}, taken map[string]bool) ([]interface{}, error) {
		return b.matchRoutesBefore(vs, route, sets, st, taken)
	})
	if err != nil {
		return nil, err
	}
	if len(out) > 0 || spec["http"] != nil {
		spec["http"] = out
	}
	return movedTo, nil
}

// matchRoutesBefore makes the routes to put before a managed route, one for
// each set of rules (the last one the sticky cookie's when st is sticky),
// named apart from the taken names and recorded as added on st.
func (b *istioBackend) matchRoutesBefore(vs *object, route map[string]interface{}, rules [][]MatchRule, st *State, taken map[string]bool) ([]interface{}, error) {
	var out []interface{}
	for i, set := range rules {
		conditions, err := headerConditions(set)
		if err != nil {
			return nil, err
		}
		extra, err := b.matchRoute(route, conditions, st)
		if err != nil {
			return nil, fmt.Errorf("cannot add the canary's match rules before %s in %s: %v", describeRoute(route), vs.ref(), err)
		}
		nameMatchItem(extra, route, st, st.Sticky && i == len(rules)-1, taken)
		out = append(out, extra)
	}
	return out, nil
}

// matchRoute copies a managed route (its retries, timeouts, rewrites and
// other policies apply to testers too), narrows its match and points it at
// the canary alone.
func (b *istioBackend) matchRoute(route map[string]interface{}, conditions map[string]interface{}, st *State) (map[string]interface{}, error) {
	extra := runtime.DeepCopyJSON(route)
	delete(extra, "mirror")
	delete(extra, "mirrorPercentage")
	delete(extra, "name")
	match, err := withConditions(asSlice(route["match"]), conditions)
	if err != nil {
		return nil, err
	}
	extra["match"] = match
	extra["route"] = soleDestination(route, st.StableSubset, st.CanarySubset, st.CanarySubset, false)
	for _, d := range asSlice(extra["route"]) {
		clearStickyCookie(asMap(d), b.svc.name)
	}
	return extra, nil
}

// shapeMirror sets or removes the mirror of a managed route to the canary.
// A mirror someone else set is never replaced.
func (b *istioBackend) shapeMirror(vs *object, st *State, route map[string]interface{}, ref RouteRef) error {
	existing := asMap(route["mirror"])
	ours := existing != nil && b.svc.isHost(asString(existing["host"]), vs.desired.GetNamespace()) && asString(existing["subset"]) == st.CanarySubset
	if existing != nil && !ours {
		if st.Mirror == 0 {
			return nil
		}
		return intentErrorf("%s of %s already mirrors to %s; kubectl canary will not replace a mirror it did not set: remove it, or run without {Mirror}", ref, vs.ref(), asString(existing["host"]))
	}
	if st.Mirror == 0 {
		delete(route, "mirror")
		delete(route, "mirrorPercentage")
		return nil
	}
	stable, _ := destinationTemplates(route, st.StableSubset, st.CanarySubset, false)
	mirror := asMap(stable["destination"])
	mirror["subset"] = st.CanarySubset
	route["mirror"] = mirror
	route["mirrorPercentage"] = map[string]interface{}{"value": int64(st.Mirror)}
	return nil
}

func describeRoute(route map[string]interface{}) string {
	if name := asString(route["name"]); name != "" {
		return fmt.Sprintf("route %q", name)
	}
	return "a managed route"
}
