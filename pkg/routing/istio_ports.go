package routing

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// portProtocol is how Istio treats the traffic of a Service port, which
// decides the kind of VirtualService route that applies to it.
type portProtocol int

const (
	// protocolHTTP: HTTP routes apply (http, http2, grpc, grpc-web...).
	protocolHTTP portProtocol = iota
	// protocolTCP: TCP routes apply (tcp, mongo, mysql, redis).
	protocolTCP
	// protocolTLS: TLS routes apply, matched by SNI (https, tls); the
	// sidecar passes the encrypted stream through and ignores TCP routes.
	protocolTLS
	// protocolSniffed: no protocol declared. Istio detects HTTP on each
	// connection: HTTP routes apply to HTTP traffic, TCP routes to the rest.
	protocolSniffed
	// protocolUDP: Istio does not route it.
	protocolUDP
)

func (p portProtocol) String() string {
	return [...]string{"HTTP", "TCP", "TLS", "detected", "UDP"}[p]
}

// wellKnownTCPPorts are the ports Istio never sniffs: without a declared
// protocol they carry TCP (SMTP, DNS, MySQL, MongoDB).
var wellKnownTCPPorts = map[int32]bool{25: true, 53: true, 3306: true, 27017: true}

// istioProtocol is the protocol istiod gives a Service port.
func istioProtocol(port corev1.ServicePort) portProtocol {
	switch declaredProtocol(port) {
	case "udp":
		return protocolUDP
	case "http", "http2", "http_proxy", "grpc", "grpc-web":
		return protocolHTTP
	case "tcp", "mongo", "mysql", "redis":
		return protocolTCP
	case "https", "tls":
		return protocolTLS
	}
	if wellKnownTCPPorts[port.Port] {
		return protocolTCP
	}
	return protocolSniffed
}

// declaredProtocol reads a Service port's protocol the way istiod does, in
// lower case: UDP is "udp"; else appProtocol when set (Kubernetes' own
// kubernetes.io/ names read as the protocol they stand for), else the port
// name, whose prefix up to the first "-" names the protocol ("grpc-web"
// whole). Any other value declares nothing, and istiod detects it.
func declaredProtocol(port corev1.ServicePort) string {
	if port.Protocol == corev1.ProtocolUDP {
		return "udp"
	}
	name := port.Name
	if port.AppProtocol != nil {
		name = *port.AppProtocol
		switch name {
		case "kubernetes.io/h2c":
			return "http2"
		case "kubernetes.io/ws":
			return "http"
		case "kubernetes.io/wss":
			return "https"
		}
	}
	name = strings.ToLower(name)
	if strings.HasPrefix(name, "grpc-web") {
		return "grpc-web"
	}
	name, _, _ = strings.Cut(name, "-")
	switch name {
	case "udp", "http", "http2", "http_proxy", "grpc", "tcp", "mongo", "mysql", "redis", "https", "tls":
		return name
	}
	return ""
}

// createdRoutes are the routes of a VirtualService the plugin creates for
// the Service's in-mesh traffic, by kind: for every port Istio routes, the
// route kind it applies to that port's protocol (HTTP and TCP both for a
// port whose protocol it detects), sending the port's traffic to the
// Service. With several ports each route matches its port and its
// destination names it: Istio needs the port to tell the Service's ports
// apart (istioctl analyze IST0112), and a route without a port match would
// take the traffic of every port of its kind. A single-port Service needs
// neither.
func (b *istioBackend) createdRoutes() (map[string][]interface{}, error) {
	svc := b.snap.Service
	several := len(svc.Spec.Ports) > 1
	routes := map[string][]interface{}{}
	for _, port := range svc.Spec.Ports {
		add := func(kind string) {
			destination := map[string]interface{}{"host": b.svc.fqdn()}
			match := map[string]interface{}{}
			if several {
				destination["port"] = map[string]interface{}{"number": int64(port.Port)}
				match["port"] = int64(port.Port)
			}
			if kind == "tls" {
				// Passthrough: the client's SNI names the Service; a TLS
				// route must match on SNI hosts.
				match["sniHosts"] = []interface{}{b.svc.fqdn()}
			}
			route := map[string]interface{}{"route": []interface{}{map[string]interface{}{"destination": destination}}}
			if len(match) > 0 {
				route["match"] = []interface{}{match}
			}
			routes[kind] = append(routes[kind], route)
		}
		switch istioProtocol(port) {
		case protocolHTTP:
			add("http")
		case protocolTCP:
			add("tcp")
		case protocolSniffed:
			add("http")
			add("tcp")
		case protocolTLS:
			add("tls")
		}
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("service %s/%s has only UDP ports (%s), whose traffic Istio does not route, so a canary cannot split it; kubectl canary needs a TCP port (HTTP, gRPC, TLS or plain TCP) on the service", b.svc.namespace, b.svc.name, servicePorts(svc))
	}
	return routes, nil
}

// gatewayDestinationPort is the Service port a VirtualService the plugin
// creates for an ingress gateway sends its HTTP traffic to: none needed for
// a single-port Service, else its one plain HTTP port, or lacking one its
// one gRPC port, or lacking one its one port of detected protocol.
func (b *istioBackend) gatewayDestinationPort(g GatewayIntent, hosts []string) (int64, error) {
	svc := b.snap.Service
	if len(svc.Spec.Ports) <= 1 {
		return 0, nil
	}
	tiers := []struct {
		what      string
		protocols []string
	}{
		{"HTTP", []string{"http", "http2", "http_proxy"}},
		{"gRPC", []string{"grpc", "grpc-web"}},
		{"undeclared-protocol", []string{""}},
	}
	for _, tier := range tiers {
		var found []corev1.ServicePort
		for _, port := range svc.Spec.Ports {
			declared := declaredProtocol(port)
			if slices.Contains(tier.protocols, declared) && (declared != "" || istioProtocol(port) == protocolSniffed) {
				found = append(found, port)
			}
		}
		switch {
		case len(found) == 1:
			return int64(found[0].Port), nil
		case len(found) > 1:
			return 0, intentErrorf("service %s/%s has several %s ports (%s), and the VirtualService to create for host(s) %s at gateway %s must send to one of them; create it yourself (hosts, gateways, an http route whose destination is the service with the port), then run start with the same {Gateway} and {Hosts} to adopt it", b.svc.namespace, b.svc.name, tier.what, servicePorts(&corev1.Service{Spec: corev1.ServiceSpec{Ports: found}}), strings.Join(hosts, ", "), g.ref())
		}
	}
	return 0, intentErrorf("service %s/%s has no HTTP port (%s), and the VirtualService to create for host(s) %s at gateway %s would send HTTP to it; name the HTTP port http or http-SUFFIX (or set its appProtocol), or create the gateway's VirtualService yourself and run start with the same {Gateway} and {Hosts} to adopt it", b.svc.namespace, b.svc.name, servicePorts(svc), strings.Join(hosts, ", "), g.ref())
}

// servicePorts lists a Service's ports as "name 80/TCP, ..." for messages.
func servicePorts(svc *corev1.Service) string {
	parts := make([]string, 0, len(svc.Spec.Ports))
	for _, port := range svc.Spec.Ports {
		protocol := port.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP
		}
		s := strconv.Itoa(int(port.Port)) + "/" + string(protocol)
		if port.Name != "" {
			s = port.Name + " " + s
		}
		parts = append(parts, s)
	}
	return listOrNone(parts)
}
