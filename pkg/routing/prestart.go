package routing

import (
	"fmt"
)

// PreStartShare is traffic a managed route already gave the canary before
// start: abort sends it to stable with the rest (the canary receives
// nothing through the managed routes afterwards), and says so, with how to
// return to that split.
type PreStartShare struct {
	// Object is the routing object, "VirtualService NS/NAME"; Route names
	// the managed route or rule in it.
	Object, Route string
	// Percent is the canary's share of the route's traffic before start.
	Percent int64
}

func (s PreStartShare) String() string {
	return fmt.Sprintf("%s (%s) gave the canary %d%% of its traffic; abort sent that share to stable too", s.Object, s.Route, s.Percent)
}

// canaryShare is what a route of a restored pre-start spec gives the
// canary: the weights of its destinations to the canary, out of all.
type canaryShare struct{ canary, total int64 }

func (c canaryShare) record(p *planner, o *object, route string) {
	if c.canary == 0 {
		return
	}
	share := PreStartShare{Object: o.ref(), Route: route}
	if c.total > 0 {
		share.Percent = (c.canary*100 + c.total/2) / c.total
	}
	p.preStartShares = append(p.preStartShares, share)
}

// stopPreStartCanary edits the managed routes of vs, whose spec is the
// pre-start one abort restores, so that they send the canary nothing:
// a destination to the canary's subset gets weight 0 and its weight goes
// to the stable one. Everything else of the spec stays as it was, a
// destination to the Service without a subset too (the route the user
// had, before and after).
func (b *istioBackend) stopPreStartCanary(vs *object, st *State) {
	for _, ref := range st.Routes {
		i, ok := preStartIndex(vs, ref, st, func(spec map[string]interface{}) []interface{} { return routesOf(spec, ref.Kind) })
		if !ok {
			continue
		}
		route := asMap(routesOf(vs.spec(), ref.Kind)[i])
		dests := destinationsOf(route)
		var share canaryShare
		var stable, firstCanary map[string]interface{}
		for _, raw := range dests {
			d := asMap(raw)
			if !b.svc.isHost(destinationHost(d), vs.desired.GetNamespace()) {
				continue
			}
			w := destinationWeight(d, len(dests))
			share.total += w
			switch destinationSubset(d) {
			case st.CanarySubset:
				share.canary += w
				if firstCanary == nil {
					firstCanary = d
				}
			case st.StableSubset:
				if stable == nil {
					stable = d
				}
			}
		}
		if share.canary > 0 {
			for _, raw := range dests {
				if d := asMap(raw); destinationSubset(d) == st.CanarySubset && b.svc.isHost(destinationHost(d), vs.desired.GetNamespace()) {
					d["weight"] = int64(0)
				}
			}
		}
		switch {
		case share.canary == 0:
		case stable != nil:
			w, _ := asInt(stable["weight"])
			stable["weight"] = w + share.canary
		default:
			// No destination names the stable subset (the rest goes to the
			// Service without one): the canary's becomes stable's.
			setSubset(firstCanary, st.StableSubset)
			firstCanary["weight"] = share.canary
		}
		share.record(b.planner, vs, ref.String())
	}
}

// stopPreStartCanary is the Gateway API's: in the managed rules of the
// restored pre-start spec, a backendRef to the canary's Service gets weight
// 0 and its weight goes to the stable one.
func (b *gatewayAPIBackend) stopPreStartCanary(route *object, st *State) {
	t := targetsOf(st)
	for _, ref := range st.Routes {
		i, ok := preStartIndex(route, ref, st, rulesOf)
		if !ok {
			continue
		}
		rule := asMap(rulesOf(route.spec())[i])
		var share canaryShare
		var stable, firstCanary map[string]interface{}
		for _, raw := range backendRefsOf(rule) {
			backend := asMap(raw)
			name, ok := b.namedService(route, backend)
			if !ok {
				continue
			}
			w := backendWeight(backend)
			share.total += w
			switch name {
			case t.canary:
				share.canary += w
				if w > 0 {
					backend["weight"] = int64(0)
				}
				if firstCanary == nil {
					firstCanary = backend
				}
			case t.stable:
				if stable == nil {
					stable = backend
				}
			}
		}
		switch {
		case share.canary == 0:
		case stable != nil:
			stable["weight"] = backendWeight(stable) + share.canary
		default:
			// No backendRef names the stable version's Service (the rest
			// goes to the Service itself): the canary's becomes stable's.
			firstCanary["name"] = t.stable
			firstCanary["weight"] = share.canary
		}
		share.record(b.planner, route, describeRule(ref))
	}
}

// preStartIndex is the index in o's restored pre-start spec of the managed
// route ref finds in the live spec. The live spec is the pre-start one
// plus the routes start added (abort restores only an object nobody else
// changed), so the route has as many others before it, but for those.
func preStartIndex(o *object, ref RouteRef, st *State, list func(map[string]interface{}) []interface{}) (int, bool) {
	live := &object{live: o.live, desired: o.live}
	i, err := newRouteFinder(live).index(ref)
	if err != nil {
		return 0, false
	}
	added := map[string]bool{}
	for _, name := range st.AddedRoutes {
		added[name] = true
	}
	routes := list(live.liveSpec())
	if i >= len(routes) {
		return 0, false
	}
	at := 0
	for _, raw := range routes[:i] {
		if name := asString(asMap(raw)["name"]); name == "" || !added[name] {
			at++
		}
	}
	return at, at < len(list(o.spec()))
}
