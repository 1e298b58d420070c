//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var dryRunModes = []struct {
	flag, summary string
}{
	{"--dry-run", "(dry run)"},
	{"--dry-run=client", "(dry run)"},
	{"--dry-run=server", "(server dry run)"},
}

// TestDryRunClientAndServer: every dry-run mode writes nothing and prints a
// unified diff of the intended change, per object; server dry-run passes the
// API server's validation answer on to the user.
func TestDryRunClientAndServer(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")

	// No routing yet: the diff creates both objects, nothing is created.
	for _, mode := range dryRunModes {
		out := c.mustCanary(t, "start", "reviews", "-n", ns, mode.flag)
		assert.Empty(t, c.versionsOf(t, ns), "start %s created objects", mode.flag)
		assert.Contains(t, out, mode.summary)
		files := parseDiff(t, out)
		require.Len(t, files, 2, "start %s: one diff per object:\n%s", mode.flag, out)
		vs := diffFor(t, files, "VirtualService", ns, "reviews")
		assert.Empty(t, vs.Removed, "start %s: a new object removes nothing", mode.flag)
		assert.Contains(t, vs.Added, "      weight: 10", "start %s:\n%s", mode.flag, out)
		assert.Contains(t, vs.Added, "      weight: 90", "start %s:\n%s", mode.flag, out)
		dr := diffFor(t, files, "DestinationRule", ns, "reviews")
		assert.Contains(t, dr.Added, "    name: v2", "start %s:\n%s", mode.flag, out)
	}
	// KUBECTL_EXTERNAL_DIFF is honoured as by kubectl diff: here a program
	// that lists the two folders it is given.
	r := c.canary(t, []string{"KUBECTL_EXTERNAL_DIFF=ls"}, "start", "reviews", "-n", ns, "--dry-run")
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stdout, "networking.istio.io.v1.VirtualService."+ns+".reviews")
	assert.NotContains(t, r.stdout, "+++")
	assert.Empty(t, c.versionsOf(t, ns))

	// -o json prints the intended objects instead.
	out := c.mustCanary(t, "start", "reviews", "-n", ns, "--dry-run=client", "-o", "json")
	var list unstructured.UnstructuredList
	require.NoError(t, list.UnmarshalJSON([]byte(out)), "start --dry-run -o json printed:\n%s", out)
	kinds := map[string]bool{}
	for i := range list.Items {
		kinds[list.Items[i].GetKind()] = true
		if list.Items[i].GetKind() == "VirtualService" {
			assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, &list.Items[i], "http", 0))
		}
	}
	assert.Equal(t, map[string]bool{"VirtualService": true, "DestinationRule": true}, kinds)
	assert.Empty(t, c.versionsOf(t, ns), "start --dry-run -o json created objects")

	// A running canary: dry runs change neither resourceVersion nor generation.
	c.mustCanary(t, "start", "reviews", "-n", ns)
	before := c.versionsOf(t, ns)
	require.Len(t, before, 2)
	for _, mode := range dryRunModes {
		out := c.mustCanary(t, "weight", "reviews", "30", "-n", ns, mode.flag)
		assert.Equal(t, before, c.versionsOf(t, ns), "weight %s wrote", mode.flag)
		files := parseDiff(t, out)
		require.Len(t, files, 1, "weight %s changes only the VirtualService:\n%s", mode.flag, out)
		vs := diffFor(t, files, "VirtualService", ns, "reviews")
		assert.Contains(t, vs.Removed, "      weight: 10", "weight %s:\n%s", mode.flag, out)
		assert.Contains(t, vs.Added, "      weight: 30", "weight %s:\n%s", mode.flag, out)
		assert.Contains(t, vs.Added, "      weight: 70", "weight %s:\n%s", mode.flag, out)
		assert.Contains(t, out, mode.summary)
	}
	for _, args := range [][]string{{"promote", "reviews"}, {"abort", "reviews"}} {
		for _, mode := range dryRunModes {
			out := c.mustCanary(t, append(args, "-n", ns, mode.flag)...)
			assert.Equal(t, before, c.versionsOf(t, ns), "%v %s wrote", args, mode.flag)
			assert.NotEmpty(t, parseDiff(t, out), "%v %s shows no diff", args, mode.flag)
		}
	}
	assert.Equal(t, 10, stateOf(t, c.get(t, vsV1, ns, "reviews"), "reviews").Weight)
}

// TestDryRunServerReportsSchemaErrors: a cluster whose VirtualService schema
// caps route weights at 50 (an organisation's stricter CRD, or a future
// Istio's) rejects weight 90. Client dry-run cannot know; server dry-run
// must fail, naming the object and quoting the API server, and write nothing.
func TestDryRunServerReportsSchemaErrors(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	capHTTPWeights(t, c, 50)

	// No routing yet: the VirtualService would be created.
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	r := c.canary(t, nil, "start", "reviews", "-n", ns, "--weight", "90", "--dry-run=server")
	require.Error(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "VirtualService "+ns+"/reviews")
	assert.Contains(t, r.stderr, "less than or equal to 50", "the API server's message must reach the user")
	assert.Empty(t, c.versionsOf(t, ns), "server dry-run created objects")
	// Weight 50 (50/50, which the schema accepts) passes, and client dry-run
	// (no server) cannot tell.
	c.mustCanary(t, "start", "reviews", "-n", ns, "--weight", "50", "--dry-run=server")
	c.mustCanary(t, "start", "reviews", "-n", ns, "--weight", "90", "--dry-run=client")
	assert.Empty(t, c.versionsOf(t, ns))

	// An adopted VirtualService would be updated.
	ns = c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.create(t, ns, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
`)
	before := c.versionsOf(t, ns)
	r = c.canary(t, nil, "start", "reviews", "-n", ns, "--weight", "90", "--dry-run=server")
	require.Error(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "VirtualService "+ns+"/reviews")
	assert.Contains(t, r.stderr, "less than or equal to 50")
	assert.Equal(t, before, c.versionsOf(t, ns), "server dry-run wrote")
}

// capHTTPWeights sets `maximum` on the weight of HTTP route destinations in
// every version of the VirtualService CRD, and waits until it applies.
func capHTTPWeights(t *testing.T, c *cluster, max int64) {
	t.Helper()
	ctx := context.Background()
	crd, err := c.dyn.Resource(crds).Get(ctx, "virtualservices.networking.istio.io", metav1.GetOptions{})
	require.NoError(t, err)
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	path := []string{"schema", "openAPIV3Schema", "properties", "spec", "properties", "http", "items", "properties", "route", "items", "properties", "weight"}
	for _, v := range versions {
		weight, found, err := unstructured.NestedMap(v.(map[string]interface{}), path...)
		require.True(t, found, "no weight in the schema of %v (%v)", v.(map[string]interface{})["name"], err)
		weight["maximum"] = max
		require.NoError(t, unstructured.SetNestedMap(v.(map[string]interface{}), weight, path...))
	}
	require.NoError(t, unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions"))
	_, err = c.dyn.Resource(crds).Update(ctx, crd, metav1.UpdateOptions{})
	require.NoError(t, err)

	probe := &unstructured.Unstructured{}
	require.NoError(t, probe.UnmarshalJSON([]byte(`{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": {"name": "probe", "namespace": "default"},
		"spec": {"hosts": ["probe"], "http": [{"route": [
			{"destination": {"host": "probe"}, "weight": 10},
			{"destination": {"host": "other"}, "weight": 90}]}]}}`)))
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.dyn.Resource(vsV1).Namespace("default").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			require.True(t, apierrors.IsInvalid(err), "probe: %v", err)
			return
		}
		require.True(t, time.Now().Before(deadline), "weight 90 still accepted 30s after capping it")
		time.Sleep(200 * time.Millisecond)
	}
}
