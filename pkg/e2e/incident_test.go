//go:build e2e

package e2e

// The incident path: what an operator does when a canary goes wrong, and
// what the plugin must never stand in the way of (or lie about).

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-canary/kubectl-canary/pkg/e2e/xds"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// recordedState is the canary state of reviews recorded on obj, in full.
func recordedState(t *testing.T, obj *unstructured.Unstructured) *routing.State {
	t.Helper()
	st, err := routing.ReadState(obj, "reviews")
	require.NoError(t, err)
	require.NotNil(t, st, "%s %s records no canary of reviews", obj.GetKind(), obj.GetName())
	return st
}

// TestUnreadyCanaryCanAlwaysBeLowered: with the canary's Deployment at 0
// available, every change that lowers its share goes through (weight
// down, 0, removing its header rule, abort); raising it is refused naming
// the Deployment, unless forced.
func TestUnreadyCanaryCanAlwaysBeLowered(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.mustCanary(t, "start", "reviews", "-n", ns, "--weight", "30", "--header", "x-tester=yes")
	c.setAvailable(t, ns, "reviews-v2", 0)
	catchAll := func() map[string]int64 {
		vs := c.get(t, vsV1, ns, "reviews")
		routes, _ := spec(vs)["http"].([]interface{})
		return weights(t, vs, "http", len(routes)-1)
	}
	unready := "Deployment " + ns + "/reviews-v2: canary version=v2 has 0 available replica(s) of 2 desired"

	out := c.mustCanary(t, "weight", "reviews", "10", "-n", ns)
	assert.Contains(t, out, "reweighted: canary version=v2 gets 10%")
	assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, catchAll())

	r := c.failCanary(t, "weight", "reviews", "20", "-n", ns)
	assert.Contains(t, r.stderr, "preflight check of service "+ns+"/reviews failed, nothing was changed")
	assert.Contains(t, r.stderr, unready)
	assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, catchAll(), "a refused raise wrote")
	r = c.failCanary(t, "route", "reviews", "-n", ns, "--header", "x-beta=yes")
	assert.Contains(t, r.stderr, unready, "a new header rule raises the canary's share")

	r = c.canary(t, nil, "weight", "reviews", "20", "-n", ns, "--force")
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "Warning: "+unready)
	assert.Equal(t, map[string]int64{"v1": 80, "v2": 20}, catchAll())

	c.mustCanary(t, "route", "reviews", "-n", ns, "--clear-matches")
	vs := c.get(t, vsV1, ns, "reviews")
	require.Len(t, spec(vs)["http"], 1, "the header route is gone")
	assert.Empty(t, recordedState(t, vs).Matches)

	c.mustCanary(t, "weight", "reviews", "0", "-n", ns)
	assert.Equal(t, map[string]int64{"v1": 100, "v2": 0}, catchAll())
	c.mustCanary(t, "weight", "reviews", "30", "-n", ns, "--force")
	out = c.mustCanary(t, "abort", "reviews", "-n", ns)
	assert.Contains(t, out, "aborted: stable version=v1 gets 100% of the traffic again")
	assert.Equal(t, map[string]int64{"v1": 100}, catchAll())
}

// TestStartAfterPromoteLeavesTheRetiredVersion: after a promote, the old
// stable is still deployed; start does not take it as the canary by
// itself, says what was promoted from what and when, and canaries it
// again when named.
func TestStartAfterPromoteLeavesTheRetiredVersion(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.mustCanary(t, "start", "reviews", "-n", ns)
	c.mustCanary(t, "promote", "reviews", "-n", ns)
	promoted := recordedState(t, c.get(t, vsV1, ns, "reviews"))
	require.Equal(t, "v1", promoted.PromotedFrom)
	before := c.versionsOf(t, ns)

	r := c.failCanary(t, "start", "reviews", "-n", ns)
	assert.Contains(t, r.stderr, fmt.Sprintf("version=v2 of service %s/reviews was promoted at %s, replacing version=v1, which is still deployed and the only other version; start does not canary a retired version unasked: to canary version=v1 again, pass --canary v1", ns, promoted.UpdatedAt.UTC().Format(time.RFC3339)))
	assert.Equal(t, before, c.versionsOf(t, ns), "a refused start wrote")

	out := c.mustCanary(t, "start", "reviews", "-n", ns, "--canary", "v1")
	assert.Contains(t, out, "started: canary version=v1 gets 10%, stable version=v2 gets 90%")
}

// TestAbortRecreatesTheDeletedVirtualService: with the canary's
// VirtualService deleted, the Service balances over every version's pods;
// abort creates it again, sending everything to stable, says so, and
// istiod serves 100 % stable.
func TestAbortRecreatesTheDeletedVirtualService(t *testing.T) {
	s := newMeshScene(t, "", "v1", "v2")
	m, ns, productpage, host := s.mesh, s.ns, s.productpage, s.host
	shared.mustCanary(t, "start", "reviews", "-n", ns, "--weight", "30")
	served(t, productpage, "9080", host, hasSplit(map[string]uint32{"v1": 70, "v2": 30}))

	shared.kubectl(t, "", "delete", "virtualservice", "reviews", "-n", ns)
	// The Service's own cluster, every version's pods behind it.
	served(t, productpage, "9080", host, func(routes []xds.Route) bool {
		return fmt.Sprint(last(routes).Weights()) == fmt.Sprint(map[string]uint32{"outbound|9080||" + host: 100})
	})

	m.quiet(t)
	out := shared.mustCanary(t, "abort", "reviews", "-n", ns, "--wait")
	t.Logf("abort printed:\n%s", out)
	assert.Contains(t, out, "virtualservice.networking.istio.io/reviews created")
	assert.Contains(t, out, "aborted: stable version=v1 gets 100% of the traffic again")
	waitedFor(t, out, 1, ns, "reviews")
	vh := now(t, productpage, "9080", host)
	for _, r := range vh.Routes {
		assert.Equal(t, map[string]uint32{"v1": 100}, split(r), "istiod serves %s", r)
	}
	vs := shared.get(t, vsV1, ns, "reviews")
	assert.Equal(t, "kubectl-canary", vs.GetLabels()["app.kubernetes.io/managed-by"])
	assert.Equal(t, "Aborted", string(stateOf(t, vs, "reviews").Phase))
	assert.Equal(t, map[string]map[string]string{"v1": {"version": "v1"}}, subsets(shared.get(t, drV1, ns, "reviews")), "the stable subset stays, the canary's goes")

	// Said on stderr, with what was created.
	r := shared.canary(t, nil, "abort", "reviews", "-n", ns)
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stdout, "unchanged (aborted)")
}

// TestAbortAfterThePreCanaryVirtualServiceWasReapplied: kubectl apply of
// the manifest from before the canary (a teammate, CI, GitOps self-heal)
// keeps the plugin's annotations; abort then keeps that spec, and what it
// prints matches what was written and what istiod serves.
func TestAbortAfterThePreCanaryVirtualServiceWasReapplied(t *testing.T) {
	s := newMeshScene(t, reviewsDestinationRule("v1", "v2"), "v1", "v2")
	ns, productpage, host := s.ns, s.productpage, s.host
	manifest := virtualService("reviews", httpRoutes(defaultRoute("v1")))
	shared.kubectl(t, manifest, "apply", "-n", ns, "-f", "-")
	served(t, productpage, "9080", host, hasSplit(map[string]uint32{"v1": 100}))
	original := shared.get(t, vsV1, ns, "reviews")
	shared.mustCanary(t, "start", "reviews", "-n", ns, "--weight", "30")
	served(t, productpage, "9080", host, hasSplit(map[string]uint32{"v1": 70, "v2": 30}))

	shared.kubectl(t, manifest, "apply", "-n", ns, "-f", "-")
	served(t, productpage, "9080", host, hasSplit(map[string]uint32{"v1": 100}))
	require.Equal(t, "Progressing", string(stateOf(t, shared.get(t, vsV1, ns, "reviews"), "reviews").Phase), "kubectl apply kept the plugin's annotations")

	r := shared.canary(t, nil, "abort", "reviews", "-n", ns)
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "Warning: VirtualService "+ns+"/reviews was set back to its pre-start spec by someone else while the canary ran; it keeps that spec, whose managed routes send all their traffic to stable subset v1")
	assert.NotContains(t, r.stderr, "is not restored")
	assert.Contains(t, r.stdout, "aborted: stable version=v1 gets 100% of the traffic again")
	vs := shared.get(t, vsV1, ns, "reviews")
	assert.Equal(t, toJSON(t, spec(original)), toJSON(t, spec(vs)))
	assert.Equal(t, "Aborted", string(stateOf(t, vs, "reviews").Phase))
	served(t, productpage, "9080", host, hasSplit(map[string]uint32{"v1": 100}))
}

// TestAbortAfterTheHTTPRouteWasDeleted: a Gateway API canary records
// itself on its route only; with the route deleted, abort says what is
// left, that nothing records the stable version, and how to route all
// traffic to it, exits non-zero and writes nothing; the way out it names
// gets istiod serving 100 % stable.
func TestAbortAfterTheHTTPRouteWasDeleted(t *testing.T) {
	s := newMeshScene(t, "", "v1", "v2")
	ns, productpage, host := s.ns, s.productpage, s.host
	shared.mustCanary(t, "start", "reviews", "-n", ns, "--routing-api", "gateway-api", "--weight", "30")
	served(t, productpage, "9080", host, func(routes []xds.Route) bool {
		return fmt.Sprint(nonZero(last(routes).Weights())) == fmt.Sprint(clusterWeights(ns, map[string]uint32{"reviews-v1": 70, "reviews-v2": 30}))
	})
	shared.kubectl(t, "", "delete", "httproute", "reviews", "-n", ns)

	r := shared.failCanary(t, "abort", "reviews", "-n", ns)
	assert.Contains(t, r.stderr, "no routing object records a canary of service "+ns+"/reviews, but Services reviews-v1, reviews-v2 (version=v1, version=v2), which kubectl canary created for one, are still there: the routes that carried the canary were deleted, so the Service balances its traffic over the pods of every version, the canary's too. Nothing records which version is stable, so nothing was written; to send all traffic to it, run kubectl canary start reviews -n "+ns+" with --stable naming it and weight 0, then kubectl canary abort reviews -n "+ns)
	shared.requireAbsent(t, httpRoutesV1, ns, "reviews")

	shared.mustCanary(t, "start", "reviews", "-n", ns, "--routing-api", "gateway-api", "--stable", "v1", "--weight", "0")
	out := shared.mustCanary(t, "abort", "reviews", "-n", ns)
	assert.Contains(t, out, "aborted: stable version=v1 gets 100% of the traffic again")
	want := fmt.Sprint(clusterWeights(ns, map[string]uint32{"reviews-v1": 100}))
	vh := served(t, productpage, "9080", host, func(routes []xds.Route) bool {
		return fmt.Sprint(nonZero(last(routes).Weights())) == want
	})
	t.Logf("after the way out, istiod serves %v", last(vh.Routes).Weights())
	route := shared.get(t, httpRoutesV1, ns, "reviews")
	assert.Equal(t, routing.PhaseAborted, recordedState(t, route).Phase)
}
