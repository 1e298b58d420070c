package routing

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// prepareStart finds the DestinationRule of the Service, whose subsets name
// the versions, or plans one.
func (b *istioBackend) prepareStart() error {
	if b.dr != nil {
		return nil
	}
	dr, err := b.destinationRule()
	if err != nil {
		return err
	}
	b.dr = dr
	return nil
}

// routedVersions are the versions the VirtualServices' routes send the
// Service's traffic to, through the subsets of its DestinationRule.
func (b *istioBackend) routedVersions(versions *Versions) []string {
	var specs []objectSpec
	for _, vs := range b.vss {
		specs = append(specs, objectSpec{namespace: vs.desired.GetNamespace(), spec: vs.spec()})
	}
	return stableFromRoutes(specs, b.svc, subsetVersions(b.dr.spec(), versions))
}

// startCanary adds the subsets of the stable and canary versions where
// none selects them, splits the managed routes of every VirtualService
// that routes the Service (and of the gateway's hosts), and records the
// canary on the DestinationRule last.
func (b *istioBackend) startCanary(base State, versions *Versions) (*State, error) {
	var addedStable, addedCanary bool
	base.StableSubset, addedStable = ensureSubset(b.dr.spec(), versions.Label, versions.ByName[base.Stable])
	base.CanarySubset, addedCanary = ensureSubset(b.dr.spec(), versions.Label, versions.ByName[base.Canary])
	managed, err := b.startRoutes(base)
	if err != nil {
		return nil, err
	}
	if err := b.gatewayRoutes(base); err != nil {
		return nil, err
	}
	if managed == nil {
		return nil, nil
	}
	var added []string
	if addedStable {
		added = append(added, base.StableSubset)
	}
	if addedCanary {
		added = append(added, base.CanarySubset)
	}
	if err := b.claimDestinationRule(base, added); err != nil {
		return nil, err
	}
	return managed, nil
}

// claimDestinationRule records the canary on the DestinationRule, even when
// its subsets exist already: it is written first, so it is the claim two
// racing starts contend for. The loser's write conflicts, it reads the
// winner's canary and stops before writing anything. added are the subsets
// start added to it.
func (b *istioBackend) claimDestinationRule(base State, added []string) error {
	dr := b.dr
	drState := base
	drState.Weight = 0
	drState.Routes = nil
	for _, vs := range b.vss {
		if vs.touched && vs.desired.GetNamespace() != b.svc.namespace {
			drState.OtherNamespaces = append(drState.OtherNamespaces, vs.desired.GetNamespace()+"/"+vs.desired.GetName())
		}
	}
	prev, _ := b.recorded(dr)
	reapply := prev != nil && prev.Phase == PhaseProgressing
	if reapply {
		drState.AddedSubsets = prev.AddedSubsets
		drState.PreStartSpec = prev.PreStartSpec
	} else if dr.live != nil {
		var err error
		if drState.PreStartSpec, err = dr.liveSpecJSON(); err != nil {
			return err
		}
	}
	drState.Created = dr.live == nil || (prev != nil && prev.Created) || isCreatedByUs(dr.live)
	for _, name := range added {
		drState.AddedSubsets = appendUnique(drState.AddedSubsets, name)
	}
	b.setState(dr, &drState)
	return nil
}

// startRoutes splits the managed routes of every VirtualService that routes
// the Service, creating a VirtualService when none does. It returns the
// state recorded on the first VirtualService.
func (b *istioBackend) startRoutes(base State) (*State, error) {
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
	if first == nil && len(routing) == 0 && b.meshRouted() {
		return nil, fmt.Errorf("a VirtualService of namespace %s holds the host of service %s but sends none of its traffic to it; add a route to the service to it, then start again", b.svc.namespace, b.svc.name)
	}
	if first == nil && len(routing) > 0 {
		return nil, intentErrorf("VirtualService %s routes service %s/%s, but no route sends its traffic to stable %s=%s alone (each is pinned to a subset or mixes other hosts); pass {Stable} or {Routes}, or add a default route", strings.Join(routing, ", "), b.svc.namespace, b.svc.name, base.VersionLabel, base.Stable)
	}
	// No VirtualService holds the host for the mesh: one is created, so
	// that in-mesh calls get the split too.
	created, err := b.startNewVirtualService(base)
	if err != nil {
		return nil, err
	}
	if first == nil {
		first = created
	}
	return first, nil
}

// splitLiveRoutes splits the managed routes of the live VirtualServices
// that route the Service, those of the intent when it names routes. It
// returns the state recorded on the first, and the names of all that
// route the Service.
func (b *istioBackend) splitLiveRoutes(base State, wanted map[string]bool) (*State, []string, error) {
	var first *State
	found := map[string]bool{}
	routing := []string{}
	for _, vs := range b.vss {
		b.warnForeignDelegates(vs)
		if !routesToService(vs.spec(), b.svc, vs.desired.GetNamespace()) {
			continue
		}
		routing = append(routing, vs.desired.GetName())
		st, err := b.startVirtualService(vs, base, wanted, found)
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
		return nil, nil, intentErrorf("{Routes} %s: no route of that name sends traffic to stable subset %s of service %s/%s (VirtualServices routing it: %s); check the route names", strings.Join(missing, ", "), base.StableSubset, b.svc.namespace, b.svc.name, listOrNone(routing))
	}
	return first, routing, nil
}

// startVirtualService splits the managed routes of a live VirtualService:
// those start chose before when it runs again, else the splittable ones.
// found collects their names. It returns the state recorded on the
// VirtualService, nil when it has no route to manage.
func (b *istioBackend) startVirtualService(vs *object, base State, wanted, found map[string]bool) (*State, error) {
	prev, err := b.recorded(vs)
	if err != nil {
		return nil, err
	}
	reapply := prev != nil && prev.Phase == PhaseProgressing
	var refs []RouteRef
	if reapply {
		refs = prev.Routes
	} else {
		refs = chooseManagedRoutes(vs, b.svc, base.StableSubset, base.CanarySubset, wanted)
	}
	for _, ref := range refs {
		found[ref.Name] = true
	}
	if len(refs) == 0 {
		return nil, nil
	}
	if err := splitRoutes(vs, refs, base.StableSubset, base.CanarySubset, int64(b.intent.Weight)); err != nil {
		return nil, err
	}
	st := base
	st.Created = isCreatedByUs(vs.live)
	if reapply {
		st.PreStartSpec = prev.PreStartSpec
		st.Created = prev.Created
		st.AddedRoutes = prev.AddedRoutes
	} else if !st.Created {
		if st.PreStartSpec, err = vs.liveSpecJSON(); err != nil {
			return nil, err
		}
	}
	return b.recordSplit(vs, refs, st)
}

// startNewVirtualService creates the Service's VirtualService for in-mesh
// traffic, with every route of it managed.
func (b *istioBackend) startNewVirtualService(base State) (*State, error) {
	vs, err := b.newVirtualService()
	if err != nil {
		return nil, err
	}
	var refs []RouteRef
	for _, kind := range routeKinds {
		for i, r := range routesOf(vs.spec(), kind) {
			refs = append(refs, routeRefFor(kind, i, asMap(r)))
		}
	}
	if err := splitRoutes(vs, refs, base.StableSubset, base.CanarySubset, int64(b.intent.Weight)); err != nil {
		return nil, err
	}
	st := base
	st.Created = true
	return b.recordSplit(vs, refs, st)
}

// recordSplit records st, with the intent's weight and the managed routes
// refs just split, on vs, with the extras st asks for.
func (b *istioBackend) recordSplit(vs *object, refs []RouteRef, st State) (*State, error) {
	st.Weight = b.intent.Weight
	st.Routes = refs
	if err := b.shapeExtras(vs, &st); err != nil {
		return nil, err
	}
	b.setState(vs, &st)
	return &st, nil
}

// meshRouted reports whether a VirtualService already holds the Service's
// host for in-mesh traffic: one in the Service's namespace, or one exported
// to every namespace, that is not bound to a gateway only. Without one, the
// Service would balance in-mesh calls over every version's pods, so start
// creates one.
func (b *istioBackend) meshRouted() bool {
	for _, vs := range b.vss {
		spec := vs.spec()
		if vs.desired.GetNamespace() != b.svc.namespace && !exportedEverywhere(spec) {
			continue
		}
		gateways := asSlice(spec["gateways"])
		mesh := len(gateways) == 0
		for _, g := range gateways {
			mesh = mesh || asString(g) == "mesh"
		}
		if !mesh {
			continue
		}
		for _, h := range asSlice(spec["hosts"]) {
			if b.svc.isHost(asString(h), vs.desired.GetNamespace()) {
				return true
			}
		}
	}
	return false
}

func exportedEverywhere(spec map[string]interface{}) bool {
	exportTo := asSlice(spec["exportTo"])
	if len(exportTo) == 0 {
		return true
	}
	for _, e := range exportTo {
		if asString(e) == "*" {
			return true
		}
	}
	return false
}

// warnForeignDelegates says when a VirtualService hands routes to a
// delegate in another namespace: those routes may reach the Service too, but
// the plugin reads one namespace and cannot split them.
func (b *istioBackend) warnForeignDelegates(vs *object) {
	for _, raw := range routesOf(vs.spec(), "http") {
		delegate := asMap(asMap(raw)["delegate"])
		ns := asString(delegate["namespace"])
		if delegate != nil && ns != "" && ns != vs.desired.GetNamespace() {
			b.warnings = append(b.warnings, fmt.Sprintf("%s delegates to VirtualService %s/%s in another namespace; routes there are not split by this canary (check them with kubectl get virtualservice -n %s %s)", vs.ref(), ns, asString(delegate["name"]), ns, asString(delegate["name"])))
		}
	}
}

func chooseManagedRoutes(vs *object, svc serviceRef, stableSubset, canarySubset string, wanted map[string]bool) []RouteRef {
	var refs []RouteRef
	for _, kind := range routeKinds {
		for i, raw := range routesOf(vs.spec(), kind) {
			r := asMap(raw)
			if len(wanted) > 0 && !wanted[asString(r["name"])] {
				continue
			}
			if isSplittable(r, svc, vs.desired.GetNamespace(), stableSubset, canarySubset) {
				refs = append(refs, routeRefFor(kind, i, r))
			}
		}
	}
	return refs
}

func splitRoutes(vs *object, refs []RouteRef, stableSubset, canarySubset string, weight int64) error {
	finder := newRouteFinder(vs)
	for _, ref := range refs {
		_, route, err := finder.findManaged(ref, stableSubset, canarySubset)
		if err != nil {
			return err
		}
		route["route"] = splitDestinations(route, stableSubset, canarySubset, weight)
	}
	return nil
}

// destinationRule returns the DestinationRule of the Service's host, or a new
// one named after the Service when none exists.
func (b *istioBackend) destinationRule() (*object, error) {
	var matches []*object
	for _, dr := range b.drs {
		if b.svc.isHost(asString(dr.spec()["host"]), dr.desired.GetNamespace()) {
			matches = append(matches, dr)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
	default:
		names := make([]string, 0, len(matches))
		for _, m := range matches {
			names = append(names, m.desired.GetName())
		}
		return nil, fmt.Errorf("DestinationRules %s all apply to service %s/%s and Istio uses only one of them; merge them into one and run the command again", strings.Join(names, ", "), b.svc.namespace, b.svc.name)
	}
	for _, dr := range b.drs {
		if dr.desired.GetName() == b.svc.name && dr.desired.GetNamespace() == b.svc.namespace {
			return nil, fmt.Errorf("DestinationRule %s/%s exists but applies to host %q, not to service %s; rename it or point its host at the service", b.svc.namespace, b.svc.name, asString(dr.spec()["host"]), b.svc.name)
		}
	}
	dr := &object{desired: b.newObject("DestinationRule"), stage: StageSubsets}
	dr.spec()["host"] = b.svc.fqdn()
	b.drs = append(b.drs, dr)
	return dr, nil
}

func (b *istioBackend) newVirtualService() (*object, error) {
	name := b.svc.name
	for _, candidate := range []string{b.svc.name, b.svc.name + "-mesh", ""} {
		name = candidate
		if !b.nameTaken(candidate) {
			break
		}
	}
	if name == "" {
		return nil, fmt.Errorf("VirtualServices %s/%s and %s/%s-mesh exist but do not hold the host of service %s for in-mesh traffic; add the host and a route to the service to one of them", b.svc.namespace, b.svc.name, b.svc.namespace, b.svc.name, b.svc.name)
	}
	routes, err := b.createdRoutes()
	if err != nil {
		return nil, err
	}
	vs := &object{desired: b.newObject("VirtualService"), stage: StageRoutes}
	vs.desired.SetName(name)
	spec := vs.spec()
	spec["hosts"] = []interface{}{b.svc.fqdn()}
	for kind, list := range routes {
		spec[kind] = list
	}
	b.vss = append(b.vss, vs)
	return vs, nil
}

func (b *istioBackend) nameTaken(name string) bool {
	for _, vs := range b.vss {
		if vs.desired.GetName() == name && vs.desired.GetNamespace() == b.svc.namespace {
			return true
		}
	}
	return false
}

func (b *istioBackend) newObject(kind string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]interface{}{}}
	u.SetAPIVersion(b.apiVersion)
	u.SetKind(kind)
	u.SetName(b.svc.name)
	u.SetNamespace(b.svc.namespace)
	u.SetLabels(map[string]string{ManagedByLabel: ManagedByValue})
	return u
}
