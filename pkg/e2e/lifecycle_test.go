//go:build e2e

package e2e

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A Service with two Deployments and no Istio objects: start creates a
// VirtualService and DestinationRule, weight and promote move the traffic,
// status shows each step, and a repeated command writes nothing.
func TestStartWeightPromoteWithoutIstioObjects(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.requireAbsent(t, vsV1, ns, "reviews")
	c.requireAbsent(t, drV1, ns, "reviews")
	fqdn := "reviews." + ns + ".svc.cluster.local"

	// A canary without available replicas would fail the traffic sent to it:
	// start refuses and writes nothing until its Deployment is ready.
	c.setAvailable(t, ns, "reviews-v2", 0)
	r := c.failCanary(t, "start", "reviews", "-n", ns)
	assert.Contains(t, r.stderr, "reviews-v2")
	assert.Contains(t, r.stderr, "--force")
	assert.Empty(t, c.versionsOf(t, ns), "a refused start wrote")
	c.setAvailable(t, ns, "reviews-v2", 2)

	out := c.mustCanary(t, "start", "reviews", "-n", ns)
	assert.Contains(t, out, "virtualservice.networking.istio.io/reviews created")
	assert.Contains(t, out, "destinationrule.networking.istio.io/reviews created")

	vs := c.get(t, vsV1, ns, "reviews")
	dr := c.get(t, drV1, ns, "reviews")
	for _, obj := range []interface{ GetLabels() map[string]string }{vs, dr} {
		assert.Equal(t, "kubectl-canary", obj.GetLabels()["app.kubernetes.io/managed-by"])
	}
	hosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts")
	assert.Equal(t, []string{fqdn}, hosts)
	assert.Equal(t, fqdn, spec(dr)["host"])
	assert.Equal(t, map[string]map[string]string{"v1": {"version": "v1"}, "v2": {"version": "v2"}}, subsets(dr))
	assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, vs, "http", 0))
	st := stateOf(t, vs, "reviews")
	assert.Equal(t, canaryState{Service: "reviews", VersionLabel: "version", Stable: "v1", Canary: "v2", Weight: 10, Phase: "Progressing"}, st)
	requireStatus(t, c, ns, "v1", "v2", 10, "Progressing")
	requireSecondRunUnchanged(t, c, ns, "start", "reviews", "-n", ns)

	c.mustCanary(t, "weight", "reviews", "50", "-n", ns)
	vs = c.get(t, vsV1, ns, "reviews")
	assert.Equal(t, map[string]int64{"v1": 50, "v2": 50}, weights(t, vs, "http", 0))
	assert.Equal(t, 50, stateOf(t, vs, "reviews").Weight)
	requireStatus(t, c, ns, "v1", "v2", 50, "Progressing")
	requireSecondRunUnchanged(t, c, ns, "weight", "reviews", "50", "-n", ns)

	out = c.mustCanary(t, "promote", "reviews", "-n", ns)
	assert.Contains(t, out, "promoted")
	vs = c.get(t, vsV1, ns, "reviews")
	dr = c.get(t, drV1, ns, "reviews")
	assert.Equal(t, map[string]int64{"v2": 100}, weights(t, vs, "http", 0), "after promote the route sends everything to v2")
	// Promote removes the subsets start added that no route uses any more.
	assert.Equal(t, map[string]map[string]string{"v2": {"version": "v2"}}, subsets(dr))
	st = stateOf(t, vs, "reviews")
	assert.Equal(t, "v2", st.Stable)
	assert.Equal(t, "Promoted", st.Phase)

	rows := c.statusTable(t, "-n", ns)
	require.Len(t, rows, 1)
	assert.Equal(t, "reviews", rows[0]["SERVICE"])
	assert.Equal(t, "v2", rows[0]["STABLE"])
	assert.Equal(t, "Promoted", rows[0]["PHASE"])
	js := c.status(t, ns, "reviews")
	assert.Equal(t, "v2", js.Stable)
	assert.Equal(t, "Promoted", js.Phase)
	assert.Equal(t, "v1", js.PromotedFrom)
	requireSecondRunUnchanged(t, c, ns, "promote", "reviews", "-n", ns)
}

// requireStatus checks a running canary in both the table and -o json.
func requireStatus(t *testing.T, c *cluster, ns, stable, canary string, weight int, phase string) {
	t.Helper()
	rows := c.statusTable(t, "-n", ns)
	require.Len(t, rows, 1, "one canary in %s", ns)
	row := rows[0]
	assert.Equal(t, "reviews", row["SERVICE"])
	assert.Equal(t, stable, row["STABLE"])
	assert.Equal(t, canary, row["CANARY"])
	assert.Equal(t, strconv.Itoa(weight)+"%", row["WEIGHT"])
	assert.Equal(t, phase, row["PHASE"])
	assert.Equal(t, "2/2", row["STABLE READY"])
	assert.Equal(t, "2/2", row["CANARY READY"])

	js := c.status(t, ns, "reviews")
	assert.Equal(t, ns, js.Namespace)
	assert.Equal(t, "reviews", js.Service)
	assert.Equal(t, stable, js.Stable)
	assert.Equal(t, canary, js.Canary)
	assert.Equal(t, weight, js.Weight)
	assert.Equal(t, phase, js.Phase)
	assert.Equal(t, 2, js.StableReady.Available)
	if assert.NotNil(t, js.CanaryReady) {
		assert.Equal(t, 2, js.CanaryReady.Available)
	}
}

// requireSecondRunUnchanged runs a command that was just run once more: it
// must say so and write nothing.
func requireSecondRunUnchanged(t *testing.T, c *cluster, ns string, args ...string) {
	t.Helper()
	before := c.versionsOf(t, ns)
	out := c.mustCanary(t, args...)
	assert.Contains(t, out, "unchanged", "second run of %v", args)
	assert.Equal(t, before, c.versionsOf(t, ns), "second run of %v wrote", args)
}
