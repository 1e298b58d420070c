//go:build e2e

package e2e

// Canaries on the Kubernetes Gateway API: the split lives in the
// backendRefs of HTTPRoutes (TCPRoutes...) to one Service per version.
// The tests that play a sidecar do not call t.Parallel (see mesh_test.go).

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-canary/kubectl-canary/pkg/e2e/xds"
)

var (
	httpRoutesV1 = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	coreServices = schema.GroupVersionResource{Version: "v1", Resource: "services"}
)

// versionService is bookinfo's per-version Service (reviews-v1...).
func versionService(svc, version string) string {
	return fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata: {name: %[1]s-%[2]s}
spec:
  selector: {app: %[1]s, version: %[2]s}
  ports: [{name: http, port: 9080}]
`, svc, version)
}

// bookinfoHTTPRoute is a mesh HTTPRoute of reviews as a user writes it:
// a header filter, timeouts, a rule of its own for /health, and every
// request to reviews-v1.
const bookinfoHTTPRoute = `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
  labels: {team: books}
  annotations: {note: kept}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - name: health
    matches: [{path: {type: PathPrefix, value: /health}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
  - name: default
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-routed-by, value: httproute}]}
    timeouts: {request: 5s}
    backendRefs: [{name: reviews-v1, port: 9080}]
`

// backendWeights is each backendRef of a rule by Service name, with its weight.
func backendWeights(t *testing.T, route *unstructured.Unstructured, rule int) map[string]int64 {
	t.Helper()
	rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
	require.Greater(t, len(rules), rule, "rules of %s", route.GetName())
	out := map[string]int64{}
	refs, _, _ := unstructured.NestedSlice(rules[rule].(map[string]interface{}), "backendRefs")
	for _, r := range refs {
		ref := r.(map[string]interface{})
		w := int64(1) // the API's default
		switch v := ref["weight"].(type) {
		case int64:
			w = v
		case float64: // read through kubectl -o json
			w = int64(v)
		}
		out[ref["name"].(string)] = w
	}
	return out
}

// clusterWeights is what a sidecar's route sends to each per-version
// Service's cluster, 0-weight clusters left out.
func clusterWeights(ns string, weights map[string]uint32) map[string]uint32 {
	out := map[string]uint32{}
	for svc, w := range weights {
		if w > 0 {
			out["outbound|9080||"+fqdn(ns, svc)] = w
		}
	}
	return out
}

func nonZero(weights map[string]uint32) map[string]uint32 {
	out := map[string]uint32{}
	for k, w := range weights {
		if w > 0 {
			out[k] = w
		}
	}
	return out
}

// specJSON is an object's spec as JSON, to compare byte for byte.
func specJSON(t *testing.T, obj *unstructured.Unstructured) string {
	t.Helper()
	data, err := json.Marshal(obj.Object["spec"])
	require.NoError(t, err)
	return string(data)
}

// TestGatewayAPIMeshServesTheSplitAfterEachCommand adopts a bookinfo-like
// HTTPRoute (reviews-v1 exists, reviews-v2 is created) and, after each
// command, the real istiod serves the split to productpage's sidecar as
// weighted clusters of the per-version Services; the rule's filter and
// timeout and the other rule stay; abort gives the spec back byte for byte
// and deletes the Service start created; istioctl analyze finds nothing new.
func TestGatewayAPIMeshServesTheSplitAfterEachCommand(t *testing.T) {
	s := newMeshScene(t, versionService("reviews", "v1")+bookinfoHTTPRoute, "v1", "v2")
	ns, productpage := s.ns, s.productpage
	original := shared.get(t, httpRoutesV1, ns, "reviews")
	reviewsV1 := shared.get(t, coreServices, ns, "reviews-v1")

	for _, step := range []struct {
		args []string
		want map[string]uint32
	}{
		{[]string{"start", "reviews"}, map[string]uint32{"reviews-v1": 90, "reviews-v2": 10}},
		{[]string{"weight", "reviews", "50"}, map[string]uint32{"reviews-v1": 50, "reviews-v2": 50}},
		{[]string{"abort", "reviews"}, map[string]uint32{"reviews-v1": 100}},
		{[]string{"start", "reviews", "--weight", "20"}, map[string]uint32{"reviews-v1": 80, "reviews-v2": 20}},
		{[]string{"promote", "reviews"}, map[string]uint32{"reviews-v2": 100}},
	} {
		out := shared.mustCanary(t, append([]string{"-n", ns}, step.args...)...)
		want := clusterWeights(ns, step.want)
		vh := served(t, productpage, "9080", s.host, func(routes []xds.Route) bool {
			return fmt.Sprint(nonZero(last(routes).Weights())) == fmt.Sprint(want)
		})
		t.Logf("after kubectl canary %s: %s\n%s serves %v", strings.Join(step.args, " "), out, vh.Name, last(vh.Routes).Weights())
		require.Len(t, vh.Routes, 2, "the /health rule and the default rule: %v", vh.Routes)
		assert.Equal(t, want, nonZero(vh.Routes[0].Weights()), "the /health rule, which sent to the stable version alone, is split too")
		route := shared.get(t, httpRoutesV1, ns, "reviews")
		rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
		origRules, _, _ := unstructured.NestedSlice(original.Object, "spec", "rules")
		for _, field := range []string{"filters", "timeouts", "name"} {
			assert.Equal(t, origRules[1].(map[string]interface{})[field], rules[1].(map[string]interface{})[field], "%s of the default rule after %v", field, step.args)
		}
		assert.Equal(t, original.GetLabels(), route.GetLabels())
		assert.Equal(t, "kept", route.GetAnnotations()["note"])
		if step.args[0] == "abort" {
			assert.Equal(t, specJSON(t, original), specJSON(t, route), "abort gives the adopted spec back exactly")
			shared.requireAbsent(t, coreServices, ns, "reviews-v2")
		} else {
			created := shared.get(t, coreServices, ns, "reviews-v2")
			assert.Equal(t, "kubectl-canary", created.GetLabels()["app.kubernetes.io/managed-by"])
			sel, _, _ := unstructured.NestedStringMap(created.Object, "spec", "selector")
			assert.Equal(t, map[string]string{"app": "reviews", "version": "v2"}, sel)
		}
		assert.Equal(t, reviewsV1.GetResourceVersion(), shared.get(t, coreServices, ns, "reviews-v1").GetResourceVersion(), "the user's reviews-v1 is reused, never written")
		s.noNewFindings(t, ns, s.before, strings.Join(step.args, " "))
	}
	st := shared.status(t, ns, "reviews")
	assert.Equal(t, "Promoted", st.Phase)
	assert.Equal(t, "v2", st.Stable)
}

// TestGatewayAPICreatesARouteFromNothing: a Service no route names, with
// --routing-api gateway-api, gets an HTTPRoute named after it (parentRef to
// the Service) and a Service per version; status says which API; weight
// costs one write; promote prunes the Service of the old stable version.
func TestGatewayAPICreatesARouteFromNothing(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")

	out := c.mustCanary(t, "start", "reviews", "-n", ns, "--routing-api", "gateway-api", "--weight", "25")
	assert.Contains(t, out, "service/reviews-v1 created")
	assert.Contains(t, out, "service/reviews-v2 created")
	assert.Contains(t, out, "httproute.gateway.networking.k8s.io/reviews created")
	route := c.get(t, httpRoutesV1, ns, "reviews")
	assert.Equal(t, "kubectl-canary", route.GetLabels()["app.kubernetes.io/managed-by"])
	parents, _, _ := unstructured.NestedSlice(route.Object, "spec", "parentRefs")
	require.Len(t, parents, 1)
	assert.Equal(t, "Service", parents[0].(map[string]interface{})["kind"])
	assert.Equal(t, "reviews", parents[0].(map[string]interface{})["name"])
	assert.Equal(t, map[string]int64{"reviews-v1": 75, "reviews-v2": 25}, backendWeights(t, route, 0))
	c.requireAbsent(t, vsV1, ns, "reviews")
	c.requireAbsent(t, drV1, ns, "reviews")

	rows := c.statusTable(t, "reviews", "-n", ns)
	require.Len(t, rows, 1)
	assert.Contains(t, rows[0]["ROUTING"], "gateway-api")
	var st struct{ RoutingAPI string }
	require.NoError(t, json.Unmarshal([]byte(c.mustCanary(t, "status", "reviews", "-n", ns, "-o", "json")), &st))
	assert.Equal(t, "gateway-api", st.RoutingAPI)

	out = c.mustCanary(t, "weight", "reviews", "60", "-n", ns)
	assert.Contains(t, out, "httproute.gateway.networking.k8s.io/reviews configured")
	assert.Equal(t, map[string]int64{"reviews-v1": 40, "reviews-v2": 60}, backendWeights(t, c.get(t, httpRoutesV1, ns, "reviews"), 0))
	out = c.mustCanary(t, "weight", "reviews", "60", "-n", ns)
	assert.Contains(t, out, "unchanged", "the same weight again writes nothing")

	out = c.mustCanary(t, "promote", "reviews", "-n", ns)
	assert.Contains(t, out, "service/reviews-v1 deleted")
	c.requireAbsent(t, coreServices, ns, "reviews-v1")
	c.get(t, coreServices, ns, "reviews-v2")
	// A sole backendRef keeps the API's default weight (1), which the server stores.
	assert.Equal(t, map[string]int64{"reviews-v2": 1}, backendWeights(t, c.get(t, httpRoutesV1, ns, "reviews"), 0))
	out = c.mustCanary(t, "promote", "reviews", "-n", ns)
	assert.Contains(t, out, "unchanged")
}

// TestGatewayAPIWaitForAcceptedThenProxies: with --wait, start and weight
// wait until istiod accepts the written HTTPRoute's generation, then until
// productpage's sidecar acknowledges the push: the split is served at once.
// A rule of the user's that names a missing Service comes back from istiod
// as ResolvedRefs False, and the command says so.
func TestGatewayAPIWaitForAcceptedThenProxies(t *testing.T) {
	route := strings.Replace(bookinfoHTTPRoute, `  - name: health
    matches: [{path: {type: PathPrefix, value: /health}}]
    backendRefs: [{name: reviews-v1, port: 9080}]`, `  - name: legacy
    matches: [{path: {type: PathPrefix, value: /legacy}}]
    backendRefs: [{name: reviews-legacy, port: 9080}]`, 1)
	s := newMeshScene(t, versionService("reviews", "v1")+route, "v1", "v2")
	for _, step := range []struct {
		args []string
		want map[string]uint32
	}{
		{[]string{"start", "reviews", "--weight", "30"}, map[string]uint32{"reviews-v1": 70, "reviews-v2": 30}},
		{[]string{"weight", "reviews", "60"}, map[string]uint32{"reviews-v1": 40, "reviews-v2": 60}},
	} {
		s.quiet(t)
		r := shared.canary(t, nil, append(append([]string{"-n", s.ns}, step.args...), "--wait")...)
		require.NoError(t, r.err, "%s", r)
		waitedFor(t, r.stdout, 1, s.ns, "reviews")
		assert.Contains(t, r.stderr, "reviews-legacy", "the missing Service of the user's rule is reported")
		vh := now(t, s.productpage, "9080", s.host)
		assert.Equal(t, clusterWeights(s.ns, step.want), nonZero(last(vh.Routes).Weights()), "after %v", step.args)
		got := shared.get(t, httpRoutesV1, s.ns, "reviews")
		accepted := false
		parents, _, _ := unstructured.NestedSlice(got.Object, "status", "parents")
		for _, p := range parents {
			conds, _, _ := unstructured.NestedSlice(p.(map[string]interface{}), "conditions")
			for _, c := range conds {
				cond := c.(map[string]interface{})
				accepted = accepted || (cond["type"] == "Accepted" && cond["status"] == "True" && cond["observedGeneration"] == got.GetGeneration())
			}
		}
		assert.True(t, accepted, "istiod accepted generation %d: %v", got.GetGeneration(), parents)
		t.Logf("kubectl canary %v --wait:\n%s%s", step.args, r.stdout, r.stderr)
	}
}
