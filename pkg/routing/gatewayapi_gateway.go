package routing

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// gatewayRoute gives traffic entering through a Gateway API Gateway for
// the intent's hosts the mesh's split: a route of the namespace already
// attached to the Gateway for a host, carrying the Service, was split with
// the others; hosts none serves get an HTTPRoute <service>-gateway.
func (b *gatewayAPIBackend) gatewayRoute(base State) (*State, error) {
	g := b.intent.Gateway
	if g == nil {
		return nil, nil
	}
	gateway := b.gatewayAPIGateway(*g)
	if gateway == nil {
		return nil, intentErrorf("Gateway %s not found; check {Gateway} NAMESPACE/NAME (kubectl get gateways.gateway.networking.k8s.io -A)", g.ref())
	}
	var uncovered []string
	for _, host := range g.Hosts {
		if why := b.listenerRefusal(gateway, host); why != "" {
			return nil, fmt.Errorf("Gateway %s does not accept an HTTPRoute of namespace %s for host %q: %s; change its listeners, or pick a host it serves", g.ref(), b.svc.namespace, host, why)
		}
		if !b.hostCovered(*g, host, targetsOf(&base)) {
			uncovered = append(uncovered, host)
		}
	}
	if len(uncovered) == 0 {
		return nil, nil
	}
	sort.Strings(uncovered)
	name := b.svc.name + "-gateway"
	for _, route := range b.routes {
		if route.desired.GetKind() == "HTTPRoute" && route.desired.GetName() == name && route.desired.GetNamespace() == b.svc.namespace {
			return nil, fmt.Errorf("HTTPRoute %s/%s exists but does not serve host(s) %s at Gateway %s; add them to its hostnames, or rename it", b.svc.namespace, name, strings.Join(uncovered, ", "), g.ref())
		}
	}
	route, err := b.newGatewayRoute(name, *g, uncovered)
	if err != nil {
		return nil, err
	}
	st := base
	st.Created = true
	return b.recordSplit(route, []RouteRef{ruleRefFor(0, asMap(rulesOf(route.spec())[0]))}, st)
}

// gatewayAPIGateway is the snapshot's Gateway API Gateway the intent names.
func (b *gatewayAPIBackend) gatewayAPIGateway(g GatewayIntent) *unstructured.Unstructured {
	for _, obj := range b.snap.Gateways {
		if strings.HasPrefix(obj.GetAPIVersion(), GatewayAPIGroup+"/") && obj.GetNamespace() == g.Namespace && obj.GetName() == g.Name {
			return obj
		}
	}
	return nil
}

// hostCovered reports whether a live route of the namespace attached to
// the Gateway serves host and carries the Service.
func (b *gatewayAPIBackend) hostCovered(g GatewayIntent, host string, t splitTargets) bool {
	for _, route := range b.routes {
		if route.live == nil || !attachesToGateway(route, g) || !b.routesService(route, t) {
			continue
		}
		for _, h := range asSlice(route.spec()["hostnames"]) {
			if strings.EqualFold(asString(h), host) {
				return true
			}
		}
	}
	return false
}

func attachesToGateway(route *object, g GatewayIntent) bool {
	for _, raw := range asSlice(route.spec()["parentRefs"]) {
		ref := asMap(raw)
		ns := asString(ref["namespace"])
		if ns == "" {
			ns = route.desired.GetNamespace()
		}
		kind, group := asString(ref["kind"]), asString(ref["group"])
		if (kind == "" || kind == "Gateway") && (group == "" || group == GatewayAPIGroup) && ns == g.Namespace && asString(ref["name"]) == g.Name {
			return true
		}
	}
	return false
}

// listenerRefusal is why no HTTP listener of the Gateway takes an
// HTTPRoute of the Service's namespace for host, "" when one does.
func (b *gatewayAPIBackend) listenerRefusal(gateway *unstructured.Unstructured, host string) string {
	why := "it has no HTTP or HTTPS listener"
	for _, raw := range asSlice(asMap(gateway.Object["spec"])["listeners"]) {
		l := asMap(raw)
		if p := asString(l["protocol"]); p != "HTTP" && p != "HTTPS" {
			continue
		}
		if !listenerHostMatches(asString(l["hostname"]), host) {
			why = "no listener's hostname covers it"
			continue
		}
		if !b.namespaceAllowed(gateway, asMap(asMap(l["allowedRoutes"])["namespaces"])) {
			why = "its listeners for the host do not allow routes of this namespace (allowedRoutes.namespaces)"
			continue
		}
		return ""
	}
	return why
}

// listenerHostMatches applies a listener's hostname: empty takes every
// host, "*.example.com" any host below example.com.
func listenerHostMatches(listener, host string) bool {
	listener, host = strings.ToLower(listener), strings.ToLower(host)
	if listener == "" || listener == host {
		return true
	}
	return strings.HasPrefix(listener, "*.") && strings.HasSuffix(host, listener[1:]) && len(host) > len(listener)-1
}

// namespaceAllowed applies a listener's allowedRoutes.namespaces (From
// Same by default, All, or Selector over the namespace's labels) to the
// Service's namespace.
func (b *gatewayAPIBackend) namespaceAllowed(gateway *unstructured.Unstructured, namespaces map[string]interface{}) bool {
	switch asString(namespaces["from"]) {
	case "All":
		return true
	case "Selector":
		if b.snap.Namespace == nil {
			return false
		}
		selector, err := metav1.LabelSelectorAsSelector(labelSelectorOf(asMap(namespaces["selector"])))
		return err == nil && selector.Matches(labels.Set(b.snap.Namespace.Labels))
	}
	return gateway.GetNamespace() == b.svc.namespace
}

func labelSelectorOf(m map[string]interface{}) *metav1.LabelSelector {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for k, v := range asMap(m["matchLabels"]) {
		sel.MatchLabels[k] = asString(v)
	}
	for _, raw := range asSlice(m["matchExpressions"]) {
		e := asMap(raw)
		req := metav1.LabelSelectorRequirement{Key: asString(e["key"]), Operator: metav1.LabelSelectorOperator(asString(e["operator"]))}
		for _, v := range asSlice(e["values"]) {
			req.Values = append(req.Values, asString(v))
		}
		sel.MatchExpressions = append(sel.MatchExpressions, req)
	}
	return sel
}

// newGatewayRoute plans the HTTPRoute for the Gateway's hosts, sending
// everything to the Service's HTTP port, every defaulted field written.
func (b *gatewayAPIBackend) newGatewayRoute(name string, g GatewayIntent, hosts []string) (*object, error) {
	port, err := b.httpPort(g)
	if err != nil {
		return nil, err
	}
	hostnames := make([]interface{}, 0, len(hosts))
	for _, h := range hosts {
		hostnames = append(hostnames, h)
	}
	route := &object{desired: b.newRoute("HTTPRoute", name), stage: StageRoutes}
	spec := route.spec()
	spec["parentRefs"] = []interface{}{map[string]interface{}{"group": GatewayAPIGroup, "kind": "Gateway", "namespace": g.Namespace, "name": g.Name}}
	spec["hostnames"] = hostnames
	spec[gatewayRules] = []interface{}{map[string]interface{}{
		"matches":     []interface{}{defaultHTTPMatch()},
		"backendRefs": []interface{}{map[string]interface{}{"group": "", "kind": "Service", "name": b.svc.name, "port": port, "weight": int64(1)}},
	}}
	b.routes = append(b.routes, route)
	return route, nil
}

// httpPort is the Service port a Gateway's HTTPRoute sends to: its only
// port, else its one HTTP port.
func (b *gatewayAPIBackend) httpPort(g GatewayIntent) (int64, error) {
	ports := b.snap.Service.Spec.Ports
	if len(ports) == 1 {
		return int64(ports[0].Port), nil
	}
	var found []int64
	for _, p := range ports {
		if istioProtocol(p) == protocolHTTP {
			found = append(found, int64(p.Port))
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return 0, intentErrorf("service %s/%s has %d HTTP ports (%s), and the HTTPRoute to create for Gateway %s must send to one; create it yourself (parentRef to the Gateway, hostnames, a rule whose backendRef is the service with its port), then run start with the same {Gateway} and {Hosts} to adopt it", b.svc.namespace, b.svc.name, len(found), servicePorts(b.snap.Service), g.ref())
}
