package routing

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func (p *planner) start() (*State, error) {
	if err := validateWeight(p.intent.Weight); err != nil {
		return nil, err
	}
	active, err := p.activeState()
	if err != nil {
		return nil, err
	}
	label := p.intent.VersionLabel
	if label == "" && active != nil {
		label = active.VersionLabel
	}
	versions, err := inferVersions(p.snap.Service, p.deployments, label)
	if err != nil {
		return nil, err
	}
	dr, err := p.destinationRule()
	if err != nil {
		return nil, err
	}
	stable, err := p.chooseStable(versions, dr, active)
	if err != nil {
		return nil, err
	}
	canary, err := p.chooseCanary(versions, stable)
	if err != nil {
		return nil, err
	}
	if active != nil && (active.Stable != stable || active.Canary != canary || active.VersionLabel != versions.Label) {
		return nil, fmt.Errorf("a canary of service %s/%s is already in progress (%s %s at %d%%, canary %s); promote or abort it before starting another", p.svc.namespace, p.svc.name, active.VersionLabel, active.Stable, 100-active.Weight, active.Canary)
	}

	stableSubset, addedStable := ensureSubset(dr.spec(), versions.Label, versions.ByName[stable])
	canarySubset, addedCanary := ensureSubset(dr.spec(), versions.Label, versions.ByName[canary])
	base := State{
		Service:      p.svc.name,
		VersionLabel: versions.Label,
		Stable:       stable,
		StableSubset: stableSubset,
		Canary:       canary,
		CanarySubset: canarySubset,
		Phase:        PhaseProgressing,
		StartedAt:    p.snap.Now.UTC().Truncate(time.Second),
		Matches:      p.intent.Matches,
		Sticky:       p.intent.Sticky,
	}
	if p.intent.Mirror != nil {
		base.Mirror = *p.intent.Mirror
	}
	if active != nil {
		base.StartedAt = active.StartedAt
	}

	managed, err := p.startRoutes(base)
	if err != nil {
		return nil, err
	}
	if err := p.gatewayRoutes(base); err != nil {
		return nil, err
	}
	if managed == nil {
		return nil, nil
	}

	// The DestinationRule always records the canary, even when its subsets
	// exist already: it is written first, so it is the claim two racing
	// starts contend for. The loser's write conflicts, it reads the winner's
	// canary and stops before writing anything.
	drState := base
	drState.Weight = 0
	drState.Routes = nil
	for _, vs := range p.vss {
		if vs.touched && vs.desired.GetNamespace() != p.svc.namespace {
			drState.OtherNamespaces = append(drState.OtherNamespaces, vs.desired.GetNamespace()+"/"+vs.desired.GetName())
		}
	}
	prev, _ := p.recorded(dr)
	reapply := prev != nil && prev.Phase == PhaseProgressing
	if reapply {
		drState.AddedSubsets = prev.AddedSubsets
		drState.PreStartSpec = prev.PreStartSpec
	} else if dr.live != nil {
		if drState.PreStartSpec, err = dr.liveSpecJSON(); err != nil {
			return nil, err
		}
	}
	drState.Created = dr.live == nil || (prev != nil && prev.Created) || isCreatedByUs(dr.live)
	if addedStable {
		drState.AddedSubsets = appendUnique(drState.AddedSubsets, stableSubset)
	}
	if addedCanary {
		drState.AddedSubsets = appendUnique(drState.AddedSubsets, canarySubset)
	}
	p.setState(dr, &drState)
	return managed, nil
}

// startRoutes splits the managed routes of every VirtualService that routes
// the Service, creating a VirtualService when none does. It returns the
// state recorded on the first VirtualService.
func (p *planner) startRoutes(base State) (*State, error) {
	var first *State
	wanted := map[string]bool{}
	for _, name := range p.intent.Routes {
		wanted[name] = true
	}
	found := map[string]bool{}
	routing := []string{}
	for _, vs := range p.vss {
		p.warnForeignDelegates(vs)
		if !routesToService(vs.spec(), p.svc, vs.desired.GetNamespace()) {
			continue
		}
		routing = append(routing, vs.desired.GetName())
		prev, err := p.recorded(vs)
		if err != nil {
			return nil, err
		}
		reapply := prev != nil && prev.Phase == PhaseProgressing
		var refs []RouteRef
		if reapply {
			refs = prev.Routes
		} else {
			refs = chooseManagedRoutes(vs, p.svc, base.StableSubset, base.CanarySubset, wanted)
		}
		for _, ref := range refs {
			found[ref.Name] = true
		}
		if len(refs) == 0 {
			continue
		}
		if err := splitRoutes(vs, refs, base.StableSubset, base.CanarySubset, int64(p.intent.Weight)); err != nil {
			return nil, err
		}
		st := base
		st.Weight = p.intent.Weight
		st.Routes = refs
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
		if err := p.shapeExtras(vs, &st); err != nil {
			return nil, err
		}
		p.setState(vs, &st)
		if first == nil {
			first = &st
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
		return nil, intentErrorf("{Routes} %s: no route of that name sends traffic to stable subset %s of service %s/%s (VirtualServices routing it: %s); check the route names", strings.Join(missing, ", "), base.StableSubset, p.svc.namespace, p.svc.name, listOrNone(routing))
	}
	if first != nil && (p.meshRouted() || len(wanted) > 0) {
		return first, nil
	}
	if first == nil && len(routing) == 0 && p.meshRouted() {
		return nil, fmt.Errorf("a VirtualService of namespace %s holds the host of service %s but sends none of its traffic to it; add a route to the service to it, then start again", p.svc.namespace, p.svc.name)
	}
	if first == nil && len(routing) > 0 {
		return nil, intentErrorf("VirtualService %s routes service %s/%s, but no route sends its traffic to stable %s=%s alone (each is pinned to a subset or mixes other hosts); pass {Stable} or {Routes}, or add a default route", strings.Join(routing, ", "), p.svc.namespace, p.svc.name, base.VersionLabel, base.Stable)
	}
	vs, err := p.newVirtualService()
	if err != nil {
		return nil, err
	}
	var refs []RouteRef
	for _, kind := range routeKinds {
		for i, r := range routesOf(vs.spec(), kind) {
			refs = append(refs, routeRefFor(kind, i, asMap(r)))
		}
	}
	if err := splitRoutes(vs, refs, base.StableSubset, base.CanarySubset, int64(p.intent.Weight)); err != nil {
		return nil, err
	}
	st := base
	st.Weight = p.intent.Weight
	st.Routes = refs
	st.Created = true
	if err := p.shapeExtras(vs, &st); err != nil {
		return nil, err
	}
	p.setState(vs, &st)
	if first == nil {
		first = &st
	}
	return first, nil
}

// meshRouted reports whether a VirtualService already holds the Service's
// host for in-mesh traffic: one in the Service's namespace, or one exported
// to every namespace, that is not bound to a gateway only. Without one, the
// Service would balance in-mesh calls over every version's pods, so start
// creates one.
func (p *planner) meshRouted() bool {
	for _, vs := range p.vss {
		spec := vs.spec()
		if vs.desired.GetNamespace() != p.svc.namespace && !exportedEverywhere(spec) {
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
			if p.svc.isHost(asString(h), vs.desired.GetNamespace()) {
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
func (p *planner) warnForeignDelegates(vs *object) {
	for _, raw := range routesOf(vs.spec(), "http") {
		delegate := asMap(asMap(raw)["delegate"])
		ns := asString(delegate["namespace"])
		if delegate != nil && ns != "" && ns != vs.desired.GetNamespace() {
			p.warnings = append(p.warnings, fmt.Sprintf("%s delegates to VirtualService %s/%s in another namespace; routes there are not split by this canary (check them with kubectl get virtualservice -n %s %s)", vs.ref(), ns, asString(delegate["name"]), ns, asString(delegate["name"])))
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
func (p *planner) destinationRule() (*object, error) {
	var matches []*object
	for _, dr := range p.drs {
		if p.svc.isHost(asString(dr.spec()["host"]), dr.desired.GetNamespace()) {
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
		return nil, fmt.Errorf("DestinationRules %s all apply to service %s/%s and Istio uses only one of them; merge them into one and run the command again", strings.Join(names, ", "), p.svc.namespace, p.svc.name)
	}
	for _, dr := range p.drs {
		if dr.desired.GetName() == p.svc.name && dr.desired.GetNamespace() == p.svc.namespace {
			return nil, fmt.Errorf("DestinationRule %s/%s exists but applies to host %q, not to service %s; rename it or point its host at the service", p.svc.namespace, p.svc.name, asString(dr.spec()["host"]), p.svc.name)
		}
	}
	dr := &object{desired: p.newObject("DestinationRule"), stage: StageSubsets}
	dr.spec()["host"] = p.svc.fqdn()
	p.drs = append(p.drs, dr)
	return dr, nil
}

func (p *planner) newVirtualService() (*object, error) {
	name := p.svc.name
	for _, candidate := range []string{p.svc.name, p.svc.name + "-mesh", ""} {
		name = candidate
		if !p.nameTaken(candidate) {
			break
		}
	}
	if name == "" {
		return nil, fmt.Errorf("VirtualServices %s/%s and %s/%s-mesh exist but do not hold the host of service %s for in-mesh traffic; add the host and a route to the service to one of them", p.svc.namespace, p.svc.name, p.svc.namespace, p.svc.name, p.svc.name)
	}
	routes, err := p.createdRoutes()
	if err != nil {
		return nil, err
	}
	vs := &object{desired: p.newObject("VirtualService"), stage: StageRoutes}
	vs.desired.SetName(name)
	spec := vs.spec()
	spec["hosts"] = []interface{}{p.svc.fqdn()}
	for kind, list := range routes {
		spec[kind] = list
	}
	p.vss = append(p.vss, vs)
	return vs, nil
}

func (p *planner) nameTaken(name string) bool {
	for _, vs := range p.vss {
		if vs.desired.GetName() == name && vs.desired.GetNamespace() == p.svc.namespace {
			return true
		}
	}
	return false
}

func (p *planner) newObject(kind string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]interface{}{}}
	u.SetAPIVersion(p.snap.APIVersion)
	u.SetKind(kind)
	u.SetName(p.svc.name)
	u.SetNamespace(p.svc.namespace)
	u.SetLabels(map[string]string{ManagedByLabel: ManagedByValue})
	return u
}

func (p *planner) chooseStable(versions *Versions, dr *object, active *State) (string, error) {
	if v := p.intent.Stable; v != "" {
		if versions.ByName[v] == nil {
			return "", intentErrorf("{Stable} %s: service %s/%s has no such version (%s values: %s)", v, p.svc.namespace, p.svc.name, versions.Label, strings.Join(versions.Values(), ", "))
		}
		return v, nil
	}
	if active != nil && versions.ByName[active.Stable] != nil {
		return active.Stable, nil
	}
	var specs []objectSpec
	for _, vs := range p.vss {
		specs = append(specs, objectSpec{namespace: vs.desired.GetNamespace(), spec: vs.spec()})
	}
	stable, err := stableFromRoutes(specs, p.svc, subsetVersions(dr.spec(), versions))
	if err != nil || stable != "" {
		return stable, err
	}
	return oldestVersion(versions), nil
}

func (p *planner) chooseCanary(versions *Versions, stable string) (string, error) {
	canary := p.intent.Canary
	if name := p.intent.CanaryDeployment; name != "" {
		found := false
		for _, d := range p.deployments {
			if d.Name == name {
				value := d.Spec.Template.Labels[versions.Label]
				if canary != "" && canary != value {
					return "", intentErrorf("{Canary} %s and {CanaryDeployment} %s disagree: that deployment is %s=%s; pass only one of them", canary, name, versions.Label, value)
				}
				canary, found = value, true
			}
		}
		if !found {
			return "", intentErrorf("{CanaryDeployment} %s: no such deployment behind service %s/%s (deployments: %s)", name, p.svc.namespace, p.svc.name, deploymentNames(p.deployments))
		}
	}
	if canary != "" {
		if versions.ByName[canary] == nil {
			return "", intentErrorf("{Canary} %s: service %s/%s has no such version (%s values: %s)", canary, p.svc.namespace, p.svc.name, versions.Label, strings.Join(versions.Values(), ", "))
		}
		if canary == stable {
			return "", intentErrorf("canary %s=%s is the stable version of service %s/%s; pick another version with {Canary}, or set the stable one with {Stable}", versions.Label, canary, p.svc.namespace, p.svc.name)
		}
		return canary, nil
	}
	var others []string
	for _, v := range versions.Values() {
		if v != stable {
			others = append(others, v)
		}
	}
	if len(others) > 1 {
		return "", intentErrorf("service %s/%s has several versions besides stable %s=%s: %s; pass {Canary} with one of them", p.svc.namespace, p.svc.name, versions.Label, stable, strings.Join(others, ", "))
	}
	return others[0], nil
}
