package routing

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// bindsGateway reports whether a VirtualService in vsNamespace lists the
// gateway: "ns/name", or a bare "name" when the gateway is in its namespace.
func bindsGateway(vs *unstructured.Unstructured, g GatewayIntent) bool {
	for _, raw := range asSlice(asMap(vs.Object["spec"])["gateways"]) {
		ref := asString(raw)
		if ref == g.ref() || (ref == g.Name && vs.GetNamespace() == g.Namespace) {
			return true
		}
	}
	return false
}

func hasHost(vs *unstructured.Unstructured, host string) bool {
	for _, raw := range asSlice(asMap(vs.Object["spec"])["hosts"]) {
		if strings.EqualFold(asString(raw), host) {
			return true
		}
	}
	return false
}

// gatewayServes reports whether one of the Gateway's servers accepts host
// for VirtualServices in vsNamespace. Server hosts read "[ns/]dnsName",
// where ns may be "*" or "." (the Gateway's own namespace) and dnsName may
// be "*" or start with "*.".
func gatewayServes(gateway *unstructured.Unstructured, host, vsNamespace string) bool {
	for _, server := range asSlice(asMap(gateway.Object["spec"])["servers"]) {
		for _, raw := range asSlice(asMap(server)["hosts"]) {
			entry := asString(raw)
			ns, dns, scoped := strings.Cut(entry, "/")
			if !scoped {
				ns, dns = "*", entry
			}
			if ns == "." {
				ns = gateway.GetNamespace()
			}
			if ns != "*" && ns != vsNamespace {
				continue
			}
			host, dns = strings.ToLower(host), strings.ToLower(dns)
			if dns == "*" || dns == host || (strings.HasPrefix(dns, "*.") && strings.HasSuffix(host, dns[1:])) {
				return true
			}
		}
	}
	return false
}

// gatewayRoutes makes traffic of the gateway's hosts split like the mesh:
// a VirtualService already bound to the gateway for a host is adopted (its
// managed routes were split with the others); hosts no VirtualService serves
// get one created, named after the Service.
func (b *istioBackend) gatewayRoutes(base State) error {
	g := b.intent.Gateway
	if g == nil {
		return nil
	}
	var gateway *unstructured.Unstructured
	for _, obj := range b.snap.Gateways {
		if obj.GetNamespace() == g.Namespace && obj.GetName() == g.Name {
			gateway = obj
		}
	}
	if gateway == nil {
		return intentErrorf("gateway %s not found; check {Gateway} NAMESPACE/NAME (kubectl get gateways.networking.istio.io -A)", g.ref())
	}
	uncovered, err := b.uncoveredHosts(gateway, *g)
	if err != nil || len(uncovered) == 0 {
		return err
	}
	name := b.svc.name + "-gateway"
	for _, vs := range b.vss {
		if vs.desired.GetName() == name && vs.desired.GetNamespace() == b.svc.namespace {
			if b.progressingState(vs) != nil {
				return intentErrorf("VirtualService %s/%s, created for a gateway, does not serve host(s) %s; abort the canary and start it again with every {Hosts}", b.svc.namespace, name, strings.Join(uncovered, ", "))
			}
			return fmt.Errorf("VirtualService %s/%s exists but does not serve host(s) %s at gateway %s; add them to it, or rename it", b.svc.namespace, name, strings.Join(uncovered, ", "), g.ref())
		}
	}
	sort.Strings(uncovered)
	return b.startGatewayVirtualService(name, *g, uncovered, base)
}

// uncoveredHosts are the gateway's hosts of the intent that no live
// VirtualService bound to the gateway serves yet. A host the gateway does
// not serve, or one whose VirtualService does not route the Service, is
// an error.
func (b *istioBackend) uncoveredHosts(gateway *unstructured.Unstructured, g GatewayIntent) ([]string, error) {
	var uncovered []string
	for _, host := range g.Hosts {
		if !gatewayServes(gateway, host, b.svc.namespace) {
			return nil, fmt.Errorf("gateway %s does not serve host %q for VirtualServices in namespace %s; add the host to one of its servers, or pick a host it serves", g.ref(), host, b.svc.namespace)
		}
		covered := false
		for _, vs := range b.vss {
			if vs.live == nil || !bindsGateway(vs.live, g) || !hasHost(vs.live, host) {
				continue
			}
			if !routesToService(vs.spec(), b.svc, vs.desired.GetNamespace()) {
				return nil, fmt.Errorf("VirtualService %s/%s serves host %q at gateway %s but sends none of its traffic to service %s; add a route to the service to it, or pick another host", vs.desired.GetNamespace(), vs.desired.GetName(), host, g.ref(), b.svc.name)
			}
			covered = true
		}
		if !covered {
			uncovered = append(uncovered, host)
		}
	}
	return uncovered, nil
}

// startGatewayVirtualService creates the VirtualService name for the
// gateway's hosts, its one route split like the mesh's.
func (b *istioBackend) startGatewayVirtualService(name string, g GatewayIntent, hosts []string, base State) error {
	port, err := b.gatewayDestinationPort(g, hosts)
	if err != nil {
		return err
	}
	vs := &object{desired: b.newObject("VirtualService"), stage: StageRoutes}
	vs.desired.SetName(name)
	spec := vs.spec()
	specHosts := make([]interface{}, 0, len(hosts))
	for _, h := range hosts {
		specHosts = append(specHosts, h)
	}
	spec["hosts"] = specHosts
	spec["gateways"] = []interface{}{g.ref()}
	destination := map[string]interface{}{"host": b.svc.fqdn()}
	if port != 0 {
		destination["port"] = map[string]interface{}{"number": port}
	}
	spec["http"] = []interface{}{map[string]interface{}{"route": []interface{}{
		map[string]interface{}{"destination": destination},
	}}}
	b.vss = append(b.vss, vs)
	refs := []RouteRef{routeRefFor("http", 0, asMap(asSlice(spec["http"])[0]))}
	if err := splitRoutes(vs, refs, base.StableSubset, base.CanarySubset, int64(b.intent.Weight)); err != nil {
		return err
	}
	st := base
	st.Created = true
	_, err = b.recordSplit(vs, refs, st)
	return err
}

// boundToAGateway reports whether a VirtualService serves an ingress
// gateway rather than (only) the mesh.
func boundToAGateway(vs *unstructured.Unstructured) bool {
	for _, g := range asSlice(asMap(vs.Object["spec"])["gateways"]) {
		if asString(g) != "mesh" {
			return true
		}
	}
	return false
}
