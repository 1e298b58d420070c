package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The Gateway API case (issue 15): Service gatewaySvc, with no Istio
// routing, whose canary the plugin starts with --routing-api gateway-api. It
// then runs on an HTTPRoute named after the Service, with a parentRef to it
// (mesh routing) and backendRefs to the per-version Services
// gatewaySvc-v1 and gatewaySvc-v2, which start creates.
const (
	gatewaySvc       = "gwapi"
	gatewayAPIGroup  = "gateway.networking.k8s.io"
	httpRoutes       = "httproutes"
	gatewayCaseName  = "weight (Gateway API)"
	gatewayAPIHowTo  = "make bench starts it with hack/cluster.sh run --gateway-api"
	gatewayStableSvc = gatewaySvc + "-v1"
	gatewayCanarySvc = gatewaySvc + "-v2"
)

// gatewayRouteResources are the Gateway API route kinds a canary can run
// on (issue 15), each of which the plugin lists where the cluster serves it.
var gatewayRouteResources = []string{"httproutes", "grpcroutes", "tcproutes", "tlsroutes"}

// servedRoutes are the route kinds of gatewayRouteResources the cluster
// serves, each at the first version that serves it (the preferred one
// first), read with the bench's own client (not counted).
func (c *clients) servedRoutes() ([]schema.GroupVersionResource, error) {
	groups, err := c.core.Discovery().ServerGroups()
	if err != nil {
		return nil, err
	}
	var out []schema.GroupVersionResource
	for _, g := range groups.Groups {
		if g.Name != gatewayAPIGroup {
			continue
		}
		versions := []string{g.PreferredVersion.Version}
		for _, v := range g.Versions {
			versions = append(versions, v.Version)
		}
		for _, v := range versions {
			list, err := c.core.Discovery().ServerResourcesForGroupVersion(g.Name + "/" + v)
			if err != nil {
				return nil, fmt.Errorf("discover %s/%s: %w", g.Name, v, err)
			}
			for _, r := range list.APIResources {
				if !slices.Contains(gatewayRouteResources, r.Name) || slices.ContainsFunc(out, func(gvr schema.GroupVersionResource) bool { return gvr.Resource == r.Name }) {
					continue
				}
				out = append(out, schema.GroupVersionResource{Group: g.Name, Version: v, Resource: r.Name})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return slices.Index(gatewayRouteResources, out[i].Resource) < slices.Index(gatewayRouteResources, out[j].Resource)
	})
	return out, nil
}

func resourcesOf(gvrs []schema.GroupVersionResource) []string {
	out := make([]string, len(gvrs))
	for i, gvr := range gvrs {
		out[i] = gvr.Resource
	}
	return out
}

func gvrOf(gvrs []schema.GroupVersionResource, resource string) (schema.GroupVersionResource, bool) {
	for _, gvr := range gvrs {
		if gvr.Resource == resource {
			return gvr, true
		}
	}
	return schema.GroupVersionResource{}, false
}

// setupGatewayAPI creates Service gatewaySvc and its Deployments, starts
// its canary with `start --routing-api gateway-api` (10 %), checks that the
// plugin made the routing the case is about, and keeps the HTTPRoute as it
// is then, for the resets.
func (b *bench) setupGatewayAPI(ctx context.Context) error {
	cl := b.clients
	var err error
	if b.routes, err = cl.servedRoutes(); err != nil {
		return err
	}
	gvr, ok := gvrOf(b.routes, httpRoutes)
	if !ok {
		return fmt.Errorf("the cluster serves no HTTPRoute (%s), which the Gateway API case needs; %s", gatewayAPIGroup, gatewayAPIHowTo)
	}
	if err := cl.createWorkload(ctx, benchNS, gatewaySvc); err != nil {
		return err
	}
	if err := b.runQuiet(ctx, b.pluginArgv(b.direct, "-n", benchNS, "start", gatewaySvc, "--routing-api", "gateway-api")); err != nil {
		return err
	}
	route, err := cl.dyn.Resource(gvr).Namespace(benchNS).Get(ctx, gatewaySvc, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("start --routing-api gateway-api made no HTTPRoute %s/%s: %w", benchNS, gatewaySvc, err)
	}
	if !hasServiceParent(route, gatewaySvc) {
		return fmt.Errorf("httproute %s/%s has no parentRef to Service %s (mesh routing): %v", benchNS, gatewaySvc, gatewaySvc, route.Object["spec"])
	}
	for _, name := range []string{gatewayStableSvc, gatewayCanarySvc} {
		if _, err := cl.core.CoreV1().Services(benchNS).Get(ctx, name, metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("start --routing-api gateway-api made no per-version Service %s/%s", benchNS, name)
			}
			return err
		}
	}
	if err := expectBackendWeights(route, map[string]int64{gatewayStableSvc: 90, gatewayCanarySvc: 10}); err != nil {
		return err
	}
	b.gatewayRunning = route
	return nil
}

// hasServiceParent: the route has a parentRef to Service name in its own
// namespace (GAMMA's mesh routing).
func hasServiceParent(route *unstructured.Unstructured, name string) bool {
	refs, _, _ := unstructured.NestedSlice(route.Object, "spec", "parentRefs")
	for _, r := range refs {
		m, _ := r.(map[string]interface{})
		kind, _, _ := unstructured.NestedString(m, "kind")
		group, _, _ := unstructured.NestedString(m, "group")
		ns, _, _ := unstructured.NestedString(m, "namespace")
		refName, _, _ := unstructured.NestedString(m, "name")
		if kind == "Service" && (group == "" || group == "core") && (ns == "" || ns == route.GetNamespace()) && refName == name {
			return true
		}
	}
	return false
}

// backendWeights returns, per rule of the route with backendRefs, the weight
// of each backend by Service name (a backendRef without weight gets 1, the
// Gateway API's default).
func backendWeights(route *unstructured.Unstructured) ([]map[string]int64, error) {
	rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
	var out []map[string]int64
	for _, r := range rules {
		refs, _, _ := unstructured.NestedSlice(r.(map[string]interface{}), "backendRefs")
		if len(refs) == 0 {
			continue
		}
		weights := map[string]int64{}
		for _, ref := range refs {
			m := ref.(map[string]interface{})
			name, _, _ := unstructured.NestedString(m, "name")
			w, found, _ := unstructured.NestedInt64(m, "weight")
			if !found {
				w = 1
			}
			weights[name] += w
		}
		out = append(out, weights)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %s/%s has no rule with backendRefs", strings.ToLower(route.GetKind()), route.GetNamespace(), route.GetName())
	}
	return out, nil
}

// expectBackendWeights: every rule with backendRefs sends want (backends of
// weight 0 left out).
func expectBackendWeights(route *unstructured.Unstructured, want map[string]int64) error {
	rules, err := backendWeights(route)
	if err != nil {
		return err
	}
	for i, got := range rules {
		for k, v := range got {
			if v == 0 {
				delete(got, k)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("%s %s/%s rule %d sends %v, want %v", strings.ToLower(route.GetKind()), route.GetNamespace(), route.GetName(), i, got, want)
		}
	}
	return nil
}

// backendWeightPatch is the JSON patch that sets the weight of the route's
// backendRefs to the Services weights names, in every rule: what someone
// without the plugin would write.
func backendWeightPatch(route *unstructured.Unstructured, weights map[string]int64) string {
	rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
	var ops []interface{}
	for i, r := range rules {
		refs, _, _ := unstructured.NestedSlice(r.(map[string]interface{}), "backendRefs")
		for j, ref := range refs {
			m := ref.(map[string]interface{})
			name, _, _ := unstructured.NestedString(m, "name")
			w, ok := weights[name]
			if !ok {
				continue
			}
			op := "replace"
			if _, found := m["weight"]; !found {
				op = "add"
			}
			ops = append(ops, map[string]interface{}{"op": op, "path": fmt.Sprintf("/spec/rules/%d/backendRefs/%d/weight", i, j), "value": w})
		}
	}
	data, err := json.Marshal(ops)
	if err != nil {
		panic(err)
	}
	return string(data)
}
