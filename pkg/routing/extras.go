package routing

import (
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/runtime"
)

// Extras are what a canary adds to a VirtualService besides the split of its
// managed routes: routes that send matching requests (headers, cookies, the
// sticky cookie) to the canary, and a mirror of managed traffic.
//
// shapeExtras makes the VirtualService carry exactly the extras st asks for:
// routes it added before are dropped and added again, a mirror it set is
// updated or removed, and nothing it did not add is touched. Managed routes
// are found again by identity afterwards, since added routes shift indices.
func (p *planner) shapeExtras(vs *object, st *State) error {
	spec := vs.spec()
	managed := make([]map[string]interface{}, 0, len(st.Routes))
	finder := newRouteFinder(vs)
	for _, ref := range st.Routes {
		route, err := finder.findManaged(ref, st.StableSubset, st.CanarySubset)
		if err != nil {
			return fmt.Errorf("%v in %s: someone changed it; set its destinations back to the canary's subsets by hand (kubectl edit virtualservice %s -n %s), then run the command again", err, vs.ref(), vs.desired.GetName(), vs.desired.GetNamespace())
		}
		managed = append(managed, route)
	}
	if err := p.shapeMatchRoutes(vs, st, managed); err != nil {
		return err
	}
	for i, ref := range st.Routes {
		if ref.Kind != "http" {
			continue
		}
		if err := p.shapeMirror(vs, st, managed[i], ref); err != nil {
			return err
		}
		for _, raw := range destinationsOf(managed[i]) {
			d := asMap(raw)
			clearStickyCookie(d, p.svc.name)
			if st.Sticky && destinationSubset(d) == st.CanarySubset {
				setStickyCookie(d, p.svc.name, st.Canary)
			}
		}
	}
	// Indices may have shifted: record where each managed route is now,
	// indexing each kind's routes once (a VirtualService may have hundreds).
	where := map[string]map[uintptr]int{}
	for i, ref := range st.Routes {
		index, ok := where[ref.Kind]
		if !ok {
			index = map[uintptr]int{}
			for j, raw := range routesOf(spec, ref.Kind) {
				index[reflect.ValueOf(raw).Pointer()] = j
			}
			where[ref.Kind] = index
		}
		if j, ok := index[reflect.ValueOf(managed[i]).Pointer()]; ok {
			st.Routes[i] = routeRefFor(ref.Kind, j, managed[i])
		}
	}
	return nil
}

// shapeMatchRoutes puts, before each managed HTTP route, a copy of it that
// sends the requests matching the canary's rules 100% to the canary.
func (p *planner) shapeMatchRoutes(vs *object, st *State, managed []map[string]interface{}) error {
	spec := vs.spec()
	added := map[string]bool{}
	for _, name := range st.AddedRoutes {
		added[name] = true
	}
	st.AddedRoutes = nil
	var rules [][]MatchRule
	if len(st.Matches) > 0 {
		rules = append(rules, st.Matches)
	}
	if st.Sticky {
		rules = append(rules, []MatchRule{{Cookie: true, Name: StickyCookie(p.svc.name), Op: "exact", Value: st.Canary}})
	}
	isManaged := make(map[uintptr]bool, len(managed))
	for _, m := range managed {
		isManaged[reflect.ValueOf(m).Pointer()] = true
	}
	taken := make(map[string]bool, len(routesOf(spec, "http")))
	for _, raw := range routesOf(spec, "http") {
		if name := asString(asMap(raw)["name"]); !added[name] {
			taken[name] = true
		}
	}
	var out []interface{}
	for _, raw := range routesOf(spec, "http") {
		route := asMap(raw)
		if added[asString(route["name"])] {
			continue
		}
		if isManaged[reflect.ValueOf(route).Pointer()] {
			for i, set := range rules {
				conditions, err := headerConditions(set)
				if err != nil {
					return err
				}
				extra, err := p.matchRoute(route, conditions, st)
				if err != nil {
					return fmt.Errorf("cannot add the canary's match rules before %s in %s: %v", describeRoute(route), vs.ref(), err)
				}
				base := "canary-match"
				if st.Sticky && i == len(rules)-1 {
					base = "canary-sticky"
				}
				if name := asString(route["name"]); name != "" {
					base += "-" + name
				}
				name := base
				for n := 2; taken[name]; n++ {
					name = fmt.Sprintf("%s-%d", base, n)
				}
				taken[name] = true
				extra["name"] = name
				st.AddedRoutes = append(st.AddedRoutes, name)
				out = append(out, extra)
			}
		}
		out = append(out, route)
	}
	if len(out) > 0 || spec["http"] != nil {
		spec["http"] = out
	}
	return nil
}

// matchRoute copies a managed route (its retries, timeouts, rewrites and
// other policies apply to testers too), narrows its match and points it at
// the canary alone.
func (p *planner) matchRoute(route map[string]interface{}, conditions map[string]interface{}, st *State) (map[string]interface{}, error) {
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
		clearStickyCookie(asMap(d), p.svc.name)
	}
	return extra, nil
}

// shapeMirror sets or removes the mirror of a managed route to the canary.
// A mirror someone else set is never replaced.
func (p *planner) shapeMirror(vs *object, st *State, route map[string]interface{}, ref RouteRef) error {
	existing := asMap(route["mirror"])
	ours := existing != nil && p.svc.isHost(asString(existing["host"]), vs.desired.GetNamespace()) && asString(existing["subset"]) == st.CanarySubset
	if existing != nil && !ours {
		if st.Mirror == 0 {
			return nil
		}
		return fmt.Errorf("%s of %s already mirrors to %s; kubectl canary will not replace a mirror it did not set: remove it, or run without --mirror", ref, vs.ref(), asString(existing["host"]))
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
