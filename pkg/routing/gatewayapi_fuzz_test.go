package routing

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

var fuzzBackends = []string{"reviews", "reviews-v1", "reviews-v2", "reviews-v3", "ratings"}

// fuzzHTTPRoute builds an HTTPRoute of arbitrary rules from the input:
// matches, filters, timeouts, backendRefs to the Service, its versions'
// Services and another Service, with or without weights and filters.
func fuzzHTTPRoute(src *byteSource, name string) *unstructured.Unstructured {
	var rules []interface{}
	for i, n := 0, src.next(5); i < n; i++ {
		rule := map[string]interface{}{}
		if src.next(2) == 1 {
			rule["name"] = fmt.Sprintf("r%d", i)
		}
		match := map[string]interface{}{"path": map[string]interface{}{"type": "PathPrefix", "value": fmt.Sprintf("/p%d", src.next(3))}}
		if src.next(3) == 0 {
			match["headers"] = []interface{}{map[string]interface{}{"type": "Exact", "name": "end-user", "value": "jason"}}
		}
		if src.next(3) > 0 {
			rule["matches"] = []interface{}{match}
		}
		if src.next(3) == 0 {
			rule["timeouts"] = map[string]interface{}{"request": "5s"}
		}
		if src.next(3) == 0 {
			rule["filters"] = []interface{}{map[string]interface{}{"type": "RequestHeaderModifier", "requestHeaderModifier": map[string]interface{}{"set": []interface{}{map[string]interface{}{"name": "x", "value": "1"}}}}}
		}
		var refs []interface{}
		for d, m := 0, 1+src.next(3); d < m; d++ {
			ref := map[string]interface{}{"group": "", "kind": "Service", "name": fuzzBackends[src.next(len(fuzzBackends))], "port": int64(9080)}
			if src.next(3) > 0 {
				ref["weight"] = int64(src.next(101))
			}
			if src.next(4) == 0 {
				ref["filters"] = []interface{}{map[string]interface{}{"type": "ResponseHeaderModifier", "responseHeaderModifier": map[string]interface{}{"add": []interface{}{map[string]interface{}{"name": "x-by", "value": "r"}}}}}
			}
			refs = append(refs, ref)
		}
		rule["backendRefs"] = refs
		rules = append(rules, rule)
	}
	spec := map[string]interface{}{"parentRefs": []interface{}{map[string]interface{}{"group": "", "kind": "Service", "name": "reviews"}}, "rules": rules}
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]interface{}{"name": name, "namespace": "shop", "annotations": map[string]interface{}{"other.tool/keep": "yes"}},
		"spec":     spec,
	}}
}

// fuzzVersionServices gives the namespace the Service and, from the input,
// some of its versions' Services.
func fuzzVersionServices(src *byteSource, svc *corev1.Service) []corev1.Service {
	out := []corev1.Service{*svc}
	for _, v := range []string{"v1", "v2", "v3"} {
		if src.next(2) == 1 {
			s := svc.DeepCopy()
			s.Name = "reviews-" + v
			s.Spec.Selector = map[string]string{"app": "reviews", "version": v}
			out = append(out, *s)
		}
	}
	return out
}

// FuzzGatewayAPIRoutingInvariants: on any HTTPRoutes and per-version
// Services, start → start again changes nothing; start → weight → abort
// gives the adopted routes back exactly and deletes only Services start
// created; no write ever leaves a route naming a missing Service; abort
// twice writes nothing.
func FuzzGatewayAPIRoutingInvariants(f *testing.F) {
	f.Add([]byte{2, 1, 0, 1, 2, 1, 1, 1, 2, 0, 1, 1, 1, 1, 0}, uint8(10), uint8(50), uint8(0))
	f.Add([]byte{3, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 2, 1, 0, 1, 1}, uint8(0), uint8(100), uint8(7))
	f.Add([]byte{1, 1, 2, 0, 0, 0, 1, 0, 2, 1}, uint8(100), uint8(1), uint8(3))
	f.Add([]byte{}, uint8(30), uint8(70), uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, startWeight, nextWeight, extras uint8) {
		src := &byteSource{data: data}
		snap := loadSnapshot(t, "no-istio")
		snap.Deployments = append(snap.Deployments, *snap.Deployments[1].DeepCopy())
		snap.Deployments[3].Name, snap.Deployments[3].Spec.Template.Labels = "reviews-v3", map[string]string{"app": "reviews", "version": "v3"}
		snap.GatewayAPIRoutes = []*unstructured.Unstructured{fuzzHTTPRoute(src, "reviews"), fuzzHTTPRoute(src, "reviews-extra")}
		snap.Services = fuzzVersionServices(src, snap.Service)
		if src.next(4) == 3 {
			snap.GatewayAPIRoutes = nil // no routing yet: start creates it
		}
		original := map[string]interface{}{}
		for _, r := range snap.GatewayAPIRoutes {
			original[r.GetName()] = runtime.DeepCopyJSONValue(r.Object["spec"])
		}
		services := len(snap.Services)
		intent := Intent{Action: ActionStart, Weight: int(startWeight) % 101, Canary: "v2", Stable: "v1", Sticky: extras&2 != 0, RoutingAPI: RoutingAPIGatewayAPI}
		if extras&1 != 0 {
			intent.Matches = []MatchRule{{Name: "x-fuzz", Op: "exact", Value: "1"}, {Cookie: true, Name: "beta", Op: "exact", Value: "on"}}
		}
		if extras&4 != 0 {
			intent.Mirror = intPtr(int(extras) % 101)
		}
		plan, err := computeChecked(t, *snap, intent)
		if err != nil {
			return // refusing is always allowed; writing something wrong never is
		}
		applyInStages(t, snap, plan)
		again, err := computeChecked(t, *snap, intent)
		require.NoError(t, err)
		require.False(t, again.Changed(), "start twice writes nothing")
		for _, next := range []Intent{{Action: ActionWeight, Weight: int(nextWeight) % 101}, {Action: ActionAbort}} {
			plan, err = computeChecked(t, *snap, next)
			require.NoError(t, err, "%s", next.Action)
			applyInStages(t, snap, plan)
		}
		for _, r := range snap.GatewayAPIRoutes {
			if before, adopted := original[r.GetName()]; adopted {
				requireAbortRestored(t, before.(map[string]interface{}), r, "reviews", "start, weight, abort restores %s but the canary's share", r.GetName())
			}
		}
		// Every Service start created is deleted, but those the routes
		// still name: a dangling backendRef start made real, or the
		// stable one a route start created sends everything to.
		named := gatewayBackendOf(snap).servicesNamed()
		for _, s := range snap.Services[services:] {
			require.True(t, named[s.Name], "abort leaves Service %s, which no route names", s.Name)
		}
		plan, err = computeChecked(t, *snap, Intent{Action: ActionAbort})
		require.NoError(t, err)
		require.False(t, plan.Changed(), "abort twice writes nothing")
	})
}
