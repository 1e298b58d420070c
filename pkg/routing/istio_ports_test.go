package routing

import (
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestIstioProtocolOfAPort(t *testing.T) {
	appProtocol := func(s string) *string { return &s }
	cases := []struct {
		port corev1.ServicePort
		want portProtocol
	}{
		{corev1.ServicePort{Name: "http", Port: 80}, protocolHTTP},
		{corev1.ServicePort{Name: "http-web", Port: 80}, protocolHTTP},
		{corev1.ServicePort{Name: "HTTP-Web", Port: 80}, protocolHTTP},
		{corev1.ServicePort{Name: "http2", Port: 80}, protocolHTTP},
		{corev1.ServicePort{Name: "grpc-admin", Port: 9090}, protocolHTTP},
		{corev1.ServicePort{Name: "grpc-web", Port: 9090}, protocolHTTP},
		{corev1.ServicePort{Name: "grpc-web-ui", Port: 9090}, protocolHTTP},
		{corev1.ServicePort{Name: "tcp-db", Port: 5432}, protocolTCP},
		{corev1.ServicePort{Name: "mongo", Port: 27018}, protocolTCP},
		{corev1.ServicePort{Name: "redis-cache", Port: 6379}, protocolTCP},
		{corev1.ServicePort{Name: "mysql", Port: 3307}, protocolTCP},
		{corev1.ServicePort{Name: "https", Port: 443}, protocolTLS},
		{corev1.ServicePort{Name: "tls-api", Port: 8443}, protocolTLS},
		// No protocol declared: Istio detects it, except on the ports it
		// never sniffs.
		{corev1.ServicePort{Port: 8080}, protocolSniffed},
		{corev1.ServicePort{Name: "web", Port: 8080}, protocolSniffed},
		{corev1.ServicePort{Name: "httpfoo", Port: 8080}, protocolSniffed},
		{corev1.ServicePort{Name: "metrics-http", Port: 8080}, protocolSniffed},
		{corev1.ServicePort{Name: "db", Port: 3306}, protocolTCP},
		{corev1.ServicePort{Port: 27017}, protocolTCP},
		// appProtocol wins over the name.
		{corev1.ServicePort{Name: "http", Port: 80, AppProtocol: appProtocol("tcp")}, protocolTCP},
		{corev1.ServicePort{Name: "tcp-x", Port: 80, AppProtocol: appProtocol("HTTP")}, protocolHTTP},
		{corev1.ServicePort{Name: "http", Port: 80, AppProtocol: appProtocol("example.com/custom")}, protocolSniffed},
		{corev1.ServicePort{Name: "web", Port: 80, AppProtocol: appProtocol("kubernetes.io/h2c")}, protocolHTTP},
		{corev1.ServicePort{Name: "web", Port: 80, AppProtocol: appProtocol("kubernetes.io/ws")}, protocolHTTP},
		{corev1.ServicePort{Name: "web", Port: 443, AppProtocol: appProtocol("kubernetes.io/wss")}, protocolTLS},
		{corev1.ServicePort{Name: "web", Port: 443, AppProtocol: appProtocol("https")}, protocolTLS},
		{corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}, protocolUDP},
		{corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolUDP}, protocolUDP},
		{corev1.ServicePort{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP}, protocolTCP},
	}
	for _, c := range cases {
		app := "-"
		if c.port.AppProtocol != nil {
			app = *c.port.AppProtocol
		}
		assert.Equal(t, c.want, istioProtocol(c.port), "port %q %d/%s appProtocol %s", c.port.Name, c.port.Port, c.port.Protocol, app)
	}
}

// routeSummary lists a VirtualService's routes as "KIND[:PORT]" in order,
// with ":sni=HOST" for a TLS route's SNI match and "->PORT" for each port
// its destinations name.
func routeSummary(spec map[string]interface{}) []string {
	var out []string
	for _, kind := range routeKinds {
		for _, raw := range routesOf(spec, kind) {
			r := asMap(raw)
			s := kind
			for _, m := range asSlice(r["match"]) {
				if port, ok := asInt(asMap(m)["port"]); ok {
					s += fmt.Sprintf(":%d", port)
				}
				for _, h := range asSlice(asMap(m)["sniHosts"]) {
					s += ":sni=" + asString(h)
				}
			}
			seen := map[int64]bool{}
			for _, d := range destinationsOf(r) {
				if port, ok := asInt(asMap(asMap(asMap(d)["destination"])["port"])["number"]); ok && !seen[port] {
					seen[port] = true
					s += fmt.Sprintf("->%d", port)
				}
			}
			out = append(out, s)
		}
	}
	return out
}

func TestCreatedVirtualServiceRoutesEveryPort(t *testing.T) {
	appProtocol := func(s string) *string { return &s }
	const host = "reviews.shop.svc.cluster.local"
	cases := []struct {
		name  string
		ports []corev1.ServicePort
		want  []string
	}{
		// One port: no port match and no destination port, as before issue 13.
		{"one HTTP port", []corev1.ServicePort{{Name: "http", Port: 9080}}, []string{"http"}},
		{"one TCP port", []corev1.ServicePort{{Name: "tcp-db", Port: 5432}}, []string{"tcp"}},
		{"one TLS port", []corev1.ServicePort{{Name: "https", Port: 443}}, []string{"tls:sni=" + host}},
		{"one port of detected protocol", []corev1.ServicePort{{Port: 8080}}, []string{"http", "tcp"}},
		{"the issue's three ports", []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "grpc-admin", Port: 9090}, {Name: "tcp-db", Port: 5432}},
			[]string{"http:80->80", "http:9090->9090", "tcp:5432->5432"}},
		{"two TCP ports", []corev1.ServicePort{{Name: "tcp-primary", Port: 5432}, {Name: "tcp-replica", Port: 5433}},
			[]string{"tcp:5432->5432", "tcp:5433->5433"}},
		{"TLS beside HTTP", []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}},
			[]string{"http:80->80", "tls:443:sni=" + host + "->443"}},
		{"detected beside declared", []corev1.ServicePort{{Name: "metrics", Port: 9100}, {Name: "http", Port: 80}},
			[]string{"http:9100->9100", "http:80->80", "tcp:9100->9100"}},
		{"appProtocol wins over the name", []corev1.ServicePort{{Name: "http", Port: 80, AppProtocol: appProtocol("tcp")}, {Name: "tcp", Port: 81, AppProtocol: appProtocol("kubernetes.io/h2c")}},
			[]string{"http:81->81", "tcp:80->80"}},
		// UDP is not routed, but it is a port: the others must still be named.
		{"DNS over TCP and UDP", []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}, {Name: "dns-tcp", Port: 53}},
			[]string{"tcp:53->53"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := loadSnapshot(t, "no-istio")
			snap.Service.Spec.Ports = c.ports
			plan, err := computeChecked(t, *snap, start(10))
			require.NoError(t, err)
			vs := snap.objectIn(plan, "VirtualService", "reviews")
			require.NotNil(t, vs, "start creates the VirtualService")
			assert.Equal(t, c.want, routeSummary(vs.Object["spec"].(map[string]interface{})))
			st, err := ReadState(vs, "reviews")
			require.NoError(t, err)
			assert.Len(t, st.Routes, len(c.want), "every created route is managed: %v", st.Routes)
			assertCreatedRoutesPerPort(t, snap.Service, plan)
			assertManagedWeightsSumTo100(t, plan)

			// Every later command acts on every port's route, and the
			// ports stay where start put them.
			snap.apply(plan)
			for _, intent := range []Intent{{Action: ActionWeight, Weight: 35, Mirror: intPtr(5)}, {Action: ActionRoute, Matches: []MatchRule{{Name: "x-tester", Op: "exact", Value: "yes"}}}, promote} {
				plan, err = computeChecked(t, *snap, intent)
				require.NoError(t, err, "%s", intent.Action)
				assertCreatedRoutesPerPort(t, snap.Service, plan)
				assertManagedWeightsSumTo100(t, plan)
				snap.apply(plan)
			}
			spec := snap.object("VirtualService", "reviews").Object["spec"].(map[string]interface{})
			assert.Equal(t, c.want, routeSummary(spec), "after promote")
			for _, kind := range routeKinds {
				for _, raw := range routesOf(spec, kind) {
					assert.Equal(t, map[string]int64{"v2": 100}, subsetWeights(asMap(raw)), "%s route after promote", kind)
				}
			}
		})
	}
}

func TestStartRefusesAServiceWithOnlyUDPPorts(t *testing.T) {
	snap := loadSnapshot(t, "no-istio")
	snap.Service.Spec.Ports = []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}, {Name: "syslog", Port: 514, Protocol: corev1.ProtocolUDP}}
	_, err := Compute(*snap, start(10))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "service shop/reviews has only UDP ports (dns 53/UDP, syslog 514/UDP), whose traffic Istio does not route")
}

func TestMultiPortFlowsMatchGoldenFiles(t *testing.T) {
	gateway := &GatewayIntent{Namespace: "shop", Name: "public", Hosts: []string{"shop.example.com"}}
	flows := []struct {
		cluster, flow string
		steps         []step
	}{
		{"multi-port", "promote", []step{
			{"start", start(10)}, {"start-again", start(10)}, {"weight-50", weight(50)}, {"promote", promote},
		}},
		{"multi-port", "extras-abort", []step{
			{"start-header-sticky-mirror", Intent{Action: ActionStart, Weight: 20, Sticky: true, Mirror: intPtr(10),
				Matches: []MatchRule{{Name: "x-tester", Op: "exact", Value: "yes"}}}},
			{"weight-30", weight(30)}, {"abort", abort},
		}},
		{"multi-port", "gateway", []step{
			{"start", Intent{Action: ActionStart, Weight: 25, Gateway: gateway}}, {"promote", promote},
		}},
		{"tcp-gateway", "abort", []step{{"start", start(10)}, {"weight-60", weight(60)}, {"abort", abort}}},
		{"tcp-gateway", "promote", []step{{"start", start(10)}, {"promote", promote}}},
	}
	for _, f := range flows {
		t.Run(f.cluster+"/"+f.flow, func(t *testing.T) { runGoldenFlow(t, f.cluster, f.flow, f.steps) })
	}
}

// The adopted gateway-bound VirtualService keeps its own ports: only its
// destination lists change, and abort gives its spec back exactly.
func TestAdoptedGatewayRoutesKeepTheirPorts(t *testing.T) {
	snap := loadSnapshot(t, "tcp-gateway")
	before := snap.object("VirtualService", "pg-external").DeepCopy()
	plan, err := computeChecked(t, *snap, start(10))
	require.NoError(t, err)
	snap.apply(plan)
	adopted := snap.object("VirtualService", "pg-external").Object["spec"].(map[string]interface{})
	assert.Equal(t, []string{"tcp:15432->5432", "tcp:15433->5433"}, routeSummary(adopted))
	created := snap.object("VirtualService", "pg").Object["spec"].(map[string]interface{})
	assert.Equal(t, []string{"tcp:5432->5432", "tcp:5433->5433"}, routeSummary(created))

	plan, err = computeChecked(t, *snap, abort)
	require.NoError(t, err)
	snap.apply(plan)
	assert.Equal(t, before.Object["spec"], snap.object("VirtualService", "pg-external").Object["spec"])
}

func TestGatewayVirtualServiceOfAMultiPortService(t *testing.T) {
	gateway := &GatewayIntent{Namespace: "shop", Name: "public", Hosts: []string{"shop.example.com"}}
	cases := []struct {
		name    string
		ports   []corev1.ServicePort
		want    []string
		wantErr string
	}{
		{"one HTTP port among others", []corev1.ServicePort{{Name: "tcp-db", Port: 5432}, {Name: "http", Port: 80}}, []string{"http->80"}, ""},
		{"one detected port beside TCP", []corev1.ServicePort{{Name: "tcp-db", Port: 5432}, {Name: "web", Port: 8080}}, []string{"http->8080"}, ""},
		{"HTTP before gRPC", []corev1.ServicePort{{Name: "grpc", Port: 9090}, {Name: "http", Port: 80}}, []string{"http->80"}, ""},
		{"gRPC before a detected port", []corev1.ServicePort{{Name: "web", Port: 8080}, {Name: "grpc", Port: 9090}}, []string{"http->9090"}, ""},
		{"two HTTP ports", []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "http-alt", Port: 8080}, {Name: "grpc", Port: 9090}}, nil,
			"service shop/cart has several HTTP ports (http 80/TCP, http-alt 8080/TCP), and the VirtualService to create for host(s) shop.example.com at gateway shop/public must send to one of them; create it yourself"},
		{"no HTTP port", []corev1.ServicePort{{Name: "tcp-a", Port: 5432}, {Name: "tcp-b", Port: 5433}, {Name: "db", Port: 3306}}, nil,
			"service shop/cart has no HTTP port (tcp-a 5432/TCP, tcp-b 5433/TCP, db 3306/TCP)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := loadSnapshot(t, "multi-port")
			snap.Service.Spec.Ports = c.ports
			plan, err := computeChecked(t, *snap, Intent{Action: ActionStart, Weight: 10, Gateway: gateway})
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				return
			}
			require.NoError(t, err)
			vs := snap.objectIn(plan, "VirtualService", "cart-gateway")
			require.NotNil(t, vs)
			assert.Equal(t, c.want, routeSummary(vs.Object["spec"].(map[string]interface{})))
			assertCreatedRoutesPerPort(t, snap.Service, plan)
		})
	}
}

// objectIn returns the object of a plan with that kind and name in the
// Service's namespace.
func (s *Snapshot) objectIn(plan *Plan, kind, name string) *unstructured.Unstructured {
	for _, c := range plan.Changes {
		if c.Desired.GetKind() == kind && c.Desired.GetName() == name && c.Desired.GetNamespace() == s.Service.Namespace {
			return c.Desired
		}
	}
	return nil
}

func subsetWeights(route map[string]interface{}) map[string]int64 {
	out := map[string]int64{}
	dests := destinationsOf(route)
	for _, d := range dests {
		out[destinationSubset(asMap(d))] += destinationWeight(asMap(d), len(dests))
	}
	return out
}

// assertCreatedRoutesPerPort checks every VirtualService the plugin created
// in a plan the way istioctl analyze does (IST0112) and more: when the
// Service has several ports, each destination and mirror that reaches it
// names one of its ports and each route matches the port it sends to; a TLS
// route matches the Service's name as SNI; and a VirtualService for in-mesh
// traffic routes every port Istio routes, once, with the route kind of the
// port's protocol (added match routes aside).
func assertCreatedRoutesPerPort(t testing.TB, svc *corev1.Service, plan *Plan) {
	t.Helper()
	ref := serviceRef{name: svc.Name, namespace: svc.Namespace, clusterDomain: DefaultClusterDomain}
	several := len(svc.Spec.Ports) > 1
	ports := map[int64]bool{}
	var want []string
	for _, p := range svc.Spec.Ports {
		ports[int64(p.Port)] = true
		label := "any"
		if several {
			label = fmt.Sprint(p.Port)
		}
		switch istioProtocol(p) {
		case protocolHTTP:
			want = append(want, "http:"+label)
		case protocolTCP:
			want = append(want, "tcp:"+label)
		case protocolTLS:
			want = append(want, "tls:"+label)
		case protocolSniffed:
			want = append(want, "http:"+label, "tcp:"+label)
		}
	}
	sort.Strings(want)
	for _, c := range plan.Changes {
		vs := c.Desired
		if vs.GetKind() != "VirtualService" || !isCreatedByUs(vs) {
			continue
		}
		st, err := ReadState(vs, svc.Name)
		require.NoError(t, err)
		added := map[string]bool{}
		if st != nil {
			for _, name := range st.AddedRoutes {
				added[name] = true
			}
		}
		spec := vs.Object["spec"].(map[string]interface{})
		var got []string
		for _, kind := range routeKinds {
			for i, raw := range routesOf(spec, kind) {
				r := asMap(raw)
				where := fmt.Sprintf("%s %s route #%d", vs.GetName(), kind, i)
				var matched []int64
				for _, m := range asSlice(r["match"]) {
					if port, ok := asInt(asMap(m)["port"]); ok {
						matched = append(matched, port)
					}
					if kind == "tls" {
						assert.Equal(t, []interface{}{ref.fqdn()}, asMap(m)["sniHosts"], "%s: SNI", where)
					}
				}
				destinations := append([]interface{}(nil), destinationsOf(r)...)
				if mirror := asMap(r["mirror"]); mirror != nil {
					destinations = append(destinations, map[string]interface{}{"destination": mirror})
				}
				for _, d := range destinations {
					dest := asMap(asMap(d)["destination"])
					if !ref.isHost(asString(dest["host"]), vs.GetNamespace()) {
						continue
					}
					port, named := asInt(asMap(dest["port"])["number"])
					if !several {
						assert.False(t, named, "%s: a single-port Service needs no destination port", where)
						continue
					}
					if assert.True(t, named, "%s: the destination names no port of a Service with ports %v (IST0112)", where, ports) {
						assert.True(t, ports[port], "%s: destination port %d is not a port of the Service", where, port)
						if len(asSlice(spec["gateways"])) == 0 {
							assert.Equal(t, []int64{port}, matched, "%s: the route matches the port it sends to", where)
						}
					}
				}
				if len(asSlice(spec["gateways"])) > 0 || added[asString(r["name"])] {
					continue
				}
				label := "any"
				if len(matched) > 0 {
					label = fmt.Sprint(matched[0])
				}
				got = append(got, kind+":"+label)
			}
		}
		if len(asSlice(spec["gateways"])) == 0 {
			sort.Strings(got)
			assert.Equal(t, want, got, "%s routes each port Istio routes once, by its protocol (Service ports %s)", vs.GetName(), servicePorts(svc))
		}
	}
}
