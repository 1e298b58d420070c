package routing

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// routeKinds are the VirtualService route lists whose destinations the plugin
// may split. All three share the shape {match?, route: [{destination, weight}]}.
var routeKinds = []string{"http", "tls", "tcp"}

func routesOf(spec map[string]interface{}, kind string) []interface{} {
	return asSlice(spec[kind])
}

func destinationsOf(route map[string]interface{}) []interface{} {
	return asSlice(route["route"])
}

func destinationHost(d map[string]interface{}) string {
	return asString(asMap(d["destination"])["host"])
}

func destinationSubset(d map[string]interface{}) string {
	return asString(asMap(d["destination"])["subset"])
}

// destinationWeight is the share a destination receives. Istio sends all
// traffic to a lone destination whatever its weight says.
func destinationWeight(d map[string]interface{}, siblings int) int64 {
	if siblings == 1 {
		return 100
	}
	w, _ := asInt(d["weight"])
	return w
}

// sendsTraffic reports whether a destination gets any traffic: a missing
// weight among several destinations is read as "some", not as zero, so a
// hand-written route is never mistaken for an empty one.
func sendsTraffic(d map[string]interface{}, siblings int) bool {
	if siblings == 1 {
		return true
	}
	w, ok := asInt(d["weight"])
	return !ok || w > 0
}

// RoutesToService reports whether a VirtualService, wherever it lives, sends
// any traffic to the Service.
func RoutesToService(vs *unstructured.Unstructured, service, namespace, clusterDomain string) bool {
	svc := serviceRef{name: service, namespace: namespace, clusterDomain: clusterDomain}
	return routesToService(asMap(vs.Object["spec"]), svc, vs.GetNamespace())
}

// routesToService reports whether any route of spec sends traffic to the Service.
func routesToService(spec map[string]interface{}, svc serviceRef, objectNamespace string) bool {
	for _, kind := range routeKinds {
		for _, r := range routesOf(spec, kind) {
			for _, d := range destinationsOf(asMap(r)) {
				if svc.isHost(destinationHost(asMap(d)), objectNamespace) {
					return true
				}
			}
		}
	}
	return false
}

// isSplittable is the SPEC's definition of a route start may manage: it sends
// traffic to the stable subset or to the Service without a subset, and to
// nothing outside the Service's stable and canary subsets. A route pinned to
// any other subset, the canary's included, is a deliberate rule.
func isSplittable(route map[string]interface{}, svc serviceRef, objectNamespace, stableSubset, canarySubset string) bool {
	dests := destinationsOf(route)
	if len(dests) == 0 {
		return false
	}
	toStable := false
	for _, raw := range dests {
		d := asMap(raw)
		if isIdleDestination(d, len(dests)) && svc.isHost(destinationHost(d), objectNamespace) && !isCanarySubset(destinationSubset(d), stableSubset, canarySubset) {
			// Another version at weight 0 gets nothing: the route does
			// not mix it in, and the split keeps it as it is.
			continue
		}
		if d == nil || !svc.isHost(destinationHost(d), objectNamespace) {
			return false
		}
		switch destinationSubset(d) {
		case "", stableSubset:
			if sendsTraffic(d, len(dests)) {
				toStable = true
			}
		case canarySubset:
		default:
			return false
		}
	}
	return toStable
}

// isIdleDestination reports whether a destination among siblings has an
// explicit weight of 0 (a lone one takes everything whatever it says).
func isIdleDestination(d map[string]interface{}, siblings int) bool {
	w, ok := asInt(d["weight"])
	return d != nil && siblings > 1 && ok && w == 0
}

func isCanarySubset(subset, stableSubset, canarySubset string) bool {
	return subset == "" || subset == stableSubset || subset == canarySubset
}

// idleDestinations are a managed route's destinations at weight 0 to
// other subsets of the Service than the stable and canary ones: a split or
// a finish keeps them, after the canary's. (A managed route has no
// destination outside the Service.)
func idleDestinations(route map[string]interface{}, stableSubset, canarySubset string) []interface{} {
	dests := destinationsOf(route)
	var out []interface{}
	for _, raw := range dests {
		d := asMap(raw)
		if isIdleDestination(d, len(dests)) && !isCanarySubset(destinationSubset(d), stableSubset, canarySubset) {
			out = append(out, raw)
		}
	}
	return out
}

// splitDestinations returns the new destination list of route, [stable:
// 100-w, canary: w], for the caller to set as route["route"]. The entries
// are the route's own destinations, so that ports, header rules and fields
// unknown to the plugin survive; they are reused, not copied, since the list
// they were in is being replaced.
func splitDestinations(route map[string]interface{}, stableSubset, canarySubset string, canaryWeight int64) []interface{} {
	idle := idleDestinations(route, stableSubset, canarySubset)
	stable, canary := destinationTemplates(route, stableSubset, canarySubset, true)
	stable["weight"] = 100 - canaryWeight
	canary["weight"] = canaryWeight
	return append([]interface{}{stable, canary}, idle...)
}

// soleDestination returns the destination list that sends everything to one
// subset, the shape a route has before and after a canary. replacing says
// that the list is to replace route["route"], whose entries may then be
// reused; otherwise they are copied.
func soleDestination(route map[string]interface{}, stableSubset, canarySubset, target string, replacing bool) []interface{} {
	var idle []interface{}
	if replacing {
		idle = idleDestinations(route, stableSubset, canarySubset)
	}
	stable, canary := destinationTemplates(route, stableSubset, canarySubset, replacing)
	d := stable
	if target == canarySubset {
		d = canary
	}
	delete(d, "weight")
	if len(idle) > 0 {
		// Among siblings, a destination without a weight is an error to
		// Istio's validation.
		d["weight"] = int64(100)
	}
	return append([]interface{}{d}, idle...)
}

// destinationTemplates returns the route's destination entries for the
// stable and the canary subset, one made from the other when the route has
// just one. They are the route's own entries when reuse is set (the caller
// replaces the route's list), copies otherwise.
func destinationTemplates(route map[string]interface{}, stableSubset, canarySubset string, reuse bool) (stable, canary map[string]interface{}) {
	own := func(d map[string]interface{}) map[string]interface{} {
		if reuse {
			return d
		}
		return runtime.DeepCopyJSON(d)
	}
	for _, raw := range destinationsOf(route) {
		d := asMap(raw)
		switch destinationSubset(d) {
		case "", stableSubset:
			if stable == nil {
				stable = own(d)
			}
		case canarySubset:
			if canary == nil {
				canary = own(d)
			}
		}
	}
	if stable == nil && canary != nil {
		stable = runtime.DeepCopyJSON(canary)
	}
	if canary == nil {
		canary = runtime.DeepCopyJSON(stable)
	}
	setSubset(stable, stableSubset)
	setSubset(canary, canarySubset)
	return stable, canary
}

func setSubset(d map[string]interface{}, subset string) {
	dest := asMap(d["destination"])
	if dest == nil {
		dest = map[string]interface{}{}
		d["destination"] = dest
	}
	dest["subset"] = subset
}

// routeRefFor records a route so later commands find it again.
func routeRefFor(kind string, index int, route map[string]interface{}) RouteRef {
	return RouteRef{Kind: kind, Index: index, Name: asString(route["name"]), Match: matchFingerprint(route)}
}

// routeFinder finds the recorded routes of an object being planned, indexing
// named routes once instead of scanning every route for every reference.
type routeFinder struct {
	o     *object
	named map[string]map[string]int // kind -> name -> index
}

func newRouteFinder(o *object) *routeFinder {
	return &routeFinder{o: o, named: map[string]map[string]int{}}
}

func (f *routeFinder) index(ref RouteRef) (int, error) {
	if ref.Name == "" {
		return locateRoute(f.o.spec(), ref)
	}
	byName, ok := f.named[ref.Kind]
	if !ok {
		routes := routesOf(f.o.spec(), ref.Kind)
		byName = make(map[string]int, len(routes))
		for i, raw := range routes {
			if name := asString(asMap(raw)["name"]); name != "" {
				if _, dup := byName[name]; !dup {
					byName[name] = i
				}
			}
		}
		f.named[ref.Kind] = byName
	}
	if i, ok := byName[ref.Name]; ok {
		return i, nil
	}
	return 0, fmt.Errorf("managed %s is gone", ref)
}

// findManaged finds a managed route, and its index among the object's routes
// of its kind, and checks that it still sends traffic to the canary's
// subsets: a route someone pointed elsewhere in the meantime is theirs now,
// and its destinations cannot be set from ours.
func (f *routeFinder) findManaged(ref RouteRef, stableSubset, canarySubset string) (int, map[string]interface{}, error) {
	i, err := f.index(ref)
	if err != nil {
		return 0, nil, f.changedByOthers(err)
	}
	route := asMap(routesOf(f.o.spec(), ref.Kind)[i])
	for _, raw := range destinationsOf(route) {
		switch destinationSubset(asMap(raw)) {
		case "", stableSubset, canarySubset:
			return i, route, nil
		}
	}
	return 0, nil, f.changedByOthers(fmt.Errorf("managed %s sends no traffic to subset %s or %s any more", ref, stableSubset, canarySubset))
}

// changedByOthers says what to do about a managed route that is gone or
// pointed elsewhere.
func (f *routeFinder) changedByOthers(err error) error {
	vs := f.o.desired
	return fmt.Errorf("%v in %s: someone changed it; set its destinations back to the canary's subsets by hand (kubectl edit virtualservice %s -n %s), then run the command again", err, f.o.ref(), vs.GetName(), vs.GetNamespace())
}

// locateRoute finds the index of a recorded route: by name when it has one,
// else at its recorded index if the match there is unchanged, else by its
// match alone.
func locateRoute(spec map[string]interface{}, ref RouteRef) (int, error) {
	routes := routesOf(spec, ref.Kind)
	if ref.Name != "" {
		for i, r := range routes {
			if asString(asMap(r)["name"]) == ref.Name {
				return i, nil
			}
		}
		return 0, fmt.Errorf("managed %s is gone", ref)
	}
	if ref.Index < len(routes) {
		r := asMap(routes[ref.Index])
		if asString(r["name"]) == "" && routeFingerprint(ref.Kind, r) == ref.Match {
			return ref.Index, nil
		}
	}
	found := -1
	for i, raw := range routes {
		r := asMap(raw)
		if asString(r["name"]) == "" && routeFingerprint(ref.Kind, r) == ref.Match {
			if found >= 0 {
				return 0, fmt.Errorf("managed %s cannot be told apart from another route with the same match", ref)
			}
			found = i
		}
	}
	if found < 0 {
		return 0, fmt.Errorf("managed %s is gone", ref)
	}
	return found, nil
}

// stableFromRoutes returns the versions the live routes send traffic to,
// sorted. Catch-all routes (no match) speak for the Service; only when
// there are none do routes with match conditions count.
func stableFromRoutes(specs []objectSpec, svc serviceRef, subsetVersions map[string]string) []string {
	catchAll, matched := map[string]int64{}, map[string]int64{}
	for _, s := range specs {
		for _, kind := range routeKinds {
			for _, raw := range routesOf(s.spec, kind) {
				r := asMap(raw)
				tally := catchAll
				if _, hasMatch := r["match"]; hasMatch {
					tally = matched
				}
				dests := destinationsOf(r)
				for _, rd := range dests {
					d := asMap(rd)
					if !svc.isHost(destinationHost(d), s.namespace) || !sendsTraffic(d, len(dests)) {
						continue
					}
					if v, ok := subsetVersions[destinationSubset(d)]; ok {
						tally[v] += destinationWeight(d, len(dests))
					}
				}
			}
		}
	}
	tally := catchAll
	if len(tally) == 0 {
		tally = matched
	}
	return sortedKeys(tally)
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// objectSpec is a spec with the namespace its short host names resolve in.
type objectSpec struct {
	namespace string
	spec      map[string]interface{}
}
