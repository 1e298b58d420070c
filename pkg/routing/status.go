package routing

import (
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// CanaryStatus is one Service's canary as status shows it.
type CanaryStatus struct {
	// Cluster is the kubeconfig context of the cluster it runs in, when a
	// command looks at several (--contexts).
	Cluster string `json:"cluster,omitempty"`
	// DiffersFromClusters names the other clusters where the same canary
	// has another weight, phase or versions.
	DiffersFromClusters []string `json:"differsFromClusters,omitempty"`
	Namespace           string   `json:"namespace"`
	Service             string   `json:"service"`
	// RoutingAPI is the API the canary's routing is written in.
	RoutingAPI   RoutingAPI  `json:"routingAPI,omitempty"`
	VersionLabel string      `json:"versionLabel"`
	Stable       string      `json:"stable"`
	Canary       string      `json:"canary,omitempty"`
	PromotedFrom string      `json:"promotedFrom,omitempty"`
	Weight       int         `json:"weight"`
	Phase        Phase       `json:"phase"`
	Matches      []MatchRule `json:"matches,omitempty"`
	Sticky       bool        `json:"sticky,omitempty"`
	Mirror       int         `json:"mirror,omitempty"`
	// GatewayHosts are the external hosts whose gateway traffic is split.
	GatewayHosts []string  `json:"gatewayHosts,omitempty"`
	StableReady  Ready     `json:"stableReady"`
	CanaryReady  *Ready    `json:"canaryReady,omitempty"`
	StartedAt    time.Time `json:"startedAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	// Objects are the routing objects carrying the state, as kind/name.
	Objects []string `json:"objects"`
	// Run is the progress of kubectl canary run, when one drives the canary.
	Run *RunState `json:"run,omitempty"`
	// ManagedBy names the GitOps tools that reconcile the canary's objects
	// from Git, as "Kind/name: tool".
	ManagedBy []string `json:"managedBy,omitempty"`
	// LiveWeight is the canary's share that its managed routes give it
	// now, read from the live objects (Weight is the recorded one); absent
	// when the routes found disagree or none is found (Drift says why), and
	// for a canary not in progress.
	LiveWeight *int `json:"liveWeight,omitempty"`
	// Drift lists where the live routing objects differ from the record;
	// empty when they do not.
	Drift []Drift `json:"drift"`
}

// Ready counts available and desired replicas of a version.
type Ready struct {
	Available int32 `json:"available"`
	Desired   int32 `json:"desired"`
	// Unknown says the Deployments were read from manifests, which carry
	// no status: Available is not known.
	Unknown bool `json:"unknown,omitempty"`
}

func (r Ready) String() string {
	if r.Unknown {
		return fmt.Sprintf("?/%d", r.Desired)
	}
	return fmt.Sprintf("%d/%d", r.Available, r.Desired)
}

// canaryKey names a Service whose canary a routing object records.
type canaryKey struct{ namespace, service string }

// Summarize finds every canary recorded on the given routing objects and
// joins it with the readiness of its versions. The VirtualService's state
// speaks for the canary; a DestinationRule's only when no VirtualService has one.
func Summarize(services []corev1.Service, deployments []appsv1.Deployment, virtualServices, destinationRules []*unstructured.Unstructured) []CanaryStatus {
	return SummarizeRouting(services, deployments, virtualServices, destinationRules, nil)
}

// SummarizeRouting is Summarize over the canaries recorded on Gateway API
// routes too, whose state speaks for them as a VirtualService's does.
func SummarizeRouting(services []corev1.Service, deployments []appsv1.Deployment, virtualServices, destinationRules, gatewayAPIRoutes []*unstructured.Unstructured) []CanaryStatus {
	found, records := recordedCanaries(append(append(append([]*unstructured.Unstructured{}, virtualServices...), gatewayAPIRoutes...), destinationRules...))
	servicesByKey := map[canaryKey]*corev1.Service{}
	for i := range services {
		servicesByKey[canaryKey{services[i].Namespace, services[i].Name}] = &services[i]
	}
	deploymentsByNamespace := map[string][]*appsv1.Deployment{}
	for i := range deployments {
		d := &deployments[i]
		deploymentsByNamespace[d.Namespace] = append(deploymentsByNamespace[d.Namespace], d)
	}
	out := make([]CanaryStatus, 0, len(found))
	for k, cs := range found {
		if svc := servicesByKey[k]; svc != nil && len(svc.Spec.Selector) > 0 {
			selector := labels.SelectorFromSet(svc.Spec.Selector)
			cs.StableReady = versionReadiness(deploymentsByNamespace[k.namespace], selector, cs.VersionLabel, cs.Stable)
			if cs.Canary != "" {
				r := versionReadiness(deploymentsByNamespace[k.namespace], selector, cs.VersionLabel, cs.Canary)
				cs.CanaryReady = &r
			}
		}
		sort.Strings(cs.Objects)
		in := liveInput{svc: serviceRef{name: k.service, namespace: k.namespace}, records: records[k], virtualServices: virtualServices, destinationRules: destinationRules}
		for _, svc := range services {
			if svc.Namespace == k.namespace {
				in.services = append(in.services, svc)
			}
		}
		if in.services == nil {
			in.services = []corev1.Service{}
		}
		live := judgeLive(in, speakingState(records[k]))
		cs.Drift = append([]Drift{}, live.Drift...)
		if cs.Phase == PhaseProgressing {
			cs.LiveWeight = live.Weight
		}
		out = append(out, *cs)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Service < out[j].Service
	})
	return out
}

// recordedCanaries reads the canaries the objects record, by Service; the
// first object that records one gives its state, every one is listed,
// and its record kept for judging the live routing.
func recordedCanaries(objects []*unstructured.Unstructured) (map[canaryKey]*CanaryStatus, map[canaryKey][]recordOn) {
	found := map[canaryKey]*CanaryStatus{}
	records := map[canaryKey][]recordOn{}
	for _, obj := range objects {
		states := StatesOn(obj)
		services := make([]string, 0, len(states))
		for service := range states {
			services = append(services, service)
		}
		sort.Strings(services)
		for _, service := range services {
			st := states[service]
			k := canaryKey{obj.GetNamespace(), service}
			if st.Namespace != "" {
				k.namespace = st.Namespace
			}
			cs := found[k]
			if cs == nil {
				cs = &CanaryStatus{
					Namespace: k.namespace, Service: service, RoutingAPI: routingAPIOf(obj), VersionLabel: st.VersionLabel,
					Stable: st.Stable, Canary: st.Canary, PromotedFrom: st.PromotedFrom,
					Weight: st.Weight, Phase: st.Phase, StartedAt: st.StartedAt, UpdatedAt: st.UpdatedAt,
					Matches: st.Matches, Sticky: st.Sticky, Mirror: st.Mirror, Run: st.Run,
				}
				found[k] = cs
			}
			ref := obj.GetKind() + "/" + obj.GetName()
			if obj.GetNamespace() != k.namespace {
				ref = obj.GetKind() + "/" + obj.GetNamespace() + "/" + obj.GetName()
			}
			cs.Objects = append(cs.Objects, ref)
			records[k] = append(records[k], recordOn{obj: obj, st: st})
			for _, m := range GitOpsManagers(obj, nil, service) {
				cs.ManagedBy = appendUnique(cs.ManagedBy, ref+": "+m.Tool)
			}
			if isGatewayAPIRoute(obj) && st.Phase == PhaseProgressing && !parentsService(asMap(obj.Object["spec"]), obj.GetNamespace(), serviceRef{name: service, namespace: k.namespace}) {
				for _, h := range asSlice(asMap(obj.Object["spec"])["hostnames"]) {
					cs.GatewayHosts = appendUnique(cs.GatewayHosts, asString(h))
				}
			}
			if obj.GetKind() == "VirtualService" && st.Phase == PhaseProgressing && boundToAGateway(obj) {
				for _, h := range asSlice(asMap(obj.Object["spec"])["hosts"]) {
					cs.GatewayHosts = appendUnique(cs.GatewayHosts, asString(h))
				}
			}
		}
	}
	return found, records
}

func isGatewayAPIRoute(obj *unstructured.Unstructured) bool {
	return strings.HasPrefix(obj.GetAPIVersion(), GatewayAPIGroup+"/")
}

func routingAPIOf(obj *unstructured.Unstructured) RoutingAPI {
	if isGatewayAPIRoute(obj) {
		return RoutingAPIGatewayAPI
	}
	return RoutingAPIIstio
}

// Routing sums up how traffic beyond the split reaches the canary, for
// status's table: match rules, stickiness and mirror.
func (cs CanaryStatus) Routing() string {
	var parts []string
	if cs.RoutingAPI == RoutingAPIGatewayAPI {
		// Istio's API is the default, left unsaid.
		parts = append(parts, string(RoutingAPIGatewayAPI))
	}
	for _, m := range cs.Matches {
		parts = append(parts, m.String())
	}
	if cs.Sticky {
		parts = append(parts, "sticky")
	}
	if cs.Mirror > 0 {
		parts = append(parts, fmt.Sprintf("mirror %d%%", cs.Mirror))
	}
	for _, h := range cs.GatewayHosts {
		parts = append(parts, "gateway "+h)
	}
	var tools []string
	for _, m := range cs.ManagedBy {
		_, tool, _ := strings.Cut(m, ": ")
		tools = appendUnique(tools, tool)
	}
	for _, tool := range tools {
		parts = append(parts, "managed by "+tool)
	}
	if r := cs.Run; r != nil && r.Step < len(r.Steps) {
		run := fmt.Sprintf("run step %d/%d", r.Step+1, len(r.Steps))
		if r.LastVerdict != "" {
			run += ", last " + r.LastVerdict
		}
		parts = append(parts, run)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func versionReadiness(deployments []*appsv1.Deployment, selector labels.Selector, label, value string) Ready {
	v := &Version{Value: value}
	for _, d := range deployments {
		if selector.Matches(labels.Set(d.Spec.Template.Labels)) && d.Spec.Template.Labels[label] == value {
			v.Deployments = append(v.Deployments, d)
		}
	}
	available, desired := v.readiness()
	return Ready{Available: available, Desired: desired}
}
