//go:build e2e

package e2e

// Services with several ports (issue 13): the routing start creates must
// be one route per port, which istioctl analyze accepts (no IST0112) and
// which istiod turns into the split on every port: the HTTP route
// configuration of each HTTP port, the tcp_proxy of each TCP port.
//
// Like the other mesh tests these do not call t.Parallel (see mesh_test.go).

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubectl-canary/kubectl-canary/pkg/e2e/xds"
)

// deployVersionsBehind creates a Deployment per version behind a Service
// the test created itself (deployVersions creates its own one-port
// Service), marks them available, and gives each a Pending pod for Istio's
// analyzers.
func deployVersionsBehind(t *testing.T, ns, svc string, versions ...string) {
	t.Helper()
	shared.create(t, ns, deploymentsYAML(svc, 1, versions...))
	for _, v := range versions {
		shared.setAvailable(t, ns, svc+"-"+v, 1)
	}
	shared.pendingPods(t, ns, svc, versions...)
}

func clusterIP(t *testing.T, ns, svc string) string {
	t.Helper()
	ip := strings.TrimSpace(shared.kubectl(t, "", "get", "service", svc, "-n", ns, "-o", "jsonpath={.spec.clusterIP}"))
	require.NotEmpty(t, ip, "service %s/%s has no cluster IP", ns, svc)
	return ip
}

// dialListening connects a test proxy and waits until istiod has sent it
// a listener at address:port.
func (m mesh) dialListening(t *testing.T, proxy xds.Proxy, address string, port uint32) *xds.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), meshTimeout)
	defer cancel()
	c, err := xds.Dial(ctx, m.xdsAddr, proxy, xds.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.WaitForListener(ctx, address, port, func(xds.Listener) bool { return true })
	require.NoError(t, err)
	return c
}

// tcpSplit waits until the one filter chain of the listener at
// address:port that proxies TCP to the Service (a sidecar adds a
// passthrough chain beside a TLS one) sends it to the clusters of the
// Service's port, split by subset as wanted ("" is the whole Service), and
// returns that chain.
func tcpSplit(t *testing.T, c *xds.Client, address string, port uint32, host string, servicePort int, want map[string]uint32) xds.FilterChain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), meshTimeout)
	defer cancel()
	var chain xds.FilterChain
	_, err := c.WaitForListener(ctx, address, port, func(l xds.Listener) bool {
		var toService []xds.FilterChain
		for _, fc := range l.TCPChains() {
			for cluster := range fc.TCP.Weights() {
				if name, err := xds.ParseClusterName(cluster); err == nil && name.Host == host {
					toService = append(toService, fc)
					break
				}
			}
		}
		if len(toService) != 1 {
			return false
		}
		chain = toService[0]
		for cluster := range chain.TCP.Weights() {
			name, err := xds.ParseClusterName(cluster)
			if err != nil || name.Host != host || name.Port != servicePort {
				return false
			}
		}
		return fmt.Sprint(positive(chain.TCP.SubsetWeights())) == fmt.Sprint(want)
	})
	require.NoError(t, err, "TCP at %s:%d should reach port %d of %s split %v", address, port, servicePort, host, want)
	return chain
}

func positive(weights map[string]uint32) map[string]uint32 {
	out := map[string]uint32{}
	for k, w := range weights {
		if w > 0 {
			out[k] = w
		}
	}
	return out
}

// httpSplit waits until the route configuration of port sends the
// catch-all route of host to the clusters of that port, split as wanted.
func httpSplit(t *testing.T, c *xds.Client, port int, host string, want map[string]uint32) xds.Route {
	t.Helper()
	vh := served(t, c, fmt.Sprint(port), host, func(routes []xds.Route) bool {
		for cluster := range last(routes).Weights() {
			name, err := xds.ParseClusterName(cluster)
			if err != nil || name.Host != host || name.Port != port {
				return false
			}
		}
		return fmt.Sprint(split(last(routes))) == fmt.Sprint(want)
	})
	return last(vh.Routes)
}

// TestMeshRoutesEveryPortOfAMultiPortService: the Service (http 80,
// grpc-admin 9090, tcp-db 5432) with no routing. start creates one route
// per port; istioctl analyze finds nothing new (it reported IST0112 before
// the fix); istiod serves the split on the HTTP route configurations of 80
// and 9090 and on the tcp_proxy of 5432, each to the clusters of its own
// port, through weight and promote.
func TestMeshRoutesEveryPortOfAMultiPortService(t *testing.T) {
	m := requireMesh(t)
	ns := shared.newNamespace(t)
	shared.create(t, ns, `apiVersion: v1
kind: Service
metadata: {name: cart}
spec:
  selector: {app: cart}
  ports:
  - {name: http, port: 80}
  - {name: grpc-admin, port: 9090}
  - {name: tcp-db, port: 5432}
`)
	deployVersionsBehind(t, ns, "cart", "v1", "v2")
	host, vip := fqdn(ns, "cart"), clusterIP(t, ns, "cart")
	before := m.findings(t, ns)
	t.Logf("istioctl analyze before the canary: %q", before)
	frontend := m.dial(t, xds.Sidecar(ns, "frontend-0", podIP(), map[string]string{"app": "frontend"}), xds.Options{}, "80", "9090")

	for _, step := range []struct {
		args []string
		want map[string]uint32
	}{
		{[]string{"start", "cart"}, map[string]uint32{"v1": 90, "v2": 10}},
		{[]string{"weight", "cart", "40"}, map[string]uint32{"v1": 60, "v2": 40}},
		{[]string{"promote", "cart"}, map[string]uint32{"v2": 100}},
	} {
		shared.mustCanary(t, append([]string{"-n", ns}, step.args...)...)
		for _, port := range []int{80, 9090} {
			r := httpSplit(t, frontend, port, host, step.want)
			t.Logf("after kubectl canary %s: port %d serves %v", strings.Join(step.args, " "), port, r.Weights())
		}
		fc := tcpSplit(t, frontend, vip, 5432, host, 5432, step.want)
		t.Logf("after kubectl canary %s: %s:5432 -> %v", strings.Join(step.args, " "), vip, fc.TCP.Weights())
		m.noNewFindings(t, ns, before, strings.Join(step.args, " "))
	}

	vs := shared.get(t, virtualServices("v1"), ns, "cart")
	for _, c := range []struct {
		kind string
		i    int
		port int64
	}{{"http", 0, 80}, {"http", 1, 9090}, {"tcp", 0, 5432}} {
		r := route(t, vs, c.kind, c.i)
		assert.Equal(t, []interface{}{map[string]interface{}{"port": c.port}}, r["match"], "%s route #%d matches its port", c.kind, c.i)
		for _, d := range r["route"].([]interface{}) {
			assert.Equal(t, map[string]interface{}{"number": c.port}, d.(map[string]interface{})["destination"].(map[string]interface{})["port"], "%s route #%d names its port", c.kind, c.i)
		}
	}
}

// TestMeshRoutesEveryPortBesideAnAdoptedGateway: a Service with two TCP
// ports, reached from outside through an ingress gateway's TCP servers by
// a gateway-bound VirtualService that names the ports itself, and with no
// in-mesh routing. start splits the adopted routes (their ports kept) and
// creates the mesh VirtualService with a TCP route per port; istioctl
// analyze finds nothing new, and istiod serves the split on both TCP ports
// to sidecars and on both gateway ports to the gateway; abort sets every
// one back to stable.
func TestMeshRoutesEveryPortBesideAnAdoptedGateway(t *testing.T) {
	m := requireMesh(t)
	ns := shared.newNamespace(t)
	shared.create(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: pg}
spec:
  selector: {app: pg}
  ports:
  - {name: tcp-primary, port: 5432}
  - {name: tcp-replica, port: 5433}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: db}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 15432, name: tcp-primary, protocol: TCP}
    hosts: ["*"]
  - port: {number: 15433, name: tcp-replica, protocol: TCP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pg-external}
spec:
  hosts: ["*"]
  gateways: [db]
  tcp:
  - match: [{port: 15432}]
    route: [{destination: {host: pg.%[1]s.svc.cluster.local, port: {number: 5432}}}]
  - match: [{port: 15433}]
    route: [{destination: {host: pg.%[1]s.svc.cluster.local, port: {number: 5433}}}]
`, ns))
	deployVersionsBehind(t, ns, "pg", "v1", "v2")
	host, vip := fqdn(ns, "pg"), clusterIP(t, ns, "pg")
	before := m.findings(t, ns)
	t.Logf("istioctl analyze before the canary: %q", before)
	app := m.dialListening(t, xds.Sidecar(ns, "app-0", podIP(), map[string]string{"app": "app"}), vip, 5432)
	ingress := m.dialListening(t, xds.IngressGateway(ns, "ingress-0", podIP(), map[string]string{"istio": "ingressgateway"}), "0.0.0.0", 15432)
	adopted0 := spec(shared.get(t, virtualServices("v1"), ns, "pg-external"))

	for _, step := range []struct {
		args        []string
		want        map[string]uint32
		wantGateway map[string]uint32
	}{
		{[]string{"start", "pg"}, map[string]uint32{"v1": 90, "v2": 10}, map[string]uint32{"v1": 90, "v2": 10}},
		{[]string{"weight", "pg", "70"}, map[string]uint32{"v1": 30, "v2": 70}, map[string]uint32{"v1": 30, "v2": 70}},
		// The created mesh VirtualService stays, pinned to stable; the
		// adopted one gets its spec back: the whole Service, no subset.
		{[]string{"abort", "pg"}, map[string]uint32{"v1": 100}, map[string]uint32{"": 100}},
	} {
		shared.mustCanary(t, append([]string{"-n", ns}, step.args...)...)
		for _, port := range []int{5432, 5433} {
			fc := tcpSplit(t, app, vip, uint32(port), host, port, step.want)
			t.Logf("after kubectl canary %s: sidecar %s:%d -> %v", strings.Join(step.args, " "), vip, port, fc.TCP.Weights())
			fc = tcpSplit(t, ingress, "0.0.0.0", uint32(10000+port), host, port, step.wantGateway)
			t.Logf("after kubectl canary %s: gateway 0.0.0.0:%d -> %v", strings.Join(step.args, " "), 10000+port, fc.TCP.Weights())
		}
		m.noNewFindings(t, ns, before, strings.Join(step.args, " "))
	}

	assert.Equal(t, adopted0, spec(shared.get(t, virtualServices("v1"), ns, "pg-external")), "abort gives the adopted VirtualService its spec back")
	created := shared.get(t, virtualServices("v1"), ns, "pg")
	assert.Equal(t, "kubectl-canary", created.GetLabels()["app.kubernetes.io/managed-by"])
	for i, port := range []int64{5432, 5433} {
		r := route(t, created, "tcp", i)
		assert.Equal(t, []interface{}{map[string]interface{}{"port": port}}, r["match"], "created tcp route #%d matches its port", i)
		assert.Equal(t, []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": host, "port": map[string]interface{}{"number": port}, "subset": "v1"}}}, r["route"],
			"after abort, created tcp route #%d sends its port to stable", i)
	}
}

// TestMeshRoutesATLSPortBySNI: a sidecar passes a TLS port's stream through
// and applies only TLS routes to it, matched by SNI; a TCP route there
// would leave every connection on the unsplit cluster. start creates a TLS
// route for the Service's https port whose SNI is the Service's name, and
// istiod serves the split on the filter chain of that name.
func TestMeshRoutesATLSPortBySNI(t *testing.T) {
	m := requireMesh(t)
	ns := shared.newNamespace(t)
	shared.create(t, ns, `apiVersion: v1
kind: Service
metadata: {name: vault}
spec:
  selector: {app: vault}
  ports:
  - {name: http, port: 80}
  - {name: https, port: 8443}
`)
	deployVersionsBehind(t, ns, "vault", "v1", "v2")
	host, vip := fqdn(ns, "vault"), clusterIP(t, ns, "vault")
	before := m.findings(t, ns)
	client := m.dialListening(t, xds.Sidecar(ns, "client-0", podIP(), map[string]string{"app": "client"}), vip, 8443)

	shared.mustCanary(t, "-n", ns, "start", "vault", "--weight", "25")
	fc := tcpSplit(t, client, vip, 8443, host, 8443, map[string]uint32{"v1": 75, "v2": 25})
	t.Logf("after kubectl canary start: %s:8443 sni=%v -> %v", vip, fc.ServerNames, fc.TCP.Weights())
	assert.Equal(t, []string{host}, fc.ServerNames, "the split applies to connections that name the Service")
	httpSplit(t, client, 80, host, map[string]uint32{"v1": 75, "v2": 25})
	m.noNewFindings(t, ns, before, "start")

	shared.mustCanary(t, "-n", ns, "abort", "vault")
	tcpSplit(t, client, vip, 8443, host, 8443, map[string]uint32{"v1": 100})
	m.noNewFindings(t, ns, before, "abort")
}
