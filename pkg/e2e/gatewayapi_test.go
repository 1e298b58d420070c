//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubectl-canary/kubectl-canary/pkg/e2e/xds"
)

// TestGatewayAPIOfTheHarness: the shared cluster serves the Gateway API
// CRDs of the version the pinned Istio requires, and its istiod serves a
// mesh HTTPRoute that splits a Service between per-version Services as
// weighted clusters of those Services: the ground the Gateway API routing
// of the plugin stands on.
func TestGatewayAPIOfTheHarness(t *testing.T) {
	t.Parallel()
	c := shared
	m := requireMesh(t)
	version := os.Getenv("CANARY_E2E_GATEWAY_API")
	require.NotEmpty(t, version, "the suite runs with the Gateway API CRDs (hack/e2e.sh passes --gateway-api)")
	for _, crd := range []string{"httproutes", "grpcroutes", "tcproutes", "tlsroutes", "gateways"} {
		got := c.kubectl(t, "", "get", "crd", crd+".gateway.networking.k8s.io", "-o",
			`jsonpath={.metadata.annotations.gateway\.networking\.k8s\.io/bundle-version} {.status.conditions[?(@.type=="Established")].status}`)
		assert.Equal(t, version+" True", got, "CRD %s", crd)
	}

	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	var objects strings.Builder
	for _, v := range []string{"v1", "v2"} {
		fmt.Fprintf(&objects, `---
apiVersion: v1
kind: Service
metadata: {name: reviews-%[1]s}
spec:
  selector: {app: reviews, version: %[1]s}
  ports: [{name: http, port: 9080}]
`, v)
	}
	objects.WriteString(`---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - backendRefs:
    - {name: reviews-v1, port: 9080, weight: 90}
    - {name: reviews-v2, port: 9080, weight: 10}
`)
	c.create(t, ns, objects.String())
	productpage := m.sidecar(t, ns, "productpage", xds.Options{})
	clusterOf := func(svc string) string { return "outbound|9080||" + fqdn(ns, svc) }
	served(t, productpage, "9080", fqdn(ns, "reviews"), func(routes []xds.Route) bool {
		return fmt.Sprint(last(routes).Weights()) == fmt.Sprint(map[string]uint32{clusterOf("reviews-v1"): 90, clusterOf("reviews-v2"): 10})
	})
}

// A Service that the Gateway API routes, in the mesh (a parentRef to the
// Service) or from a Gateway (a backendRef to one of its per-version
// Services), and a VirtualService routes too, gets no canary on either:
// Istio leaves undefined which applies. check reports each route beside
// the VirtualService, start refuses naming both and writes nothing,
// --force writes the VirtualService canary with a warning.
func TestStartRefusesAServiceTheGatewayAPIRoutes(t *testing.T) {
	t.Parallel()
	c := shared
	versionServices := `---
apiVersion: v1
kind: Service
metadata: {name: reviews-v1}
spec:
  selector: {app: reviews, version: v1}
  ports: [{name: http, port: 9080}]
`
	reviewsVS := "---\n" + virtualService("reviews", httpRoutes(`
name: default
route:
- destination: {host: reviews}
`))
	cases := []struct{ name, route, how string }{
		{"mesh HTTPRoute", `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - backendRefs: [{name: reviews, port: 9080}]
`, "HTTPRoute %s/reviews: routes Service %s/reviews through the Kubernetes Gateway API (a parentRef to the Service (mesh routing))"},
		{"ingress GRPCRoute to a per-version Service", versionServices + `---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: reviews-ingress}
spec:
  parentRefs: [{name: public, namespace: istio-ingress}]
  rules:
  - backendRefs: [{name: reviews-v1, port: 9080}]
`, "GRPCRoute %s/reviews-ingress: routes Service %s/reviews through the Kubernetes Gateway API (a backendRef to Service reviews-v1, which selects a version of it)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := c.newNamespace(t)
			c.deployVersions(t, ns, "reviews", "v1", "v2")
			c.create(t, ns, tc.route+reviewsVS)
			before := c.versionsOf(t, ns)
			finding := fmt.Sprintf(tc.how, ns, ns) + "; a VirtualService canary beside VirtualService " + ns + "/reviews leaves Istio's routing of it undefined"
			object, message, _ := strings.Cut(finding, ": ")

			r := c.failCanary(t, "check", "reviews", "-n", ns)
			requireExitCode(t, r, 3)
			assertFindings(t, []checkFinding{{"error", object, message}}, rowsOf(t, r.stdout))

			r = c.failCanary(t, "start", "reviews", "-n", ns)
			assert.Contains(t, r.stderr, "preflight check of service "+ns+"/reviews failed, nothing was changed")
			assert.Contains(t, r.stderr, finding)
			assert.Contains(t, r.stderr, "Keep the Service's routing in one API")
			assert.Equal(t, before, c.versionsOf(t, ns), "a refused start wrote")

			r = c.canary(t, nil, "start", "reviews", "-n", ns, "--force")
			require.NoError(t, r.err, "%s", r)
			assert.Contains(t, r.stderr, "Warning: "+finding)
		})
	}

	// A route of another Service is not this one's business.
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.create(t, ns, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ratings}
spec:
  parentRefs: [{group: "", kind: Service, name: ratings, port: 9080}]
  rules:
  - backendRefs: [{name: ratings, port: 9080}]
`)
	c.mustCanary(t, "start", "reviews", "-n", ns)
}
