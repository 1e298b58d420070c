//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var gatewaysV1 = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "gateways"}

// gatewayFixture: productpage's mesh VirtualService, and a VirtualService
// bound to the ingress gateway GATEWAY for www.example.com that serves static
// files elsewhere and the rest from productpage (with a port).
const gatewayFixture = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - route:
    - destination: {host: productpage}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: www
  labels: {team: web}
spec:
  hosts: [www.example.com]
  gateways: [GATEWAY]
  http:
  - name: static
    match: [{uri: {prefix: /static}}]
    route:
    - destination: {host: static-assets.web.svc.cluster.local}
  - name: shop
    timeout: 5s
    route:
    - destination: {host: productpage.NAMESPACE.svc.cluster.local, port: {number: 9080}}
`

// TestGatewayCreatedAndAdopted: --gateway and --host give external traffic
// the canary's split: the VirtualService bound to the gateway for
// www.example.com is adopted, one is created for shop.example.com, and the
// mesh VirtualService is split too. Hosts the gateway does not serve and
// gateways that do not exist are refused. Abort and promote leave the
// created VirtualService pinned and the adopted one as it was.
func TestGatewayCreatedAndAdopted(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	// A Gateway of the test's own in istio-system, where ingress gateways live.
	gwName := "public-" + ns
	gateway := "istio-system/" + gwName
	c.create(t, "istio-system", fmt.Sprintf(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: %s}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*/*.example.com"]
  - port: {number: 8080, name: http-internal, protocol: HTTP}
    hosts: ["some-other-namespace/*.internal.example.org"]
`, gwName))
	c.get(t, gatewaysV1, "istio-system", gwName)

	c.deployVersions(t, ns, "productpage", "v1", "v2")
	c.create(t, ns, fillNamespace(gatewayFixtureFor(gateway), ns))
	mesh0 := c.get(t, vsV1, ns, "productpage")
	www0 := c.get(t, vsV1, ns, "www")
	before := c.versionsOf(t, ns)

	// Refusals first: each names what is wrong and writes nothing.
	for _, bad := range []struct {
		args []string
		want []string
	}{
		{[]string{"--gateway", gateway, "--host", "shop.example.org"}, []string{gateway, "does not serve", "shop.example.org"}},
		// Served only to VirtualServices of another namespace.
		{[]string{"--gateway", gateway, "--host", "api.internal.example.org"}, []string{gateway, "does not serve", "api.internal.example.org", ns}},
		{[]string{"--gateway", "istio-system/no-such-gateway", "--host", "shop.example.com"}, []string{"istio-system/no-such-gateway", "not found"}},
		{[]string{"--gateway", gateway}, []string{"--host"}},
		{[]string{"--gateway", gwName, "--host", "shop.example.com"}, []string{"NAMESPACE/NAME"}},
		{[]string{"--gateway", gateway, "--host", "*.example.com"}, []string{"wildcard"}},
	} {
		r := c.failCanary(t, append([]string{"start", "productpage", "-n", ns}, bad.args...)...)
		for _, w := range bad.want {
			assert.Contains(t, r.stderr, w, "start %v", bad.args)
		}
		assert.Empty(t, r.stdout, "start %v", bad.args)
		assert.Equal(t, before, c.versionsOf(t, ns), "start %v wrote", bad.args)
	}

	startArgs := []string{"start", "productpage", "-n", ns, "--gateway", gateway, "--host", "www.example.com", "--host", "shop.example.com"}
	out := c.mustCanary(t, startArgs...)
	assert.Contains(t, out, "virtualservice.networking.istio.io/productpage-gateway created")
	requireGatewaySplit := func(step string, weight int64) {
		t.Helper()
		want := map[string]int64{"v1": 100 - weight, "v2": weight}
		// The mesh keeps its own VirtualService, split.
		mesh := c.get(t, vsV1, ns, "productpage")
		assert.Equal(t, want, weights(t, mesh, "http", 0), "%s: mesh VirtualService", step)
		// The adopted gateway VirtualService: the route to productpage is
		// split (port kept), everything else is as it was.
		www := c.get(t, vsV1, ns, "www")
		i, _ := routeNamed(t, www, "http", "shop")
		assert.Equal(t, want, weights(t, www, "http", i), "%s: adopted gateway VirtualService", step)
		assert.Equal(t, toJSON(t, withoutDestinations(spec(www0), []routeRef{{"http", 1}})), toJSON(t, withoutDestinations(spec(www), []routeRef{{"http", 1}})),
			"%s: the adopted gateway VirtualService changed beyond the destinations of its managed route", step)
		for _, subset := range []string{"v1", "v2"} {
			d := destinationEntry(t, www, routeRef{"http", i}, subset)
			port, _, _ := unstructured.NestedInt64(d, "destination", "port", "number")
			assert.Equal(t, int64(9080), port, "%s: %s destination of the adopted route lost its port", step, subset)
		}
		// The created one: bound to the gateway, for the host no
		// VirtualService served, split.
		created := c.get(t, vsV1, ns, "productpage-gateway")
		assert.Equal(t, "kubectl-canary", created.GetLabels()["app.kubernetes.io/managed-by"])
		hosts, _, _ := unstructured.NestedStringSlice(created.Object, "spec", "hosts")
		assert.Equal(t, []string{"shop.example.com"}, hosts, "%s: hosts of the created VirtualService", step)
		gateways, _, _ := unstructured.NestedStringSlice(created.Object, "spec", "gateways")
		assert.Equal(t, []string{gateway}, gateways, "%s: gateways of the created VirtualService", step)
		require.Len(t, routeNames(created, "http"), 1)
		assert.Equal(t, want, weights(t, created, "http", 0), "%s: created gateway VirtualService", step)
		for _, subset := range []string{"v1", "v2"} {
			d := destinationEntry(t, created, routeRef{"http", 0}, subset)
			assert.Equal(t, "productpage."+ns+".svc.cluster.local", d["destination"].(map[string]interface{})["host"])
		}
		for _, vs := range []*unstructured.Unstructured{mesh, www, created} {
			st := stateOf(t, vs, "productpage")
			assert.Equal(t, "Progressing", st.Phase, "%s: %s", step, vs.GetName())
			assert.Equal(t, int(weight), st.Weight, "%s: %s", step, vs.GetName())
		}
	}
	requireGatewaySplit("start", 10)
	assert.Equal(t, map[string]map[string]string{"v1": {"version": "v1"}, "v2": {"version": "v2"}}, subsets(c.get(t, drV1, ns, "productpage")))
	requireSecondRunUnchanged(t, c, ns, startArgs...)

	// status shows the gateway hosts.
	rows := c.statusTable(t, "-n", ns)
	require.Len(t, rows, 1)
	assert.Contains(t, rows[0]["ROUTING"], "gateway www.example.com")
	assert.Contains(t, rows[0]["ROUTING"], "gateway shop.example.com")
	var st struct{ GatewayHosts []string }
	r := c.canary(t, nil, "status", "productpage", "-n", ns, "-o", "json")
	require.NoError(t, r.err, "%s", r)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), "%s", r)
	assert.ElementsMatch(t, []string{"www.example.com", "shop.example.com"}, st.GatewayHosts)

	c.mustCanary(t, "weight", "productpage", "40", "-n", ns)
	requireGatewaySplit("weight 40", 40)

	// Abort: the adopted VirtualServices are as they were, the created one
	// stays (deleting it would not send the gateway's traffic to stable) and
	// sends everything to stable.
	c.mustCanary(t, "abort", "productpage", "-n", ns)
	assert.Equal(t, spec(mesh0), spec(c.get(t, vsV1, ns, "productpage")), "abort: mesh VirtualService")
	www := c.get(t, vsV1, ns, "www")
	assert.Equal(t, spec(www0), spec(www), "abort: adopted gateway VirtualService")
	requireSameForeignMeta(t, www0, www)
	created := c.get(t, vsV1, ns, "productpage-gateway")
	assert.Equal(t, map[string]int64{"v1": 100}, weights(t, created, "http", 0), "abort: created gateway VirtualService")
	assert.Len(t, route(t, created, "http", 0)["route"], 1, "abort: created gateway VirtualService has one destination")
	assert.Equal(t, "Aborted", stateOf(t, created, "productpage").Phase)

	// A second canary through the gateway, promoted.
	c.mustCanary(t, startArgs...)
	requireGatewaySplit("second start", 10)
	c.mustCanary(t, "promote", "productpage", "-n", ns)
	mesh := c.get(t, vsV1, ns, "productpage")
	assert.Equal(t, map[string]int64{"v2": 100}, weights(t, mesh, "http", 0), "promote: mesh VirtualService")
	assert.Len(t, route(t, mesh, "http", 0)["route"], 1)
	created = c.get(t, vsV1, ns, "productpage-gateway")
	assert.Equal(t, map[string]int64{"v2": 100}, weights(t, created, "http", 0), "promote: created gateway VirtualService")
	assert.Len(t, route(t, created, "http", 0)["route"], 1)
	www = c.get(t, vsV1, ns, "www")
	assert.Equal(t, map[string]int64{"v2": 100}, weights(t, www, "http", 1), "promote: adopted gateway VirtualService")
	want := destinationEntry(t, www0, routeRef{"http", 1}, "")
	want["destination"].(map[string]interface{})["subset"] = "v2"
	assert.Equal(t, []interface{}{want}, route(t, www, "http", 1)["route"], "promote: the adopted route's destination is the original one, at v2")
	assert.Equal(t, toJSON(t, withoutDestinations(spec(www0), []routeRef{{"http", 1}})), toJSON(t, withoutDestinations(spec(www), []routeRef{{"http", 1}})),
		"promote: the adopted gateway VirtualService changed beyond its managed route's destinations")
	requireSameForeignMeta(t, www0, www)
	for _, vs := range []*unstructured.Unstructured{mesh, www, created} {
		assert.Equal(t, "Promoted", stateOf(t, vs, "productpage").Phase, vs.GetName())
	}
	rows = c.statusTable(t, "-n", ns)
	require.Len(t, rows, 1)
	assert.Equal(t, "-", rows[0]["ROUTING"], "a promoted canary has no gateway split left")
}

func gatewayFixtureFor(gateway string) string {
	return strings.ReplaceAll(gatewayFixture, "GATEWAY", gateway)
}
