package routing

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// DefaultGatewayAPIVersions are the apiVersions of the routes the plan
// creates when the snapshot does not say what the cluster serves: the
// standard channel's HTTPRoute and GRPCRoute, the experimental TCPRoute and
// TLSRoute.
var DefaultGatewayAPIVersions = map[string]string{
	"HTTPRoute": GatewayAPIGroup + "/v1",
	"GRPCRoute": GatewayAPIGroup + "/v1",
	"TCPRoute":  GatewayAPIGroup + "/v1alpha2",
	"TLSRoute":  GatewayAPIGroup + "/v1alpha2",
}

// startNewRoutes creates the Service's mesh routes (a parentRef to the
// Service, GAMMA), every rule of them managed: one route named after the
// Service for a single port, one per port otherwise, of the kind that
// applies to the port's protocol.
func (b *gatewayAPIBackend) startNewRoutes(base State) (*State, error) {
	ports := b.snap.Service.Spec.Ports
	var first *State
	var unserved []string
	for _, port := range ports {
		kind := routeKindForPort(port)
		if kind == "" {
			continue
		}
		if !b.servesPort(base.StableSubset, port) || !b.servesPort(base.CanarySubset, port) {
			// The versions' own Services (Istio's tcp-echo-v1 and -v2)
			// serve only the ports the routes use: a route to a port
			// they lack would fail.
			unserved = append(unserved, strconv.Itoa(int(port.Port)))
			continue
		}
		name := b.svc.name
		if len(ports) > 1 {
			name = portRouteName(b.svc.name, port)
		}
		route, err := b.newMeshRoute(kind, name, port, len(ports) > 1)
		if err != nil {
			return nil, err
		}
		st := base
		st.Created = true
		recorded, err := b.recordSplit(route, []RouteRef{ruleRefFor(0, asMap(rulesOf(route.spec())[0]))}, st)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = recorded
		}
	}
	if len(unserved) > 0 {
		b.warnings = append(b.warnings, fmt.Sprintf("in-mesh traffic to port(s) %s of service %s/%s is not split: Services %s and %s do not serve them, so no mesh route to them is created (those calls balance over every version's pods); add the port(s) to both Services and start again to split them too", strings.Join(unserved, ", "), b.svc.namespace, b.svc.name, base.StableSubset, base.CanarySubset))
	}
	if first == nil && len(unserved) > 0 {
		return nil, fmt.Errorf("no port of service %s/%s can get a mesh route: Services %s and %s serve none of its ports %s; add them to both Services, then run the command again", b.svc.namespace, b.svc.name, base.StableSubset, base.CanarySubset, strings.Join(unserved, ", "))
	}
	if first == nil {
		return nil, fmt.Errorf("service %s/%s has only UDP ports (%s), which no Gateway API route kubectl canary writes can split; kubectl canary needs a TCP port (HTTP, gRPC, TLS or plain TCP) on the service", b.svc.namespace, b.svc.name, servicePorts(b.snap.Service))
	}
	return first, nil
}

// routeKindForPort is the route kind that carries a port's traffic: an
// HTTPRoute for HTTP, gRPC and ports whose protocol Istio detects, a
// TCPRoute for plain TCP and TLS (passed through as it is), none for UDP.
func routeKindForPort(port corev1.ServicePort) string {
	switch istioProtocol(port) {
	case protocolHTTP, protocolSniffed:
		return "HTTPRoute"
	case protocolTCP, protocolTLS:
		return "TCPRoute"
	}
	return ""
}

func portRouteName(service string, port corev1.ServicePort) string {
	suffix := strings.Trim(notDNSLabel.ReplaceAllString(strings.ToLower(port.Name), "-"), "-")
	if suffix == "" {
		suffix = strconv.Itoa(int(port.Port))
	}
	name := service + "-" + suffix
	if len(name) > 253 {
		name = name[:253]
	}
	return name
}

// newMeshRoute plans a route of kind attached to the Service (to its port
// when perPort), sending everything to it. Every field the API server
// would default is written, so that the spec the plugin records is the
// one the server keeps and abort can tell nobody changed it.
//
// A route of that name that does not attach to the Service (Istio's
// helloworld sample binds one to its Gateway) keeps its name and its own
// split; the mesh route is then its sibling NAME-mesh, as a VirtualService
// is.
func (b *gatewayAPIBackend) newMeshRoute(kind, name string, port corev1.ServicePort, perPort bool) (*object, error) {
	taken := func(candidate string) bool {
		for _, route := range b.routes {
			if route.desired.GetKind() == kind && route.desired.GetName() == candidate && route.desired.GetNamespace() == b.svc.namespace {
				return true
			}
		}
		return false
	}
	if taken(name) {
		if taken(name + "-mesh") {
			return nil, fmt.Errorf("%ss %s/%s and %s/%s-mesh exist but do not attach to service %s (no parentRef to it); attach one of them to the service, or rename one, then run the command again", kind, b.svc.namespace, name, b.svc.namespace, name, b.svc.name)
		}
		name += "-mesh"
	}
	parent := map[string]interface{}{"group": "", "kind": "Service", "name": b.svc.name}
	if perPort {
		parent["port"] = int64(port.Port)
	}
	rule := map[string]interface{}{"backendRefs": []interface{}{
		map[string]interface{}{"group": "", "kind": "Service", "name": b.svc.name, "port": int64(port.Port), "weight": int64(1)},
	}}
	if kind == "HTTPRoute" {
		rule["matches"] = []interface{}{defaultHTTPMatch()}
	}
	route := &object{desired: b.newRoute(kind, name), stage: StageRoutes}
	spec := route.spec()
	spec["parentRefs"] = []interface{}{parent}
	spec[gatewayRules] = []interface{}{rule}
	b.routes = append(b.routes, route)
	return route, nil
}

// defaultHTTPMatch is the match the API gives an HTTPRoute rule without one.
func defaultHTTPMatch() map[string]interface{} {
	return map[string]interface{}{"path": map[string]interface{}{"type": "PathPrefix", "value": "/"}}
}

func (b *gatewayAPIBackend) newRoute(kind, name string) *unstructured.Unstructured {
	apiVersion := b.snap.GatewayAPIVersions[kind]
	if apiVersion == "" {
		apiVersion = DefaultGatewayAPIVersions[kind]
	}
	u := &unstructured.Unstructured{Object: map[string]interface{}{}}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetName(name)
	u.SetNamespace(b.svc.namespace)
	u.SetLabels(map[string]string{ManagedByLabel: ManagedByValue})
	return u
}
