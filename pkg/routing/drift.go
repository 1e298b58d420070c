package routing

import (
	"fmt"
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Drift is where the live routing objects differ from what a canary
// recorded on them: the recorded state says what the plugin intended, the
// objects what the mesh routes now. A hand edit of the weights, a
// re-applied manifest, a GitOps sync of the pre-canary spec or a deleted
// object or subset all leave the record as it was; status and check show
// the difference, and weight, route and promote act on it (actOnDrift)
// instead of claiming a state that is not live.

// DriftKind says what differs.
type DriftKind string

const (
	// DriftWeight: a managed route's live split is not the recorded one.
	DriftWeight DriftKind = "Weight"
	// DriftRouteGone: a managed route is not found any more (by its name,
	// else its match), or no longer sends traffic to the canary's versions.
	DriftRouteGone DriftKind = "RouteGone"
	// DriftAddedRouteGone: a route the canary added for its match rules
	// or stickiness is gone, so matching requests no longer reach it.
	DriftAddedRouteGone DriftKind = "AddedRouteGone"
	// DriftSubsetGone: a DestinationRule subset the routes name is gone.
	DriftSubsetGone DriftKind = "SubsetGone"
	// DriftServiceGone: a per-version Service the routes name is gone.
	DriftServiceGone DriftKind = "ServiceGone"
	// DriftObjectGone: an object that carried the canary is gone, or lost
	// its record (replaced without the plugin's annotation).
	DriftObjectGone DriftKind = "ObjectGone"
	// DriftEdited: someone else changed the object since the plugin last
	// wrote it (its spec no longer has the recorded hash), where nothing
	// above says how.
	DriftEdited DriftKind = "Edited"
)

// Drift is one difference, on one object (and route).
type Drift struct {
	// Object is the object as CanaryStatus.Objects names it: Kind/name, or
	// Kind/namespace/name outside the Service's namespace.
	Object string `json:"object"`
	// Route is the route or rule, when the difference is in one.
	Route    string    `json:"route,omitempty"`
	What     DriftKind `json:"what"`
	Recorded string    `json:"recorded,omitempty"`
	Live     string    `json:"live,omitempty"`
	// liveSplit is Live's split of a DriftWeight, to tell whether a new
	// split replaces it.
	liveSplit []share
}

func (d Drift) String() string {
	where := d.Object
	if d.Route != "" {
		where += " " + d.Route
	}
	return fmt.Sprintf("%s: recorded %s, live %s", where, d.Recorded, d.Live)
}

// objectIn names the drift's object as errors and findings do, "Kind
// namespace/name", the Service's namespace filled in.
func (d Drift) objectIn(namespace string) string {
	parts := strings.Split(d.Object, "/")
	switch len(parts) {
	case 2:
		return parts[0] + " " + namespace + "/" + parts[1]
	case 3:
		return parts[0] + " " + parts[1] + "/" + parts[2]
	}
	return d.Object
}

// editHint is the kubectl edit command of the drift's object, "" when
// it names no one object.
func (d Drift) editHint(namespace string) string {
	parts := strings.Split(d.Object, "/")
	switch len(parts) {
	case 2:
		return fmt.Sprintf("kubectl edit %s %s -n %s", strings.ToLower(parts[0]), parts[1], namespace)
	case 3:
		return fmt.Sprintf("kubectl edit %s %s -n %s", strings.ToLower(parts[0]), parts[2], parts[1])
	}
	return ""
}

// Short is the drift in a few words, for status's DRIFT column.
func (d Drift) Short() string {
	switch d.What {
	case DriftWeight:
		return "split changed"
	case DriftRouteGone:
		return "route gone"
	case DriftAddedRouteGone:
		return "match route gone"
	case DriftSubsetGone:
		return "subset gone"
	case DriftServiceGone:
		return "Service gone"
	case DriftObjectGone:
		kind, _, _ := strings.Cut(d.Object, "/")
		return kind + " gone"
	}
	return "edited"
}

// Live is a canary's routing as the objects have it now.
type Live struct {
	// Weight is the canary's share on its managed routes, when every one
	// found gives it the same known share; nil otherwise (none found, they
	// differ, or a route sends traffic to the Service without a version,
	// which balances by pod count).
	Weight *int
	Drift  []Drift
	// lowest is the canary's lowest known share over its managed routes,
	// nil where none can be told: what a change must stay at or below
	// not to raise the canary's exposure (LiveCanary).
	lowest *int
}

// recordOn is a canary's state as one routing object records it.
type recordOn struct {
	obj *unstructured.Unstructured
	st  *State
}

// liveInput is what drift is judged from: the objects that record the
// canary, VirtualServices and Gateway API routes before DestinationRules,
// and the others read that may hold its routing.
type liveInput struct {
	svc     serviceRef
	records []recordOn
	// virtualServices and destinationRules are all of them read.
	virtualServices, destinationRules []*unstructured.Unstructured
	// services are the Services of the canary's namespace; nil when they
	// were not read, and then no per-version Service is judged gone.
	services []corev1.Service
}

// judgeLive compares the canary speaking records (its phase and
// versions) with the live objects. An aborted canary is not judged: abort
// may give an adopted object back its pre-start spec, whatever that was,
// so there is no split to expect.
func judgeLive(in liveInput, speaking *State) Live {
	var live Live
	if speaking == nil || speaking.Phase == PhaseAborted {
		return live
	}
	j := &liveJudge{in: in, speaking: speaking}
	var routeRecords, ruleRecords []recordOn
	for _, r := range in.records {
		if r.st.Phase != speaking.Phase {
			continue
		}
		switch {
		case r.obj.GetKind() == "DestinationRule":
			ruleRecords = append(ruleRecords, r)
		default:
			routeRecords = append(routeRecords, r)
		}
	}
	weights := map[int]bool{}
	known := true
	for _, r := range routeRecords {
		for _, w := range j.judgeRoutes(r) {
			if w < 0 {
				known = false
				continue
			}
			weights[w] = true
			if live.lowest == nil || w < *live.lowest {
				lowest := w
				live.lowest = &lowest
			}
		}
	}
	if len(ruleRecords) > 0 && !recordedOnRoutes(in.records) {
		j.objectGone(ruleRecords[0])
	}
	for _, r := range ruleRecords {
		j.otherNamespacesGone(r, routeRecords)
	}
	istio := len(ruleRecords) > 0
	for _, r := range routeRecords {
		istio = istio || r.obj.GetKind() == "VirtualService"
	}
	if istio {
		j.subsetsGone(ruleRecords)
	} else if len(routeRecords) > 0 {
		j.servicesGone()
	}
	for _, r := range append(routeRecords, ruleRecords...) {
		j.edited(r)
	}
	if speaking.Phase != PhaseProgressing {
		live.lowest = nil
	}
	if speaking.Phase == PhaseProgressing && known && len(weights) == 1 {
		for w := range weights {
			live.Weight = &w
		}
	}
	live.Drift = j.drift
	return live
}

// recordedOnRoutes says whether a VirtualService or route records the
// canary in any phase: one that records it promoted while the
// DestinationRule is still in progress is a promote cut short, which
// promote run again completes, not a VirtualService gone.
func recordedOnRoutes(records []recordOn) bool {
	for _, r := range records {
		if r.obj.GetKind() != "DestinationRule" {
			return true
		}
	}
	return false
}

type liveJudge struct {
	in       liveInput
	speaking *State
	drift    []Drift
	// drifted are the objects (by name) a drift other than Edited names.
	drifted map[string]bool
}

func (j *liveJudge) add(d Drift) {
	j.drift = append(j.drift, d)
	if d.What != DriftEdited {
		if j.drifted == nil {
			j.drifted = map[string]bool{}
		}
		j.drifted[d.Object] = true
	}
}

// name is how status names obj (CanaryStatus.Objects).
func (j *liveJudge) name(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() != j.in.svc.namespace {
		return obj.GetKind() + "/" + obj.GetNamespace() + "/" + obj.GetName()
	}
	return obj.GetKind() + "/" + obj.GetName()
}

// share is one destination of a split and its percentage of the route.
type share struct {
	to      string
	percent int
}

func splitText(shares []share) string {
	if len(shares) == 0 {
		return "nothing"
	}
	parts := make([]string, len(shares))
	for i, s := range shares {
		parts[i] = fmt.Sprintf("%s %d", s.to, s.percent)
	}
	return strings.Join(parts, " / ")
}

// expectedSplit is the split st's managed routes carry.
func expectedSplit(st *State) []share {
	if st.Phase == PhasePromoted || st.Canary == "" {
		return []share{{st.Stable, 100}}
	}
	return []share{{st.Stable, 100 - st.Weight}, {st.Canary, st.Weight}}
}

// SplitText words the split st's managed routes carry, "v1 90 / v2 10".
func (st State) SplitText() string { return splitText(expectedSplit(&st)) }

// sameSplit compares splits by what each destination gets, leaving out
// those that get nothing.
func sameSplit(a, b []share) bool {
	sum := func(shares []share) map[string]int {
		out := map[string]int{}
		for _, s := range shares {
			if s.percent != 0 {
				out[s.to] += s.percent
			}
		}
		return out
	}
	x, y := sum(a), sum(b)
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if y[k] != v {
			return false
		}
	}
	return true
}

// anyVersion names the Service as a destination without a version: its
// traffic balances over every version's pods by pod count.
func (j *liveJudge) anyVersion() string { return j.in.svc.name + " (any version)" }

// percents turns weights into percentages of their sum, as Envoy shares
// traffic between weighted clusters.
func percents(names []string, weights []int64) []share {
	var sum int64
	for _, w := range weights {
		if w > 0 {
			sum += w
		}
	}
	out := make([]share, 0, len(names))
	for i, name := range names {
		p := 0
		if sum > 0 && weights[i] > 0 {
			p = int(math.Round(float64(weights[i]) * 100 / float64(sum)))
		}
		out = append(out, share{name, p})
	}
	return out
}

// judgeRoutes judges the managed routes (and added routes) one object
// records, and returns the canary's live share on each managed route
// found, -1 where it cannot be told.
func (j *liveJudge) judgeRoutes(r recordOn) []int {
	st := r.st
	spec := asMap(r.obj.Object["spec"])
	gatewayAPI := isGatewayAPIRoute(r.obj)
	recorded := splitText(expectedSplit(st))
	var weights []int
	for _, ref := range st.Routes {
		route := ref.String()
		if gatewayAPI {
			route = describeRule(ref)
		}
		i, err := locateRoute(spec, ref)
		if err != nil {
			j.add(Drift{Object: j.name(r.obj), Route: route, What: DriftRouteGone, Recorded: recorded, Live: "gone"})
			continue
		}
		var shares []share
		var ours bool
		if gatewayAPI {
			shares, ours = j.ruleSplit(r.obj, asMap(rulesOf(spec)[i]), st)
		} else {
			shares, ours = j.routeSplit(r.obj, asMap(routesOf(spec, ref.Kind)[i]), st)
		}
		// A promoted canary's route sent anywhere but the new stable
		// version is a changed split; promote refuses either way.
		if !ours && st.Phase == PhaseProgressing {
			j.add(Drift{Object: j.name(r.obj), Route: route, What: DriftRouteGone, Recorded: recorded, Live: "sends " + splitText(shares) + " (no longer the canary's versions)"})
			continue
		}
		if !sameSplit(shares, expectedSplit(st)) {
			j.add(Drift{Object: j.name(r.obj), Route: route, What: DriftWeight, Recorded: recorded, Live: splitText(shares), liveSplit: shares})
		}
		w := 0
		for _, s := range shares {
			switch s.to {
			case st.Canary:
				w += s.percent
			case j.anyVersion():
				if s.percent > 0 {
					w = -1000
				}
			}
		}
		weights = append(weights, max(w, -1))
	}
	if st.Phase == PhaseProgressing {
		j.addedRoutesGone(r, spec, gatewayAPI)
	}
	return weights
}

// routeSplit is a VirtualService route's live split, and whether it still
// sends traffic to the canary's subsets or the Service (as findManaged
// tells a managed route).
func (j *liveJudge) routeSplit(vs *unstructured.Unstructured, route map[string]interface{}, st *State) ([]share, bool) {
	dests := destinationsOf(route)
	names := make([]string, 0, len(dests))
	weights := make([]int64, 0, len(dests))
	ours := false
	for _, raw := range dests {
		d := asMap(raw)
		subset := destinationSubset(d)
		name := destinationHost(d)
		if j.in.svc.isHost(name, vs.GetNamespace()) {
			switch {
			case subset == "":
				name = j.anyVersion()
			case subset == st.StableSubset:
				name = st.Stable
			case subset == st.CanarySubset && st.Canary != "":
				name = st.Canary
			default:
				name = "subset " + subset
			}
		} else if subset != "" {
			name += " subset " + subset
		}
		switch subset {
		case "", st.StableSubset, st.CanarySubset:
			ours = true
		}
		names = append(names, name)
		weights = append(weights, destinationWeight(d, len(dests)))
	}
	return percents(names, weights), ours
}

// ruleSplit is a Gateway API rule's live split between the backendRefs,
// and whether it still sends traffic to the canary's Services or the
// Service (as findManagedRule tells a managed rule).
func (j *liveJudge) ruleSplit(route *unstructured.Unstructured, rule map[string]interface{}, st *State) ([]share, bool) {
	refs := backendRefsOf(rule)
	names := make([]string, 0, len(refs))
	weights := make([]int64, 0, len(refs))
	ours := false
	for _, raw := range refs {
		ref := asMap(raw)
		name := asString(ref["name"])
		if serviceRefNamespace(ref, route.GetNamespace()) == j.in.svc.namespace {
			switch name {
			case j.in.svc.name:
				name, ours = j.anyVersion(), true
			case st.StableSubset:
				name, ours = st.Stable, true
			case st.CanarySubset:
				if st.CanarySubset != "" {
					name, ours = st.Canary, true
				}
			default:
				name = "Service " + name
			}
		} else {
			name = asString(ref["kind"]) + " " + name
		}
		names = append(names, name)
		weights = append(weights, backendWeight(ref))
	}
	return percents(names, weights), ours
}

// addedRoutesGone reports the routes the canary added (match rules, the
// sticky cookie's) that the object no longer has.
func (j *liveJudge) addedRoutesGone(r recordOn, spec map[string]interface{}, gatewayAPI bool) {
	names := map[string]bool{}
	if gatewayAPI {
		for _, raw := range rulesOf(spec) {
			names[asString(asMap(raw)["name"])] = true
		}
	} else {
		for _, kind := range routeKinds {
			for _, raw := range routesOf(spec, kind) {
				names[asString(asMap(raw)["name"])] = true
			}
		}
	}
	for _, name := range r.st.AddedRoutes {
		if !names[name] {
			what := "route"
			if gatewayAPI {
				what = "rule"
			}
			j.add(Drift{Object: j.name(r.obj), Route: fmt.Sprintf("%s %q", what, name), What: DriftAddedRouteGone, Recorded: "sends the matching requests to " + r.st.Canary, Live: "gone"})
		}
	}
}

// objectGone reports a canary that DestinationRules record and no
// VirtualService does: they were deleted, or replaced by objects without
// the record (kubectl replace, a sync that drops annotations). Those of
// the namespace that route the Service without the record are named.
func (j *liveJudge) objectGone(dr recordOn) {
	var unrecorded []string
	for _, vs := range j.in.virtualServices {
		if vs.GetNamespace() == j.in.svc.namespace && routesToService(asMap(vs.Object["spec"]), j.in.svc, vs.GetNamespace()) {
			unrecorded = append(unrecorded, j.name(vs))
		}
	}
	live := "no VirtualService records the canary"
	if len(unrecorded) > 0 {
		live += fmt.Sprintf("; %s routes the Service without the record (replaced?)", strings.Join(unrecorded, ", "))
	} else {
		live += "; no VirtualService routes the Service, which balances over every version's pods"
	}
	j.add(Drift{Object: "VirtualService", What: DriftObjectGone, Recorded: fmt.Sprintf("canary %s=%s on the VirtualServices routing the Service (recorded on %s)", j.speaking.VersionLabel, j.speaking.Canary, j.name(dr.obj)), Live: live})
}

// otherNamespacesGone reports the VirtualServices of other namespaces a
// DestinationRule records as carrying the canary that no longer do.
func (j *liveJudge) otherNamespacesGone(dr recordOn, routeRecords []recordOn) {
	have := map[string]bool{}
	for _, r := range routeRecords {
		have[r.obj.GetNamespace()+"/"+r.obj.GetName()] = true
	}
	for _, ref := range dr.st.OtherNamespaces {
		if have[ref] {
			continue
		}
		j.add(Drift{Object: "VirtualService/" + ref, What: DriftObjectGone, Recorded: "carries the canary (recorded on " + j.name(dr.obj) + ")", Live: "gone, or without the record"})
	}
}

// subsetsGone reports the subsets the canary's routes name that the
// Service's DestinationRule no longer defines (or the DestinationRule
// itself gone). With several DestinationRules for the host, check
// reports that instead.
func (j *liveJudge) subsetsGone(ruleRecords []recordOn) {
	var rules []*unstructured.Unstructured
	for _, dr := range j.in.destinationRules {
		if j.in.svc.isHost(asString(asMap(dr.Object["spec"])["host"]), dr.GetNamespace()) {
			rules = append(rules, dr)
		}
	}
	if len(rules) > 1 {
		return
	}
	object := "DestinationRule/" + j.in.svc.name
	defined := map[string]bool{}
	live := "gone"
	if len(rules) == 1 {
		object = j.name(rules[0])
		for _, raw := range subsetsOf(asMap(rules[0].Object["spec"])) {
			defined[asString(asMap(raw)["name"])] = true
		}
	} else {
		live = "gone: no DestinationRule of the Service's host"
		if len(ruleRecords) > 0 {
			object = j.name(ruleRecords[0].obj)
		}
	}
	st := j.speaking
	for _, s := range j.wanted() {
		if !defined[s.subset] {
			j.add(Drift{Object: object, Route: "subset " + s.subset, What: DriftSubsetGone, Recorded: fmt.Sprintf("selects %s=%s", st.VersionLabel, s.version), Live: live})
		}
	}
}

// servicesGone reports the per-version Services of a Gateway API canary
// that no longer exist.
func (j *liveJudge) servicesGone() {
	if j.in.services == nil {
		return
	}
	exists := map[string]bool{}
	for _, s := range j.in.services {
		if s.Namespace == "" || s.Namespace == j.in.svc.namespace {
			exists[s.Name] = true
		}
	}
	st := j.speaking
	for _, s := range j.wanted() {
		if !exists[s.subset] {
			j.add(Drift{Object: "Service/" + s.subset, What: DriftServiceGone, Recorded: fmt.Sprintf("selects %s=%s for the routes", st.VersionLabel, s.version), Live: "gone"})
		}
	}
}

type versionTarget struct{ subset, version string }

// wanted are the subsets (or per-version Services) the canary's routes
// name: the stable and the canary's in progress, the stable's once
// promoted.
func (j *liveJudge) wanted() []versionTarget {
	st := j.speaking
	out := []versionTarget{{st.StableSubset, st.Stable}}
	if st.Phase == PhaseProgressing && st.CanarySubset != "" {
		out = append(out, versionTarget{st.CanarySubset, st.Canary})
	}
	kept := out[:0]
	for _, t := range out {
		if t.subset != "" {
			kept = append(kept, t)
		}
	}
	return kept
}

// edited reports an object whose spec is not the one the plugin last
// wrote, where no other drift says what changed.
func (j *liveJudge) edited(r recordOn) {
	name := j.name(r.obj)
	// An object that carries several Services' canaries changes with
	// each one's writes, which leave the others' hashes behind: no edit
	// can be told from those.
	if r.st.SpecHash == "" || j.drifted[name] || len(StatesOn(r.obj)) > 1 {
		return
	}
	if got := specHash(asMap(r.obj.Object["spec"])); got != r.st.SpecHash {
		j.add(Drift{Object: name, What: DriftEdited, Recorded: "spec hash " + r.st.SpecHash, Live: "spec hash " + got})
	}
}

// speakingState is the canary a drift is judged for: the one in
// progress, else the first recorded (VirtualServices and routes first).
func speakingState(records []recordOn) *State {
	for _, r := range records {
		if r.st.Phase == PhaseProgressing {
			return r.st
		}
	}
	if len(records) > 0 {
		return records[0].st
	}
	return nil
}

// live judges the snapshot's objects against the Service's canary.
func (p *planner) live() (Live, *State) {
	in := liveInput{svc: p.svc, virtualServices: p.snap.VirtualServices, destinationRules: p.snap.DestinationRules, services: p.snap.Services}
	for _, o := range p.backend.objects() {
		if o.live == nil {
			continue
		}
		if st, err := p.recorded(o); err == nil && st != nil {
			in.records = append(in.records, recordOn{obj: o.live, st: st})
		}
	}
	speaking := speakingState(in.records)
	return judgeLive(in, speaking), speaking
}

// actOnDrift decides what weight, route and promote do about drift,
// before they plan anything. The rule: a verb re-asserts the canary where
// the plugin can tell exactly what to write, and refuses, naming the
// object and the change, where it cannot.
//
//   - A managed route's split changed (hand edit, re-applied manifest,
//     GitOps sync): weight re-asserts its split on the managed routes,
//     which are still where they were, and promote sends them all to the
//     canary; both say which live split they replaced (Plan.Replaced).
//     route would keep the split as it is while its summary states the
//     recorded weight, so it refuses and points to weight.
//   - A subset or per-version Service gone: weight adds it back (it is
//     the plugin's own, a version label's selector, and the routes that
//     name it fail without it). route and promote, which do not add it,
//     refuse when they would route to it.
//   - A route the canary added for its match rules gone: weight and
//     route add it again; promote removes such routes anyway.
//   - A managed route gone or pointed elsewhere, a VirtualService that
//     carried the canary gone or without its record: which routes are to
//     carry the canary is no longer known, and writing them would be
//     guessing; every verb refuses and points to abort (back to stable)
//     and start (a new canary on the routes as they are).
//   - Edited elsewhere only: the verbs write the managed routes and keep
//     the other changes, as always.
//   - A promoted canary whose routes changed since: promote has nothing
//     left to do and will not claim it is done; it refuses.
func (p *planner) actOnDrift() error {
	switch p.intent.Action {
	case ActionWeight, ActionRoute, ActionPromote:
	default:
		return nil
	}
	if _, err := p.states(); err != nil {
		return nil // the action itself reports the unreadable record
	}
	live, speaking := p.live()
	if speaking == nil || (speaking.Phase != PhaseProgressing && p.intent.Action != ActionPromote) {
		return nil
	}
	var refused []Drift
	for _, d := range live.Drift {
		switch {
		case d.What == DriftEdited:
		case speaking.Phase != PhaseProgressing:
			refused = append(refused, d)
		case d.What == DriftRouteGone || d.What == DriftObjectGone:
			refused = append(refused, d)
		case d.What == DriftWeight:
			if p.intent.Action == ActionRoute {
				refused = append(refused, d)
			} else if !sameSplit(d.liveSplit, p.newSplit(speaking)) {
				p.replaced = append(p.replaced, d)
			}
		case d.What == DriftSubsetGone || d.What == DriftServiceGone:
			if p.intent.Action == ActionRoute || (p.intent.Action == ActionPromote && d.names(speaking.CanarySubset)) {
				refused = append(refused, d)
			}
		case d.What == DriftAddedRouteGone:
			if p.intent.Action != ActionPromote {
				p.replaced = append(p.replaced, d)
			}
		}
	}
	if len(refused) == 0 {
		return nil
	}
	p.replaced = nil
	return p.driftError(speaking, refused)
}

// newSplit is the split weight or promote gives the managed routes.
func (p *planner) newSplit(speaking *State) []share {
	next := *speaking
	if p.intent.Action == ActionPromote {
		next.Phase, next.Stable = PhasePromoted, speaking.Canary
	} else {
		next.Weight = p.intent.Weight
	}
	return expectedSplit(&next)
}

// names says whether the drift is about the subset or per-version Service name.
func (d Drift) names(name string) bool {
	return name != "" && (d.Route == "subset "+name || d.Object == "Service/"+name)
}

func (p *planner) driftError(speaking *State, refused []Drift) error {
	lines := make([]string, len(refused))
	onlySplit := true
	edit := ""
	for i, d := range refused {
		where := d.objectIn(p.svc.namespace)
		if d.Route != "" {
			where += " " + d.Route
		}
		lines[i] = fmt.Sprintf("  %s: recorded %s, live %s", where, d.Recorded, d.Live)
		onlySplit = onlySplit && (d.What == DriftWeight || d.What == DriftSubsetGone || d.What == DriftServiceGone)
		if d.What == DriftRouteGone && edit == "" {
			edit = " (" + d.editHint(p.svc.namespace) + ")"
		}
	}
	svc := p.svc.namespace + "/" + p.svc.name
	head := fmt.Sprintf("the live routing of service %s is not what its canary recorded, so %s would not act on what is live; nothing was changed:\n%s\n", svc, p.intent.Action, strings.Join(lines, "\n"))
	// The commands suggested carry {Target}: the caller's flags that pick
	// this Service, so that they act on it when pasted.
	switch {
	case speaking.Phase == PhasePromoted:
		return Errorf("%sThe canary was promoted (%s=%s is stable) and the routing changed since: promote has nothing to write that is recorded. Set the routes back by hand or in Git, or start a new canary (kubectl canary start %s{Target})", head, speaking.VersionLabel, speaking.Stable, p.svc.name)
	case onlySplit:
		return Errorf("%sRun kubectl canary weight %s N{Target} first: it re-asserts the split (and the canary's subsets) on the live routes; or kubectl canary abort %s{Target} to send everything to stable", head, p.svc.name, p.svc.name)
	default:
		return Errorf("%sWhich routes carry the canary is no longer known, so nothing is guessed. Put the routing back%s, or run kubectl canary abort %s{Target} (all traffic to stable %s=%s) and start again on the routes as they are", head, edit, p.svc.name, speaking.VersionLabel, speaking.Stable)
	}
}

// LiveOf judges the snapshot's routing objects against the Service's
// canary, the one in progress or else the last recorded.
func LiveOf(snap Snapshot, service string) Live {
	namespace := ""
	if snap.Service != nil {
		namespace = snap.Service.Namespace
	}
	live, _ := newPlanner(snap, Intent{}, serviceRef{name: service, namespace: namespace}).live()
	return live
}

// driftFindings are check's findings about drift, each with its fix.
// Severity follows what the canary can still do: a route or object gone
// leaves it unmanageable, and a subset or Service gone fails requests
// now: errors. A changed split or match route and an edit elsewhere
// leave it working and weight re-asserts it: warnings.
func (c *checker) driftFindings() {
	live, speaking := c.p.live()
	svc := c.p.svc.name
	for _, d := range live.Drift {
		object := c.findingObject(d)
		where := ""
		if d.Route != "" {
			where = d.Route + " "
		}
		if speaking.Phase != PhaseProgressing && d.What != DriftEdited {
			// Nothing runs that weight could re-assert: the routing is
			// what it is now, and the record is history.
			c.add(SeverityWarning, object, "%srecorded %s, live %s: the routing changed since the canary was promoted (%s=%s stable). Set it back by hand or in Git, or start a new canary (kubectl canary start %s{Target})", where, d.Recorded, d.Live, speaking.VersionLabel, speaking.Stable, svc)
			continue
		}
		switch d.What {
		case DriftWeight:
			c.add(SeverityWarning, object, "%ssends %s, not the recorded %s: someone changed the split (a hand edit, a re-applied manifest or a GitOps sync). kubectl canary weight %s N{Target} re-asserts a split on the live routes; kubectl canary abort %s{Target} sends everything to stable", where, d.Live, d.Recorded, svc, svc)
		case DriftRouteGone:
			c.add(SeverityError, object, "managed %sis %s (it carried %s): weight and promote refuse until it is back. Put the route back, or run kubectl canary abort %s{Target} and start again on the routes as they are", where, d.Live, d.Recorded, svc)
		case DriftAddedRouteGone:
			c.add(SeverityWarning, object, "%sthat the canary added (it %s) is gone, so those requests no longer reach the canary. kubectl canary weight %s N{Target} adds it again", where, d.Recorded, svc)
		case DriftSubsetGone, DriftServiceGone:
			what := d.Route
			if d.What == DriftServiceGone {
				what = "per-version Service " + strings.TrimPrefix(d.Object, "Service/")
			}
			c.add(SeverityError, object, "%s of the running canary (it %s) is %s, so the routes that name it fail those requests. kubectl canary weight %s N{Target} adds it back; kubectl canary abort %s{Target} sends everything to stable", what, d.Recorded, d.Live, svc, svc)
		case DriftObjectGone:
			c.add(SeverityError, object, "recorded: %s; live: %s. Weight and promote refuse; run kubectl canary abort %s{Target} to send everything to stable %s=%s, then start again", d.Recorded, d.Live, svc, speaking.VersionLabel, speaking.Stable)
		case DriftEdited:
			c.add(SeverityWarning, object, "was changed by someone else since kubectl canary last wrote it (%s, recorded %s); the canary's managed routes are as recorded, and abort resets just them rather than restoring the spec from before start", d.Live, d.Recorded)
		}
	}
}

// findingObject names a drift's object the way findings do (Kind ns/name).
func (c *checker) findingObject(d Drift) string {
	if !strings.Contains(d.Object, "/") {
		return d.Object + " of " + c.svcRef
	}
	return d.objectIn(c.p.svc.namespace)
}
