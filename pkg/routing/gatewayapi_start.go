package routing

import (
	"sort"
	"strings"
)

// startCanary names the stable and canary versions' Services (planning
// those that do not exist), splits the managed rules of every route that
// carries the Service (creating the mesh route when none attaches to the
// Service), and binds the intent's Gateway.
func (b *gatewayAPIBackend) startCanary(base State, versions *Versions) (*State, error) {
	var addedStable, addedCanary bool
	base.StableSubset, addedStable = b.ensureVersionService(versions.Label, versions.ByName[base.Stable])
	base.CanarySubset, addedCanary = b.ensureVersionService(versions.Label, versions.ByName[base.Canary])
	// A start applied again finds the Services it created existing: they
	// stay its to prune.
	states, err := b.states()
	if err != nil {
		return nil, err
	}
	for _, st := range states {
		if st.Phase == PhaseProgressing {
			for _, name := range st.AddedSubsets {
				base.AddedSubsets = appendUnique(base.AddedSubsets, name)
			}
		}
	}
	if addedStable {
		base.AddedSubsets = appendUnique(base.AddedSubsets, base.StableSubset)
	}
	if addedCanary {
		base.AddedSubsets = appendUnique(base.AddedSubsets, base.CanarySubset)
	}
	first, err := b.startRoutes(base)
	if err != nil {
		return nil, err
	}
	gateway, err := b.gatewayRoute(base)
	if err != nil {
		return nil, err
	}
	if first == nil {
		first = gateway
	}
	return first, nil
}

// startRoutes splits the managed rules of every route that carries the
// Service, creating the Service's mesh routes when no route attaches to
// it. It returns the state recorded on the first route.
func (b *gatewayAPIBackend) startRoutes(base State) (*State, error) {
	wanted := map[string]bool{}
	for _, name := range b.intent.Routes {
		wanted[name] = true
	}
	first, routing, err := b.splitLiveRoutes(base, wanted)
	if err != nil {
		return nil, err
	}
	if first != nil && (b.meshRouted() || len(wanted) > 0) {
		return first, nil
	}
	if first == nil && len(routing) > 0 {
		return nil, intentErrorf("%s carry the traffic of service %s/%s, but no rule sends it to stable %s=%s alone (each is pinned to another Service or mixes others); pass {Stable} or {Routes}, or add a rule whose backendRefs name the service", strings.Join(routing, ", "), b.svc.namespace, b.svc.name, base.VersionLabel, base.Stable)
	}
	created, err := b.startNewRoutes(base)
	if err != nil {
		return nil, err
	}
	if first == nil {
		first = created
	}
	return first, nil
}

// splitLiveRoutes splits the managed rules of the live routes that carry
// the Service. It returns the state recorded on the first, and the routes
// that carry the Service.
func (b *gatewayAPIBackend) splitLiveRoutes(base State, wanted map[string]bool) (*State, []string, error) {
	var first *State
	found := map[string]bool{}
	var routing []string
	t := targetsOf(&base)
	for _, route := range b.routes {
		if route.live == nil || !b.routesService(route, t) {
			continue
		}
		routing = append(routing, route.ref())
		st, err := b.startRoute(route, base, wanted, found)
		if err != nil {
			return nil, nil, err
		}
		if first == nil {
			first = st
		}
	}
	var missing []string
	for name := range wanted {
		if !found[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, nil, intentErrorf("{Routes} %s: no rule of that name sends traffic to service %s/%s or to stable Service %s (routes carrying it: %s); check the rule names", strings.Join(missing, ", "), b.svc.namespace, b.svc.name, base.StableSubset, listOrNone(routing))
	}
	return first, routing, nil
}

// startRoute splits the managed rules of a live route: those start chose
// before when it runs again, else the splittable ones. It returns the
// state recorded on the route, nil when it has no rule to manage.
func (b *gatewayAPIBackend) startRoute(route *object, base State, wanted, found map[string]bool) (*State, error) {
	prev, err := b.recorded(route)
	if err != nil {
		return nil, err
	}
	reapply := prev != nil && prev.Phase == PhaseProgressing
	refs := b.chooseManagedRules(route, targetsOf(&base), wanted)
	if reapply {
		refs = prev.Routes
	}
	for _, ref := range refs {
		found[ref.Name] = true
	}
	if len(refs) == 0 {
		return nil, nil
	}
	st := base
	st.Created = isCreatedByUs(route.live)
	if reapply {
		st.PreStartSpec, st.Created, st.AddedRoutes = prev.PreStartSpec, prev.Created, prev.AddedRoutes
	} else if !st.Created {
		if st.PreStartSpec, err = route.liveSpecJSON(); err != nil {
			return nil, err
		}
	}
	return b.recordSplit(route, refs, st)
}

// recordSplit splits the rules refs of route at the intent's weight and
// records st on it, with the extras st asks for.
func (b *gatewayAPIBackend) recordSplit(route *object, refs []RouteRef, st State) (*State, error) {
	if err := b.splitRules(route, refs, targetsOf(&st), int64(b.intent.Weight)); err != nil {
		return nil, err
	}
	st.Weight = b.intent.Weight
	st.Routes = refs
	if err := b.shapeExtras(route, &st); err != nil {
		return nil, err
	}
	b.setState(route, &st)
	return &st, nil
}
