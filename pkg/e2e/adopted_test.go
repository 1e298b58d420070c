//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// adoptedFixture is hand-written routing for reviews (versions v1, v2) that
// must survive a canary: a header route pinned to another subset, retries,
// timeout, fault, corsPolicy, rewrite, headers, a TCP route, a DestinationRule
// with traffic policies, the labels and annotations of another tool, and a
// VirtualService of another host. NAMESPACE is replaced by the namespace.
const adoptedFixture = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  labels: {team: books, other.tool/owner: platform}
  annotations: {other.tool/note: keep me, other.tool/revision: "7"}
spec:
  hosts: [reviews]
  gateways: [mesh]
  exportTo: ["."]
  http:
  - name: testers
    match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: testers}
  - name: slow-path
    match:
    - uri: {prefix: /slow}
    rewrite: {uri: /}
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}
    timeout: 10s
    fault:
      delay: {fixedDelay: 1s, percentage: {value: 5}}
    corsPolicy:
      allowOrigins: [{exact: "https://books.example.com"}]
      allowMethods: [GET]
    headers:
      request:
        set: {x-path: slow}
    route:
    - destination: {host: reviews, subset: v1, port: {number: 9080}}
      headers:
        response:
          set: {x-served-by: reviews}
  - name: default
    retries: {attempts: 2}
    route:
    - destination: {host: reviews, subset: v1}
  tcp:
  - match: [{port: 9081}]
    route:
    - destination: {host: reviews.NAMESPACE.svc.cluster.local, subset: v1, port: {number: 9081}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  labels: {other.tool/owner: platform}
  annotations: {other.tool/note: dr}
spec:
  host: reviews
  exportTo: ["."]
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool:
      http: {http1MaxPendingRequests: 100}
    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {simple: ROUND_ROBIN}
  - name: testers
    labels: {version: v1, track: testers}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings, subset: v1}
`

// routeRef names a route of a VirtualService: kind (http, tcp) and index.
type routeRef struct {
	kind  string
	index int
}

// The routes of adoptedFixture that send traffic to stable alone, so start
// manages them; http[0] is pinned to subset testers and stays as it is.
var adoptedManaged = []routeRef{{"http", 1}, {"http", 2}, {"tcp", 0}}

// TestAdoptedObjectsKeepForeignFieldsAndAbortRestores: start, weight and
// abort on hand-written routing change only the destinations of the managed
// routes, and abort gives back the pre-start specs exactly.
func TestAdoptedObjectsKeepForeignFieldsAndAbortRestores(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	setUpAdopted(t, c, ns)
	runAdoptedCanary(t, c, ns, nil)
}

// TestAdoptedObjectsKeepUnknownFields is the same canary on CRDs that keep
// unknown fields (as a newer Istio's would store fields this plugin was not
// built with): those fields survive start, weight and abort. The CRDs are
// edited, so it runs on a cluster of its own.
func TestAdoptedObjectsKeepUnknownFields(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	for _, crd := range []string{"virtualservices.networking.istio.io", "destinationrules.networking.istio.io"} {
		preserveUnknownFields(t, c, crd)
	}
	ns := c.newNamespace(t)
	setUpAdopted(t, c, ns)

	// Fields that no Istio API has, at the top of the spec, on a route the
	// plugin does not manage, on one it manages, on a destination it
	// rewrites, and on the DestinationRule and one of its subsets.
	future := map[string][]string{
		"virtualservice": {
			"spec.futureTopLevel",
			"spec.http[0].futureRouteField",
			"spec.http[2].futureRouteField",
			"spec.http[1].route[0].futureDestField",
		},
		"destinationrule": {"spec.futureDRField", "spec.subsets[0].futureSubsetField"},
	}
	vs := c.get(t, vsV1, ns, "reviews")
	s := spec(vs)
	s["futureTopLevel"] = map[string]interface{}{"mode": "strict", "level": int64(3)}
	s["http"].([]interface{})[0].(map[string]interface{})["futureRouteField"] = "pinned"
	s["http"].([]interface{})[2].(map[string]interface{})["futureRouteField"] = "managed"
	dest := s["http"].([]interface{})[1].(map[string]interface{})["route"].([]interface{})[0].(map[string]interface{})
	dest["futureDestField"] = map[string]interface{}{"zone": "a"}
	require.NoError(t, unstructured.SetNestedMap(vs.Object, s, "spec"))
	_, err := c.dyn.Resource(vsV1).Namespace(ns).Update(context.Background(), vs, metav1.UpdateOptions{})
	require.NoError(t, err)

	dr := c.get(t, drV1, ns, "reviews")
	s = spec(dr)
	s["futureDRField"] = "keep"
	s["subsets"].([]interface{})[0].(map[string]interface{})["futureSubsetField"] = "keep"
	require.NoError(t, unstructured.SetNestedMap(dr.Object, s, "spec"))
	_, err = c.dyn.Resource(drV1).Namespace(ns).Update(context.Background(), dr, metav1.UpdateOptions{})
	require.NoError(t, err)

	requireFields := func(step string, vs, dr *unstructured.Unstructured) {
		t.Helper()
		for kind, obj := range map[string]*unstructured.Unstructured{"virtualservice": vs, "destinationrule": dr} {
			for _, path := range future[kind] {
				assert.NotNil(t, lookup(obj.Object, path), "after %s: %s %s lost", step, kind, path)
			}
		}
	}
	requireFields("setup", c.get(t, vsV1, ns, "reviews"), c.get(t, drV1, ns, "reviews"))
	runAdoptedCanary(t, c, ns, requireFields)
}

// setUpAdopted creates the versions and adoptedFixture in ns.
func setUpAdopted(t *testing.T, c *cluster, ns string) {
	t.Helper()
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.kubectl(t, "", "patch", "service", "reviews", "-n", ns, "--type=json",
		"-p", `[{"op":"add","path":"/spec/ports/-","value":{"name":"tcp-admin","port":9081}}]`)
	c.create(t, ns, fillNamespace(adoptedFixture, ns))
}

// runAdoptedCanary runs start, weight 50 and abort on adoptedFixture in ns
// and checks what each step must leave alone; check, if set, looks at the
// objects after each step too.
func runAdoptedCanary(t *testing.T, c *cluster, ns string, check func(step string, vs, dr *unstructured.Unstructured)) {
	t.Helper()
	vs0 := c.get(t, vsV1, ns, "reviews")
	dr0 := c.get(t, drV1, ns, "reviews")
	ratingsRV := c.get(t, vsV1, ns, "ratings").GetResourceVersion()

	for _, step := range []struct {
		args   []string
		weight int64
	}{
		{[]string{"start", "reviews"}, 10},
		{[]string{"weight", "reviews", "50"}, 50},
	} {
		name := step.args[0]
		c.mustCanary(t, append(step.args, "-n", ns)...)
		vs := c.get(t, vsV1, ns, "reviews")
		dr := c.get(t, drV1, ns, "reviews")

		for _, r := range adoptedManaged {
			assert.Equal(t, map[string]int64{"v1": 100 - step.weight, "v2": step.weight}, weights(t, vs, r.kind, r.index),
				"after %s: %s route #%d", name, r.kind, r.index)
			// The stable entry is the original destination (port, headers,
			// unknown fields) with a weight.
			assert.Equal(t, toJSON(t, destinationEntry(t, vs0, r, "v1")), toJSON(t, destinationEntry(t, vs, r, "v1")),
				"after %s: stable destination of %s route #%d", name, r.kind, r.index)
		}
		// Everything but the managed routes' destination lists is as before.
		assert.Equal(t, toJSON(t, withoutDestinations(spec(vs0), adoptedManaged)), toJSON(t, withoutDestinations(spec(vs), adoptedManaged)),
			"after %s: VirtualService fields the plugin does not own changed", name)
		assert.Equal(t, toJSON(t, route(t, vs0, "http", 0)), toJSON(t, route(t, vs, "http", 0)), "after %s: route pinned to testers changed", name)

		// The DestinationRule gained subset v2 and nothing else.
		drSpec, drSpec0 := spec(dr), spec(dr0)
		drSubsets, _ := drSpec["subsets"].([]interface{})
		require.Len(t, drSubsets, 3, "after %s: subsets %s", name, toJSON(t, drSubsets))
		assert.Equal(t, map[string]string{"version": "v2"}, subsets(dr)["v2"])
		drSpec["subsets"] = drSubsets[:2]
		assert.Equal(t, toJSON(t, drSpec0), toJSON(t, drSpec), "after %s: DestinationRule fields the plugin does not own changed", name)

		requireSameForeignMeta(t, vs0, vs)
		requireSameForeignMeta(t, dr0, dr)
		st := stateOf(t, vs, "reviews")
		assert.Equal(t, "Progressing", st.Phase)
		assert.Equal(t, int(step.weight), st.Weight)
		if check != nil {
			check(name, vs, dr)
		}
	}

	c.mustCanary(t, "abort", "reviews", "-n", ns)
	vs := c.get(t, vsV1, ns, "reviews")
	dr := c.get(t, drV1, ns, "reviews")
	assert.Equal(t, toJSON(t, spec(vs0)), toJSON(t, spec(vs)), "abort must restore the VirtualService's pre-start spec")
	assert.Equal(t, spec(vs0), spec(vs))
	assert.Equal(t, toJSON(t, spec(dr0)), toJSON(t, spec(dr)), "abort must restore the DestinationRule's pre-start spec")
	assert.Equal(t, spec(dr0), spec(dr))
	requireSameForeignMeta(t, vs0, vs)
	requireSameForeignMeta(t, dr0, dr)
	assert.Equal(t, "Aborted", stateOf(t, vs, "reviews").Phase)
	assert.Equal(t, ratingsRV, c.get(t, vsV1, ns, "ratings").GetResourceVersion(), "the ratings VirtualService was written")
	requireSecondRunUnchanged(t, c, ns, "abort", "reviews", "-n", ns)
	if check != nil {
		check("abort", vs, dr)
	}
}

func requireSameForeignMeta(t *testing.T, before, after *unstructured.Unstructured) {
	t.Helper()
	l0, a0 := foreignMeta(before)
	l1, a1 := foreignMeta(after)
	assert.Equal(t, l0, l1, "labels of %s %s", after.GetKind(), after.GetName())
	assert.Equal(t, a0, a1, "annotations (other than kubectl-canary.io/) of %s %s", after.GetKind(), after.GetName())
}

// destinationEntry is the entry of a route's destination list for subset,
// without its weight.
func destinationEntry(t *testing.T, vs *unstructured.Unstructured, r routeRef, subset string) map[string]interface{} {
	t.Helper()
	dests, _, _ := unstructured.NestedSlice(route(t, vs, r.kind, r.index), "route")
	for _, raw := range dests {
		d := runtime.DeepCopyJSONValue(raw).(map[string]interface{})
		if s, _, _ := unstructured.NestedString(d, "destination", "subset"); s == subset {
			delete(d, "weight")
			return d
		}
	}
	require.Failf(t, "no destination", "%s route #%d of %s has no destination for subset %s", r.kind, r.index, vs.GetName(), subset)
	return nil
}

// withoutDestinations is a copy of a VirtualService spec with the
// destination lists (the only part the plugin owns) of refs removed.
func withoutDestinations(s map[string]interface{}, refs []routeRef) map[string]interface{} {
	s = runtime.DeepCopyJSON(s)
	for _, r := range refs {
		routes, _ := s[r.kind].([]interface{})
		if r.index < len(routes) {
			delete(routes[r.index].(map[string]interface{}), "route")
		}
	}
	return s
}

// preserveUnknownFields makes a CRD keep unknown fields at every object of
// its spec, at every version, and waits until the API server does.
func preserveUnknownFields(t *testing.T, c *cluster, name string) {
	t.Helper()
	ctx := context.Background()
	crd, err := c.dyn.Resource(crds).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		specSchema, _, _ := unstructured.NestedMap(v.(map[string]interface{}), "schema", "openAPIV3Schema", "properties", "spec")
		require.NotNil(t, specSchema, "CRD %s has no spec schema", name)
		markPreserve(specSchema)
		require.NoError(t, unstructured.SetNestedMap(v.(map[string]interface{}), specSchema, "schema", "openAPIV3Schema", "properties", "spec"))
	}
	require.NoError(t, unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions"))
	_, err = c.dyn.Resource(crds).Update(ctx, crd, metav1.UpdateOptions{})
	require.NoError(t, err)

	// The API server swaps the CRD's handler asynchronously: wait until a
	// dry-run create keeps an unknown field.
	kind := crd.Object["spec"].(map[string]interface{})["names"].(map[string]interface{})["kind"].(string)
	gvr, probeSpec := vsV1, map[string]interface{}{"hosts": []interface{}{"probe"}, "futureProbe": "x"}
	if kind == "DestinationRule" {
		gvr, probeSpec = drV1, map[string]interface{}{"host": "probe", "futureProbe": "x"}
	}
	probe := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "networking.istio.io/v1", "kind": kind,
		"metadata": map[string]interface{}{"name": "probe", "namespace": "default"},
		"spec":     probeSpec,
	}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := c.dyn.Resource(gvr).Namespace("default").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		require.NoError(t, err)
		if _, ok := spec(got)["futureProbe"]; ok {
			return
		}
		require.True(t, time.Now().Before(deadline), "CRD %s still prunes unknown fields after 30s", name)
		time.Sleep(200 * time.Millisecond)
	}
}

// markPreserve sets x-kubernetes-preserve-unknown-fields on every schema
// node with properties, down through properties and array items.
func markPreserve(schema map[string]interface{}) {
	if props, ok := schema["properties"].(map[string]interface{}); ok {
		schema["x-kubernetes-preserve-unknown-fields"] = true
		for _, p := range props {
			if m, ok := p.(map[string]interface{}); ok {
				markPreserve(m)
			}
		}
	}
	if items, ok := schema["items"].(map[string]interface{}); ok {
		markPreserve(items)
	}
}

// lookup follows a path such as spec.http[0].route[1].destination.
func lookup(obj interface{}, path string) interface{} {
	for _, part := range strings.Split(path, ".") {
		name, index, hasIndex := strings.Cut(strings.TrimSuffix(part, "]"), "[")
		m, ok := obj.(map[string]interface{})
		if !ok {
			return nil
		}
		obj = m[name]
		if hasIndex {
			list, ok := obj.([]interface{})
			i, err := strconv.Atoi(index)
			if !ok || err != nil || i < 0 || i >= len(list) {
				return nil
			}
			obj = list[i]
		}
	}
	return obj
}

// TestCanaryStartedByAnEarlierVersion: versions before the pre-start
// annotation kept the pre-start spec inside the state. A canary they started
// goes on: weight moves the spec to its own annotation on the object it
// writes, and abort restores both objects exactly, the one still in the old
// form included.
func TestCanaryStartedByAnEarlierVersion(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	setUpAdopted(t, c, ns)
	vs0 := c.get(t, vsV1, ns, "reviews")
	dr0 := c.get(t, drV1, ns, "reviews")
	c.mustCanary(t, "start", "reviews", "-n", ns)
	toEarlierStateFormat(t, c, vsV1, ns, "reviews")
	toEarlierStateFormat(t, c, drV1, ns, "reviews")

	c.mustCanary(t, "weight", "reviews", "30", "-n", ns)
	vs := c.get(t, vsV1, ns, "reviews")
	assert.Equal(t, map[string]int64{"v1": 70, "v2": 30}, weights(t, vs, "http", 2))
	assert.NotContains(t, vs.GetAnnotations()["kubectl-canary.io/reviews"], "preStartSpec")
	var preStart map[string]interface{}
	require.NoError(t, json.Unmarshal([]byte(vs.GetAnnotations()["pre-start.kubectl-canary.io/reviews"]), &preStart))
	assert.Equal(t, toJSON(t, spec(vs0)), toJSON(t, preStart))
	assert.Contains(t, c.get(t, drV1, ns, "reviews").GetAnnotations()["kubectl-canary.io/reviews"], "preStartSpec",
		"weight left the DestinationRule (which it does not change) in the earlier form")

	c.mustCanary(t, "abort", "reviews", "-n", ns)
	vs = c.get(t, vsV1, ns, "reviews")
	dr := c.get(t, drV1, ns, "reviews")
	assert.Equal(t, toJSON(t, spec(vs0)), toJSON(t, spec(vs)), "abort must restore the VirtualService's pre-start spec")
	assert.Equal(t, toJSON(t, spec(dr0)), toJSON(t, spec(dr)), "abort must restore the DestinationRule's pre-start spec")
	for _, obj := range []*unstructured.Unstructured{vs, dr} {
		assert.NotContains(t, obj.GetAnnotations(), "pre-start.kubectl-canary.io/reviews", obj.GetKind())
		assert.NotContains(t, obj.GetAnnotations()["kubectl-canary.io/reviews"], "preStartSpec", obj.GetKind())
		assert.Equal(t, "Aborted", stateOf(t, obj, "reviews").Phase, obj.GetKind())
	}
	requireSameForeignMeta(t, vs0, vs)
	requireSameForeignMeta(t, dr0, dr)
}

// toEarlierStateFormat rewrites an object's canary state of svc as versions
// before the pre-start annotation wrote it.
func toEarlierStateFormat(t *testing.T, c *cluster, gvr schema.GroupVersionResource, ns, name string) {
	t.Helper()
	obj := c.get(t, gvr, ns, name)
	annotations := obj.GetAnnotations()
	preStart, ok := annotations["pre-start.kubectl-canary.io/"+name]
	require.True(t, ok, "%s %s/%s has no pre-start annotation", obj.GetKind(), ns, name)
	var st map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(annotations["kubectl-canary.io/"+name]), &st))
	st["preStartSpec"] = json.RawMessage(preStart)
	data, err := json.Marshal(st)
	require.NoError(t, err)
	annotations["kubectl-canary.io/"+name] = string(data)
	delete(annotations, "pre-start.kubectl-canary.io/"+name)
	obj.SetAnnotations(annotations)
	_, err = c.dyn.Resource(gvr).Namespace(ns).Update(context.Background(), obj, metav1.UpdateOptions{})
	require.NoError(t, err)
}
