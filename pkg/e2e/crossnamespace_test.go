//go:build e2e

package e2e

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A VirtualService in another team's namespace that routes the Service's
// FQDN carries its traffic too: start splits it, status files it under the
// Service's namespace, abort restores it. A VirtualService there for the
// short name "reviews" means that namespace's own reviews and is untouched.
func TestVirtualServiceInAnotherNamespaceIsSplitToo(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	other := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	fqdn := "reviews." + ns + ".svc.cluster.local"
	c.create(t, other, fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop-reviews}
spec:
  hosts: [%[1]s]
  exportTo: ["."]
  http:
  - timeout: 2s
    route:
    - destination: {host: %[1]s}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
`, fqdn))
	foreignBefore := spec(c.get(t, vsV1, other, "shop-reviews"))
	localBefore := c.get(t, vsV1, other, "reviews")

	c.mustCanary(t, "start", "reviews", "-n", ns, "--weight", "20")
	foreign := c.get(t, vsV1, other, "shop-reviews")
	assert.Equal(t, map[string]int64{"v1": 80, "v2": 20}, weights(t, foreign, "http", 0))
	assert.Equal(t, "2s", route(t, foreign, "http", 0)["timeout"], "the other team's fields stay")
	assert.Equal(t, map[string]int64{"v1": 80, "v2": 20}, weights(t, c.get(t, vsV1, ns, "reviews"), "http", 0), "the created mesh VirtualService")
	assert.Equal(t, localBefore.GetResourceVersion(), c.get(t, vsV1, other, "reviews").GetResourceVersion(), "the other namespace's own reviews is untouched")

	st := c.status(t, ns, "reviews")
	assert.Contains(t, st.Objects, "VirtualService/"+other+"/shop-reviews")

	c.mustCanary(t, "weight", "reviews", "60", "-n", ns)
	assert.Equal(t, map[string]int64{"v1": 40, "v2": 60}, weights(t, c.get(t, vsV1, other, "shop-reviews"), "http", 0))

	c.mustCanary(t, "abort", "reviews", "-n", ns)
	require.Equal(t, foreignBefore, spec(c.get(t, vsV1, other, "shop-reviews")), "abort restores the other namespace's VirtualService exactly")
}
