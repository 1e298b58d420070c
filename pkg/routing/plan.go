package routing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
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
	// RoutingAPI is the routing API the canary is to run on (start); ""
	// and RoutingAPIAuto let ChooseRoutingAPI decide.
	RoutingAPI RoutingAPI
}

// GatewayIntent asks for external traffic entering an Istio ingress gateway
// for some hosts to get the canary's split too.
type GatewayIntent struct {
	// Namespace and Name of the Gateway object.
	Namespace, Name string
	Hosts           []string
}

func (g GatewayIntent) ref() string { return g.Namespace + "/" + g.Name }

// Snapshot is what the core is told about the cluster.
type Snapshot struct {
	Service          *corev1.Service
	Deployments      []appsv1.Deployment
	VirtualServices  []*unstructured.Unstructured
	DestinationRules []*unstructured.Unstructured
	// Services of the namespace, when read (kubectl canary check reads them
	// to find routes to hosts no Service backs).
	Services []corev1.Service
	// Warnings are things the reader noticed, passed on with the plan.
	Warnings []string
	// Gateways holds the Gateway an intent names, when it exists.
	Gateways []*unstructured.Unstructured
	// GatewayAPIRoutes are the Gateway API routes (GatewayAPIRouteKinds)
	// of the namespace, when read (start and check; every command of a
	// canary that runs on the Gateway API).
	GatewayAPIRoutes []*unstructured.Unstructured
	// GatewayAPIVersions are the apiVersions the cluster serves for the
	// Gateway API kinds, by kind ("HTTPRoute": "gateway.networking.k8s.io/v1"),
	// for the routes the plan creates; a kind missing gets
	// DefaultGatewayAPIVersions'.
	GatewayAPIVersions map[string]string
	// Namespace is the Service's namespace, when read: its labels say
	// whether it runs in Istio's ambient mode and names a waypoint.
	Namespace *corev1.Namespace
	// IstioServed and GatewayAPIServed say whether the cluster serves
	// Istio's VirtualServices and the Gateway API's HTTPRoutes. Both false
	// means the reader did not look, and the choice of API ignores them.
	IstioServed, GatewayAPIServed bool
	// ArgoCDApplications are the Argo CD Applications the routing objects
	// name (ArgoCDApplicationsNamed), by namespace/name, as far as read.
	ArgoCDApplications map[string]ArgoCDApplication
	// APIVersion is the networking.istio.io version for objects the plan creates.
	APIVersion string
	Now        time.Time
	// InManifests says the routing objects are manifest files, edited in
	// place of the live objects: no GitOps tool reverts an edit to them.
	InManifests bool
	// ReadinessUnknown says the Deployments were read from manifests,
	// which carry no status, so their readiness cannot be checked.
	ReadinessUnknown bool
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
	// Delete says the object must be deleted (Live, with its
	// resourceVersion as the precondition); Desired is then Live's copy.
	// Only per-version Services a Gateway API canary created are ever
	// deleted, at StagePrune, once no route names them.
	Delete bool
}

// Changed reports whether the object must be written.
func (c Change) Changed() bool {
	return c.Delete || c.Live == nil || !sameObject(c.Live.Object, c.Desired.Object)
}

// Plan is the outcome of an intent: the objects to write, in order.
type Plan struct {
	Namespace string
	Service   string
	// State is the canary as it stands once the plan is written.
	State    State
	Changes  []Change
	Warnings []string
	// Replaced is the drift the plan writes over: live splits someone
	// changed, and routes the canary added that were gone (actOnDrift).
	Replaced []Drift
	// PreStartShares are the shares of traffic the managed routes gave the
	// canary before start, which an abort sent to stable too.
	PreStartShares []PreStartShare
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

// object is a routing object being planned: its live form and a copy that
// the plan edits.
type object struct {
	live    *unstructured.Unstructured
	desired *unstructured.Unstructured
	stage   Stage
	touched bool
	// remove says the plan deletes the object (Change.Delete).
	remove bool
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

// liveSpecJSON is the live spec as State.PreStartSpec records it.
func (o *object) liveSpecJSON() (json.RawMessage, error) {
	data, err := json.Marshal(o.liveSpec())
	if err != nil {
		return nil, fmt.Errorf("cannot record the spec of %s for abort to restore: %v", o.ref(), err)
	}
	return data, nil
}

func (o *object) ref() string {
	return fmt.Sprintf("%s %s/%s", o.desired.GetKind(), o.desired.GetNamespace(), o.desired.GetName())
}

// planner plans one intent: what it decides does not depend on the routing
// API, which its backend reads and shapes.
type planner struct {
	snap        Snapshot
	intent      Intent
	svc         serviceRef
	deployments []*appsv1.Deployment
	backend     backend
	warnings    []string
	// replaced is the drift the plan writes over (Plan.Replaced).
	replaced []Drift
	// preStartShares are found by abort (Plan.PreStartShares).
	preStartShares []PreStartShare
}

// newPlanner plans for svc, on the routing API usesGatewayAPI picks.
func newPlanner(snap Snapshot, intent Intent, svc serviceRef) *planner {
	if svc.clusterDomain == "" {
		svc.clusterDomain = DefaultClusterDomain
	}
	p := &planner{snap: snap, intent: intent, svc: svc}
	if usesGatewayAPI(snap, intent, svc) {
		p.backend = newGatewayAPIBackend(p)
	} else {
		p.backend = newIstioBackend(p)
	}
	return p
}

// Compute plans an intent against a snapshot. It never touches a cluster.
func Compute(snap Snapshot, intent Intent) (*Plan, error) {
	if snap.Service == nil {
		return nil, fmt.Errorf("no service given")
	}
	if err := refuseAskedRoutingAPI(snap, intent); err != nil {
		return nil, err
	}
	p := newPlanner(snap, intent, serviceRef{name: snap.Service.Name, namespace: snap.Service.Namespace, clusterDomain: intent.ClusterDomain})
	var err error
	if p.deployments, err = backingDeployments(snap.Service, snap.Deployments); err != nil {
		return nil, err
	}
	if err := p.actOnDrift(); err != nil {
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
	for _, o := range p.backend.objects() {
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

// RunningCanary is the canary in progress on the Service, as the
// snapshot's routing objects record it (a VirtualService's record first),
// nil when none runs. A record that cannot be read is an error.
func RunningCanary(snap Snapshot, service string) (*State, error) {
	return newPlanner(snap, Intent{}, serviceRef{name: service}).activeState()
}

// setState records st on the object. The update time moves only when the
// object really changes, so running a command twice writes nothing.
func (p *planner) setState(o *object, st *State) {
	o.touched = true
	st.Namespace = ""
	if o.desired.GetNamespace() != p.svc.namespace {
		st.Namespace = p.svc.namespace
	}
	st.SpecHash = specHash(o.spec())
	prev, _ := p.recorded(o)
	if prev != nil {
		st.UpdatedAt = prev.UpdatedAt
	}
	// The plan changes only the spec and this annotation, so comparing those
	// tells whether the object changes; the state is encoded once.
	if o.live == nil || prev == nil || !sameObject(o.liveSpec(), o.spec()) || !sameState(prev, st) {
		st.UpdatedAt = p.snap.Now.UTC().Truncate(time.Second)
		writeState(o.desired, st)
	}
	// Otherwise the object keeps its annotations as they are: a command
	// that changes nothing writes nothing, also where the state is recorded
	// the way an earlier version did.
}

// sameState compares two states as they would be recorded.
func sameState(a, b *State) bool {
	if !bytes.Equal(a.PreStartSpec, b.PreStartSpec) {
		return false
	}
	x, y := *a, *b
	x.PreStartSpec, y.PreStartSpec = nil, nil
	dx, errX := json.Marshal(x)
	dy, errY := json.Marshal(y)
	return errX == nil && errY == nil && bytes.Equal(dx, dy)
}

func (p *planner) plan(state *State) *Plan {
	plan := &Plan{Namespace: p.svc.namespace, Service: p.svc.name, Warnings: append(append([]string(nil), p.snap.Warnings...), p.warnings...), Replaced: p.replaced, PreStartShares: p.preStartShares}
	if state != nil {
		plan.State = *state
		plan.State.PreStartSpec = nil
	}
	// Sorted by stage below, so the backend's order only orders the objects
	// of one stage.
	for _, o := range p.backend.objects() {
		if o.touched {
			plan.Changes = append(plan.Changes, Change{Live: o.live, Desired: o.desired, Stage: o.stage, Delete: o.remove})
		}
	}
	sort.SliceStable(plan.Changes, func(i, j int) bool { return plan.Changes[i].Stage < plan.Changes[j].Stage })
	return plan
}

// validateWeight refuses a weight that is no percentage. Callers check the
// weights users give (with the words of their flags), so one that gets
// here comes from a bug or a corrupted recorded state.
func validateWeight(w int) error {
	if w < 0 || w > 100 {
		return fmt.Errorf("weight %d is outside 0 to 100, so it is no share of traffic; the caller passed it unchecked or read it from a corrupted state", w)
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
	return equality.Semantic.DeepEqual(a, b)
}

// editProgressing edits each object that records the canary in progress,
// records the edited state on it, and returns the first object's state
// (nil when none records it): how weight and route change a running canary.
func (p *planner) editProgressing(objects []*object, edit func(o *object, st *State) error) (*State, error) {
	var first *State
	for _, o := range objects {
		st := p.progressingState(o)
		if st == nil {
			continue
		}
		if err := edit(o, st); err != nil {
			return nil, err
		}
		p.setState(o, st)
		if first == nil {
			first = st
		}
	}
	return first, nil
}
