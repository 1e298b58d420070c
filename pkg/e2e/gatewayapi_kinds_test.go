//go:build e2e

package e2e

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// getRoute reads a Gateway API route of any kind at the version served.
func (c *cluster) getRoute(t *testing.T, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	require.NoError(t, json.Unmarshal([]byte(c.kubectl(t, "", "get", kind+".gateway.networking.k8s.io", name, "-n", ns, "-o", "json")), &u.Object))
	return u
}

// A user's GRPCRoute and TLSRoute to a Service are adopted: their rules'
// backendRefs are split between per-version Services, their matches and
// hostnames stay, and abort gives back their spec exactly.
func TestGatewayAPIAdoptsGRPCAndTLSRoutes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind, port, route string
	}{
		{"grpcroutes", `{name: grpc, port: 50051, appProtocol: grpc}`, `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: api, annotations: {owner: team-a}}
spec:
  parentRefs: [{group: "", kind: Service, name: api, port: 50051}]
  rules:
  - name: reviews
    matches: [{method: {type: Exact, service: shop.Reviews, method: List}}]
    backendRefs: [{name: api, port: 50051}]
`},
		{"tlsroutes", `{name: tls, port: 443}`, `apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: api, annotations: {owner: team-a}}
spec:
  parentRefs: [{group: "", kind: Service, name: api, port: 443}]
  hostnames: [api.example.com]
  rules:
  - name: passthrough
    backendRefs: [{name: api, port: 443}]
`},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			c := shared
			ns := c.newNamespace(t)
			c.create(t, ns, `apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [`+tc.port+`]
`+deploymentsYAML("api", 1, "v1", "v2"))
			c.setAvailable(t, ns, "api-v1", 1)
			c.setAvailable(t, ns, "api-v2", 1)
			c.create(t, ns, tc.route)
			before := c.getRoute(t, tc.kind, ns, "api").Object["spec"]

			out := c.mustCanary(t, "start", "api", "-n", ns, "--weight", "30")
			assert.Contains(t, out, "service/api-v1 created")
			assert.Contains(t, out, "service/api-v2 created")
			route := c.getRoute(t, tc.kind, ns, "api")
			assert.Equal(t, map[string]int64{"api-v1": 70, "api-v2": 30}, backendWeights(t, route, 0))
			rows := c.statusTable(t, "api", "-n", ns)
			require.Len(t, rows, 1)
			assert.Contains(t, rows[0]["ROUTING"], "gateway-api")

			c.mustCanary(t, "weight", "api", "60", "-n", ns)
			assert.Equal(t, map[string]int64{"api-v1": 40, "api-v2": 60}, backendWeights(t, c.getRoute(t, tc.kind, ns, "api"), 0))
			c.mustCanary(t, "abort", "api", "-n", ns)
			after := c.getRoute(t, tc.kind, ns, "api")
			assert.Equal(t, before, after.Object["spec"], "abort restores the spec exactly")
			assert.Equal(t, "team-a", after.GetAnnotations()["owner"])
			c.requireAbsent(t, coreServices, ns, "api-v1")
			c.requireAbsent(t, coreServices, ns, "api-v2")
		})
	}
}
