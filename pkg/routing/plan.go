package routing

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Action is what a command asks of the canary.
type Action string

const (
	ActionStart   Action = "start"
	ActionWeight  Action = "weight"
	ActionPromote Action = "promote"
	ActionAbort   Action = "abort"
	// ActionRoute changes the match rules of a running canary.
	ActionRoute Action = "route"
)

// Intent is a command's request, independent of how the cluster looks.
type Intent struct {
	Action Action
	// Weight is the canary's share in percent (start, weight).
	Weight int
	// Canary and CanaryDeployment pick the canary version (start).
	Canary           string
	CanaryDeployment string
	// Stable overrides the version the routes send traffic to today (start).
	Stable string
	// VersionLabel overrides version-label inference (start).
	VersionLabel string
	// Routes narrows the managed routes to those names (start).
	Routes []string
	// ClusterDomain is the DNS suffix of Service FQDNs; empty means cluster.local.
	ClusterDomain string
	// Matches send matching requests 100% to the canary (start, route).
	Matches []MatchRule
	// Sticky keeps clients that reached the canary on it (start).
	Sticky bool
	// Mirror shadows this share of managed traffic to the canary (start,
	// weight); nil leaves a running canary's mirror as it is.
	Mirror *int
	// Gateway splits external traffic of an ingress gateway's hosts too (start).
	Gateway *GatewayIntent
}

// Snapshot is what the core is told about the cluster.
type Snapshot struct {
	Service          *corev1.Service
	Deployments      []appsv1.Deployment
	VirtualServices  []*unstructured.Unstructured
	DestinationRules []*unstructured.Unstructured
	// Gateways holds the Gateway an intent names, when it exists.
	Gateways []*unstructured.Unstructured
	// APIVersion is the networking.istio.io version for objects the plan creates.
	APIVersion string
	Now        time.Time
}

// Stage orders writes so that no route ever names a subset that does not
// exist: subsets are added before routes use them and pruned after.
type Stage int

const (
	StageSubsets Stage = iota
	StageRoutes
	StagePrune
)

// Change is one routing object as it is and as it must become.
type Change struct {
	// Live is nil when the object must be created.
	Live    *unstructured.Unstructured
	Desired *unstructured.Unstructured
	Stage   Stage
}

// Changed reports whether the object must be written.
func (c Change) Changed() bool {
	return c.Live == nil || !sameObject(c.Live.Object, c.Desired.Object)
}

// Plan is the outcome of an intent: the objects to write, in order.
type Plan struct {
	Namespace string
	Service   string
	// State is the canary as it stands once the plan is written.
	State    State
	Changes  []Change
	Warnings []string
}

// Changed reports whether any object must be written.
func (p *Plan) Changed() bool {
	for _, c := range p.Changes {
		if c.Changed() {
			return true
		}
	}
	return false
}

// object is a routing object being planned: its live form and a deep copy
// that the plan edits.
type object struct {
	live    *unstructured.Unstructured
	desired *unstructured.Unstructured
	stage   Stage
	touched bool
	// state caches the live object's recorded state, which the planner
	// consults several times; each caller gets its own copy.
	state     *State
	stateErr  error
	stateRead bool
}

func (o *object) spec() map[string]interface{} {
	spec := asMap(o.desired.Object["spec"])
	if spec == nil {
		spec = map[string]interface{}{}
		o.desired.Object["spec"] = spec
	}
	return spec
}

func (o *object) liveSpec() map[string]interface{} {
	if o.live == nil {
		return nil
	}
	return asMap(o.live.Object["spec"])
}

func (o *object) ref() string {
	return fmt.Sprintf("%s %s/%s", o.desired.GetKind(), o.desired.GetNamespace(), o.desired.GetName())
}

type planner struct {
	snap        Snapshot
	intent      Intent
	svc         serviceRef
	deployments []*appsv1.Deployment
	vss         []*object
	drs         []*object
	warnings    []string
}

// Compute plans an intent against a snapshot. It never touches a cluster.
func Compute(snap Snapshot, intent Intent) (*Plan, error) {
	if snap.Service == nil {
		return nil, fmt.Errorf("no service given")
	}
	p := &planner{
		snap:   snap,
		intent: intent,
		svc:    serviceRef{name: snap.Service.Name, namespace: snap.Service.Namespace, clusterDomain: intent.ClusterDomain},
	}
	if p.svc.clusterDomain == "" {
		p.svc.clusterDomain = DefaultClusterDomain
	}
	if p.snap.APIVersion == "" {
		p.snap.APIVersion = "networking.istio.io/v1"
	}
	for _, vs := range snap.VirtualServices {
		p.vss = append(p.vss, &object{live: vs, desired: vs.DeepCopy(), stage: StageRoutes})
	}
	for _, dr := range snap.DestinationRules {
		p.drs = append(p.drs, &object{live: dr, desired: dr.DeepCopy(), stage: StageSubsets})
	}
	var err error
	if p.deployments, err = backingDeployments(snap.Service, snap.Deployments); err != nil {
		return nil, err
	}
	var state *State
	switch intent.Action {
	case ActionStart:
		state, err = p.start()
	case ActionWeight:
		state, err = p.setWeight()
	case ActionRoute:
		state, err = p.changeMatches()
	case ActionPromote:
		state, err = p.finish(PhasePromoted)
	case ActionAbort:
		state, err = p.finish(PhaseAborted)
	default:
		err = fmt.Errorf("unknown action %q", intent.Action)
	}
	if err != nil {
		return nil, err
	}
	return p.plan(state), nil
}

// states returns the canary states recorded for the Service, VirtualServices first.
func (p *planner) states() ([]*State, error) {
	var out []*State
	for _, o := range append(append([]*object{}, p.vss...), p.drs...) {
		st, err := p.recorded(o)
		if err != nil {
			return nil, err
		}
		if st != nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// recorded returns the canary state the live object records for the
// Service, parsed once.
func (p *planner) recorded(o *object) (*State, error) {
	if !o.stateRead {
		o.state, o.stateErr = ReadState(o.live, p.svc.name)
		o.stateRead = true
	}
	if o.state == nil || o.stateErr != nil {
		return nil, o.stateErr
	}
	copied := *o.state
	copied.Routes = append([]RouteRef(nil), o.state.Routes...)
	copied.AddedRoutes = append([]string(nil), o.state.AddedRoutes...)
	copied.AddedSubsets = append([]string(nil), o.state.AddedSubsets...)
	copied.Matches = append([]MatchRule(nil), o.state.Matches...)
	return &copied, nil
}

// progressingState is the object's recorded canary of the Service when it
// is in progress. A malformed annotation was already reported by states().
func (p *planner) progressingState(o *object) *State {
	st, err := p.recorded(o)
	if err != nil || st == nil || st.Phase != PhaseProgressing {
		return nil
	}
	return st
}

// activeState is the recorded canary in progress, if any.
func (p *planner) activeState() (*State, error) {
	states, err := p.states()
	if err != nil {
		return nil, err
	}
	for _, st := range states {
		if st.Phase == PhaseProgressing {
			return st, nil
		}
	}
	return nil, nil
}

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

	// The DestinationRule carries state only when start changed it.
	if addedStable || addedCanary || dr.live == nil {
		drState := base
		drState.Weight = 0
		drState.Routes = nil
		prev, _ := p.recorded(dr)
		reapply := prev != nil && prev.Phase == PhaseProgressing
		if reapply {
			drState.AddedSubsets = prev.AddedSubsets
			drState.PreStartSpec = prev.PreStartSpec
		} else if dr.live != nil {
			drState.PreStartSpec = rawSpec(dr.liveSpec())
		}
		drState.Created = dr.live == nil || (prev != nil && prev.Created) || isCreatedByUs(dr.live)
		if addedStable {
			drState.AddedSubsets = appendUnique(drState.AddedSubsets, stableSubset)
		}
		if addedCanary {
			drState.AddedSubsets = appendUnique(drState.AddedSubsets, canarySubset)
		}
		p.setState(dr, &drState)
	}
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
			st.PreStartSpec = rawSpec(vs.liveSpec())
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
		return nil, fmt.Errorf("--route %s: no route of that name sends traffic to stable subset %s of service %s/%s (VirtualServices routing it: %s); check the route names", strings.Join(missing, ", "), base.StableSubset, p.svc.namespace, p.svc.name, listOrNone(routing))
	}
	if first != nil {
		return first, nil
	}
	if len(routing) > 0 {
		return nil, fmt.Errorf("VirtualService %s routes service %s/%s, but no route sends its traffic to stable %s=%s alone (each is pinned to a subset or mixes other hosts); pass --stable or --route, or add a default route", strings.Join(routing, ", "), p.svc.namespace, p.svc.name, base.VersionLabel, base.Stable)
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
	return &st, nil
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
	for _, ref := range refs {
		route, err := locateRoute(vs.spec(), ref)
		if err != nil {
			return fmt.Errorf("%s of %s: %v; abort the canary and start it again", err, vs.ref(), "its managed route was changed")
		}
		route["route"] = splitDestinations(route, stableSubset, canarySubset, weight)
	}
	return nil
}

func (p *planner) setWeight() (*State, error) {
	if err := validateWeight(p.intent.Weight); err != nil {
		return nil, err
	}
	active, err := p.activeState()
	if err != nil {
		return nil, err
	}
	if active == nil {
		return nil, p.noCanaryError()
	}
	if err := p.restoreSubsets(active); err != nil {
		return nil, err
	}
	var first *State
	for _, vs := range p.vss {
		st := p.progressingState(vs)
		if st == nil {
			continue
		}
		if err := splitRoutes(vs, st.Routes, st.StableSubset, st.CanarySubset, int64(p.intent.Weight)); err != nil {
			return nil, err
		}
		st.Weight = p.intent.Weight
		if p.intent.Mirror != nil {
			st.Mirror = *p.intent.Mirror
		}
		if err := p.shapeExtras(vs, st); err != nil {
			return nil, err
		}
		p.setState(vs, st)
		if first == nil {
			first = st
		}
	}
	if first == nil {
		return nil, p.noCanaryError()
	}
	return first, nil
}

// changeMatches replaces the match rules of a running canary; the split of
// the managed routes stays as it is.
func (p *planner) changeMatches() (*State, error) {
	active, err := p.activeState()
	if err != nil {
		return nil, err
	}
	if active == nil {
		return nil, p.noCanaryError()
	}
	var first *State
	for _, vs := range p.vss {
		st := p.progressingState(vs)
		if st == nil {
			continue
		}
		st.Matches = p.intent.Matches
		if err := p.shapeExtras(vs, st); err != nil {
			return nil, err
		}
		p.setState(vs, st)
		if first == nil {
			first = st
		}
	}
	if first == nil {
		return nil, p.noCanaryError()
	}
	return first, nil
}

// restoreSubsets puts back the stable and canary subsets if someone removed
// them while the canary ran, so a new weight never routes to nothing.
func (p *planner) restoreSubsets(active *State) error {
	dr, err := p.destinationRule()
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, raw := range subsetsOf(dr.spec()) {
		names[asString(asMap(raw)["name"])] = true
	}
	var restored []string
	for _, s := range []struct{ name, value string }{{active.StableSubset, active.Stable}, {active.CanarySubset, active.Canary}} {
		if names[s.name] {
			continue
		}
		dr.spec()["subsets"] = append(subsetsOf(dr.spec()), map[string]interface{}{
			"name":   s.name,
			"labels": map[string]interface{}{active.VersionLabel: s.value},
		})
		restored = append(restored, s.name)
	}
	if len(restored) == 0 {
		return nil
	}
	p.warnings = append(p.warnings, fmt.Sprintf("%s had lost subset(s) %s of the running canary; they are added back", dr.ref(), strings.Join(restored, ", ")))
	st, _ := p.recorded(dr)
	if st == nil || st.Phase != PhaseProgressing {
		copied := *active
		st = &copied
		st.Weight, st.Routes, st.PreStartSpec = 0, nil, nil
	}
	for _, name := range restored {
		st.AddedSubsets = appendUnique(st.AddedSubsets, name)
	}
	p.setState(dr, st)
	return nil
}

// finish promotes or aborts: traffic moves first (routes), then subsets the
// canary added and no route uses any more are pruned.
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
			for _, o := range append(append([]*object{}, p.vss...), p.drs...) {
				if st, _ := p.recorded(o); st != nil {
					o.touched = true
				}
			}
			return done, nil
		}
		return nil, p.noCanaryError()
	}

	var first *State
	for _, vs := range p.vss {
		st := p.progressingState(vs)
		if st == nil {
			continue
		}
		if err := p.finishRoutes(vs, st, phase); err != nil {
			return nil, err
		}
		p.setState(vs, st)
		if first == nil {
			first = st
		}
	}
	var specs []objectSpec
	for _, vs := range p.vss {
		specs = append(specs, objectSpec{namespace: vs.desired.GetNamespace(), spec: vs.spec()})
	}
	inUse := referencedSubsets(specs, p.svc)
	for _, dr := range p.drs {
		st := p.progressingState(dr)
		if st == nil {
			continue
		}
		p.pruneSubsets(dr, st, phase, inUse)
		dr.stage = StagePrune
		p.setState(dr, st)
		if first == nil {
			first = st
		}
	}
	return first, nil
}

func (p *planner) finishRoutes(vs *object, st *State, phase Phase) error {
	restored, err := st.preStartSpec()
	if phase == PhaseAborted && err == nil && restored != nil && specHash(vs.liveSpec()) == st.SpecHash {
		vs.desired.Object["spec"] = restored
	} else {
		if phase == PhaseAborted && st.PreStartSpec != nil {
			p.warnings = append(p.warnings, fmt.Sprintf("%s changed since the canary started, so its pre-start spec is not restored; only its managed routes are set back to 100%% %s", vs.ref(), st.Stable))
		}
		target := st.StableSubset
		if phase == PhasePromoted {
			target = st.CanarySubset
		}
		for _, ref := range st.Routes {
			route, err := locateRoute(vs.spec(), ref)
			if err != nil {
				return fmt.Errorf("%v in %s; set its destinations by hand (kubectl edit virtualservice %s -n %s)", err, vs.ref(), vs.desired.GetName(), vs.desired.GetNamespace())
			}
			route["route"] = soleDestination(route, st.StableSubset, st.CanarySubset, target)
		}
		st.Matches, st.Sticky, st.Mirror = nil, false, 0
		if err := p.shapeExtras(vs, st); err != nil {
			return err
		}
	}
	closeState(st, phase)
	return nil
}

// pruneSubsets removes what start added to a DestinationRule, never a subset
// a route still uses. An untouched adopted object gets its exact pre-start spec.
func (p *planner) pruneSubsets(dr *object, st *State, phase Phase, inUse map[string]bool) {
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
			return fmt.Errorf("no canary in progress for service %s/%s: the last one was promoted (stable is now %s); start a new one with kubectl canary start %s", p.svc.namespace, p.svc.name, st.Stable, p.svc.name)
		case PhaseAborted:
			return fmt.Errorf("no canary in progress for service %s/%s: the last one was aborted (stable is %s); start a new one with kubectl canary start %s", p.svc.namespace, p.svc.name, st.Stable, p.svc.name)
		}
	}
	return fmt.Errorf("no canary in progress for service %s/%s; start one with kubectl canary start %s", p.svc.namespace, p.svc.name, p.svc.name)
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
		if dr.desired.GetName() == p.svc.name {
			return nil, fmt.Errorf("DestinationRule %s/%s exists but applies to host %q, not to service %s; rename it or point its host at the service", p.svc.namespace, p.svc.name, asString(dr.spec()["host"]), p.svc.name)
		}
	}
	dr := &object{desired: p.newObject("DestinationRule"), stage: StageSubsets}
	dr.spec()["host"] = p.svc.fqdn()
	p.drs = append(p.drs, dr)
	return dr, nil
}

func (p *planner) newVirtualService() (*object, error) {
	for _, vs := range p.vss {
		if vs.desired.GetName() == p.svc.name {
			return nil, fmt.Errorf("VirtualService %s/%s exists but does not route service %s; add a route to the service to it, or rename it", p.svc.namespace, p.svc.name, p.svc.name)
		}
	}
	vs := &object{desired: p.newObject("VirtualService"), stage: StageRoutes}
	spec := vs.spec()
	spec["hosts"] = []interface{}{p.svc.fqdn()}
	route := func() map[string]interface{} {
		return map[string]interface{}{"route": []interface{}{
			map[string]interface{}{"destination": map[string]interface{}{"host": p.svc.fqdn()}},
		}}
	}
	tcpPorts, otherPorts := portKinds(p.snap.Service)
	if otherPorts || !tcpPorts {
		spec["http"] = []interface{}{route()}
	}
	if tcpPorts {
		spec["tcp"] = []interface{}{route()}
	}
	p.vss = append(p.vss, vs)
	return vs, nil
}

// portKinds tells whether the Service declares TCP-only ports (by appProtocol
// or Istio's port-name prefix) and whether it has any other port.
func portKinds(svc *corev1.Service) (tcp, other bool) {
	for _, port := range svc.Spec.Ports {
		protocol := port.Name
		if port.AppProtocol != nil {
			protocol = *port.AppProtocol
		}
		protocol = strings.ToLower(strings.SplitN(protocol, "-", 2)[0])
		switch {
		case port.Protocol == corev1.ProtocolUDP:
		case protocol == "tcp" || protocol == "tls" || protocol == "https" || protocol == "mongo" || protocol == "mysql" || protocol == "redis":
			tcp = true
		default:
			other = true
		}
	}
	return tcp, other
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
			return "", fmt.Errorf("--stable %s: service %s/%s has no such version (%s values: %s)", v, p.svc.namespace, p.svc.name, versions.Label, strings.Join(versions.Values(), ", "))
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
					return "", fmt.Errorf("--canary %s and --canary-deployment %s disagree: that deployment is %s=%s; pass only one of them", canary, name, versions.Label, value)
				}
				canary, found = value, true
			}
		}
		if !found {
			return "", fmt.Errorf("--canary-deployment %s: no such deployment behind service %s/%s (deployments: %s)", name, p.svc.namespace, p.svc.name, deploymentNames(p.deployments))
		}
	}
	if canary != "" {
		if versions.ByName[canary] == nil {
			return "", fmt.Errorf("--canary %s: service %s/%s has no such version (%s values: %s)", canary, p.svc.namespace, p.svc.name, versions.Label, strings.Join(versions.Values(), ", "))
		}
		if canary == stable {
			return "", fmt.Errorf("canary %s=%s is the stable version of service %s/%s; pick another version with --canary, or set the stable one with --stable", versions.Label, canary, p.svc.namespace, p.svc.name)
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
		return "", fmt.Errorf("service %s/%s has several versions besides stable %s=%s: %s; pass --canary with one of them", p.svc.namespace, p.svc.name, versions.Label, stable, strings.Join(others, ", "))
	}
	return others[0], nil
}

// setState records st on the object. The update time moves only when the
// object really changes, so running a command twice writes nothing.
func (p *planner) setState(o *object, st *State) {
	o.touched = true
	st.SpecHash = specHash(o.spec())
	if prev, _ := p.recorded(o); prev != nil {
		st.UpdatedAt = prev.UpdatedAt
	}
	writeState(o.desired, st)
	if o.live == nil || !sameObject(o.live.Object, o.desired.Object) {
		st.UpdatedAt = p.snap.Now.UTC().Truncate(time.Second)
		writeState(o.desired, st)
	}
}

func (p *planner) plan(state *State) *Plan {
	plan := &Plan{Namespace: p.svc.namespace, Service: p.svc.name, Warnings: p.warnings}
	if state != nil {
		plan.State = *state
		plan.State.PreStartSpec = nil
	}
	for _, o := range append(append([]*object{}, p.drs...), p.vss...) {
		if o.touched {
			plan.Changes = append(plan.Changes, Change{Live: o.live, Desired: o.desired, Stage: o.stage})
		}
	}
	sort.SliceStable(plan.Changes, func(i, j int) bool { return plan.Changes[i].Stage < plan.Changes[j].Stage })
	return plan
}

func validateWeight(w int) error {
	if w < 0 || w > 100 {
		return fmt.Errorf("weight %d is out of range; give the canary's share as a whole number from 0 to 100", w)
	}
	return nil
}

func isCreatedByUs(obj *unstructured.Unstructured) bool {
	return obj != nil && obj.GetLabels()[ManagedByLabel] == ManagedByValue
}

func appendUnique(list []string, s string) []string {
	for _, have := range list {
		if have == s {
			return list
		}
	}
	return append(list, s)
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// sameObject compares decoded objects. Both sides hold what the API
// machinery decodes (int64 numbers), and the plan only ever writes int64.
func sameObject(a, b interface{}) bool {
	return reflect.DeepEqual(a, b)
}
