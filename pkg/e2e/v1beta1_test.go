//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestIstioServedOnlyAtV1beta1: on a cluster whose Istio CRDs predate
// networking.istio.io/v1, start, weight and abort still work, reading and
// writing at v1beta1. The plugin finds that cluster by --kubeconfig alone.
func TestIstioServedOnlyAtV1beta1(t *testing.T) {
	t.Parallel()
	c := startCluster(t, "--crd-versions", "v1beta1,v1alpha3")
	_, err := c.dyn.Resource(vsV1).Namespace("default").List(context.Background(), metav1.ListOptions{})
	require.True(t, apierrors.IsNotFound(err), "networking.istio.io/v1 should not be served here (err: %v)", err)
	vsB, drB := virtualServices("v1beta1"), destinationRules("v1beta1")

	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	canary := func(args ...string) {
		t.Helper()
		// KUBECONFIG names the shared cluster: only --kubeconfig leads here.
		args = append([]string{"canary"}, append(args, "-n", ns, "--kubeconfig", c.kubeconfig)...)
		r := run(t, c.commandEnv("KUBECONFIG="+shared.kubeconfig), "", args...)
		require.NoError(t, r.err, "%s", r)
	}

	canary("start", "reviews")
	vs := c.get(t, vsB, ns, "reviews")
	dr := c.get(t, drB, ns, "reviews")
	assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, vs, "http", 0))
	assert.Equal(t, map[string]map[string]string{"v1": {"version": "v1"}, "v2": {"version": "v2"}}, subsets(dr))
	for _, obj := range []interface {
		GetManagedFields() []metav1.ManagedFieldsEntry
		GetName() string
	}{vs, dr} {
		managers := map[string]string{}
		for _, m := range obj.GetManagedFields() {
			managers[m.Manager] = m.APIVersion
		}
		assert.Equal(t, map[string]string{"kubectl-canary": "networking.istio.io/v1beta1"}, managers, "who wrote %s, at which version", obj.GetName())
	}

	canary("weight", "reviews", "40")
	assert.Equal(t, map[string]int64{"v1": 60, "v2": 40}, weights(t, c.get(t, vsB, ns, "reviews"), "http", 0))

	canary("abort", "reviews")
	vs = c.get(t, vsB, ns, "reviews")
	assert.Equal(t, map[string]int64{"v1": 100}, weights(t, vs, "http", 0))
	assert.Equal(t, "Aborted", stateOf(t, vs, "reviews").Phase)

	// Every request of the plugin for routing objects asked for v1beta1.
	requests := 0
	for _, e := range c.audit(t, ns) {
		if strings.HasPrefix(e.UserAgent, "kubectl-canary") && e.ObjectRef.APIGroup == "networking.istio.io" {
			requests++
			assert.Equal(t, "v1beta1", e.ObjectRef.APIVersion, "%s %s", e.Verb, e.RequestURI)
		}
	}
	assert.Greater(t, requests, 0, "no plugin request in the audit log")
}
