package routing

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// byteSource turns fuzz input into choices; it yields zeros once exhausted.
type byteSource struct{ data []byte }

func (b *byteSource) next(n int) int {
	if len(b.data) == 0 {
		return 0
	}
	v := int(b.data[0])
	b.data = b.data[1:]
	return v % n
}

var fuzzHosts = []string{"reviews", "reviews.shop", "reviews.shop.svc.cluster.local", "ratings", "*.shop.svc.cluster.local", "reviews.other"}
var fuzzSubsets = []string{"", "v1", "v2", "v3", "x"}

// fuzzVirtualService builds a VirtualService of arbitrary routes from the input.
func fuzzVirtualService(src *byteSource, name string) *unstructured.Unstructured {
	spec := map[string]interface{}{"hosts": []interface{}{"reviews"}}
	routes := src.next(6)
	for i := 0; i < routes; i++ {
		kind := routeKinds[src.next(len(routeKinds))]
		route := map[string]interface{}{}
		if src.next(2) == 1 {
			route["name"] = fmt.Sprintf("r%d", i)
		}
		if src.next(2) == 1 {
			route["match"] = []interface{}{map[string]interface{}{"port": int64(9000 + src.next(3))}}
		}
		if src.next(3) == 0 {
			route["timeout"] = "5s"
		}
		var dests []interface{}
		for d, n := 0, 1+src.next(3); d < n; d++ {
			dest := map[string]interface{}{"host": fuzzHosts[src.next(len(fuzzHosts))]}
			if s := fuzzSubsets[src.next(len(fuzzSubsets))]; s != "" {
				dest["subset"] = s
			}
			if src.next(4) == 0 {
				dest["port"] = map[string]interface{}{"number": int64(9080)}
			}
			entry := map[string]interface{}{"destination": dest}
			if src.next(3) > 0 {
				entry["weight"] = int64(src.next(101))
			}
			dests = append(dests, entry)
		}
		route["route"] = dests
		spec[kind] = append(asSlice(spec[kind]), route)
	}
	u := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]interface{}{"name": name, "namespace": "shop"},
		"spec":     spec,
	}}
	return u
}

func fuzzDestinationRule(src *byteSource) *unstructured.Unstructured {
	var subsets []interface{}
	for _, v := range []string{"v1", "v2", "v3"} {
		if src.next(2) == 1 {
			subsets = append(subsets, map[string]interface{}{"name": v, "labels": map[string]interface{}{"version": v}})
		}
	}
	spec := map[string]interface{}{"host": "reviews", "trafficPolicy": map[string]interface{}{"tls": map[string]interface{}{"mode": "ISTIO_MUTUAL"}}}
	if subsets != nil {
		spec["subsets"] = subsets
	}
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]interface{}{"name": "reviews", "namespace": "shop"},
		"spec":     spec,
	}}
}

// withoutManagedDestinations blanks the destination lists of the managed
// routes, which are the only thing the plugin may change in a spec.
func withoutManagedDestinations(t *testing.T, spec map[string]interface{}, refs []RouteRef) map[string]interface{} {
	out := runtime.DeepCopyJSON(spec)
	for _, ref := range refs {
		i, err := locateRoute(out, ref)
		require.NoError(t, err)
		asMap(routesOf(out, ref.Kind)[i])["route"] = "managed"
	}
	return out
}

// withoutAdded drops the routes a canary added, and the mirror it set on its
// managed routes, and returns the managed routes' refs as they are once the
// added routes are gone (the positions they had before start).
func withoutAdded(spec map[string]interface{}, added []string, refs []RouteRef) (map[string]interface{}, []RouteRef) {
	out := runtime.DeepCopyJSON(spec)
	names := map[string]bool{}
	for _, n := range added {
		names[n] = true
	}
	shift := map[int]int{}
	var kept []interface{}
	removed := 0
	for i, raw := range routesOf(out, "http") {
		r := asMap(raw)
		if names[asString(r["name"])] {
			removed++
			continue
		}
		shift[i] = removed
		kept = append(kept, r)
	}
	if out["http"] != nil {
		out["http"] = kept
	}
	aligned := make([]RouteRef, len(refs))
	for i, ref := range refs {
		aligned[i] = ref
		if ref.Kind == "http" {
			aligned[i].Index -= shift[ref.Index]
			delete(asMap(asSlice(out["http"])[aligned[i].Index]), "mirror")
			delete(asMap(asSlice(out["http"])[aligned[i].Index]), "mirrorPercentage")
		}
	}
	return out, aligned
}

// fuzzServicePorts gives the Service up to three ports of the protocols
// Istio tells apart, or nil to keep the fixture's one HTTP port.
func fuzzServicePorts(src *byteSource) []corev1.ServicePort {
	n := src.next(4)
	if n == 0 {
		return nil
	}
	names := []string{"http", "grpc-admin", "tcp-db", "https", "", "mongo", "dns", "web"}
	var ports []corev1.ServicePort
	for i := 0; i < n; i++ {
		port := corev1.ServicePort{Name: names[src.next(len(names))], Port: int32(9000 + i)}
		switch src.next(4) {
		case 1:
			port.Protocol = corev1.ProtocolUDP
		case 2:
			appProtocol := []string{"tcp", "http", "kubernetes.io/h2c", "kubernetes.io/wss"}[src.next(4)]
			port.AppProtocol = &appProtocol
		}
		ports = append(ports, port)
	}
	return ports
}

func FuzzRoutingInvariants(f *testing.F) {
	f.Add([]byte{3, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1}, uint8(10), uint8(50), uint8(0))
	f.Add([]byte{5, 2, 1, 1, 1, 2, 1, 1, 1, 1, 0, 0, 4, 0, 1, 2}, uint8(0), uint8(100), uint8(7))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(100), uint8(1), uint8(3))
	f.Add([]byte{}, uint8(30), uint8(70), uint8(4))
	// No routing yet, and a Service with an HTTP, a TCP and a TLS port.
	f.Add([]byte{0, 0, 1, 1, 0, 3, 0, 0, 2, 0, 3, 0, 3}, uint8(10), uint8(40), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, startWeight, nextWeight, extras uint8) {
		src := &byteSource{data: data}
		snap := loadSnapshot(t, "no-istio")
		snap.VirtualServices = []*unstructured.Unstructured{fuzzVirtualService(src, "reviews"), fuzzVirtualService(src, "reviews-extra")}
		snap.DestinationRules = []*unstructured.Unstructured{fuzzDestinationRule(src)}
		if ports := fuzzServicePorts(src); ports != nil {
			snap.Service.Spec.Ports = ports
		}
		if src.next(4) == 3 {
			snap.VirtualServices = nil // no routing yet: start creates it
		}
		original := map[string]map[string]interface{}{}
		for _, obj := range append(append([]*unstructured.Unstructured{}, snap.VirtualServices...), snap.DestinationRules...) {
			original[obj.GetKind()+"/"+obj.GetName()] = runtime.DeepCopyJSON(obj.Object["spec"].(map[string]interface{}))
		}

		intent := Intent{Action: ActionStart, Weight: int(startWeight) % 101, Sticky: extras&2 != 0}
		if extras&1 != 0 {
			intent.Matches = []MatchRule{{Name: "x-fuzz", Op: "exact", Value: "1"}, {Cookie: true, Name: "beta", Op: "exact", Value: "on"}}
		}
		if extras&4 != 0 {
			mirror := int(extras) % 101
			intent.Mirror = &mirror
		}
		plan, err := computeChecked(t, *snap, intent)
		if err != nil {
			return // refusing is always allowed; writing something wrong never is
		}
		assertManagedWeightsSumTo100(t, plan)
		assertCreatedRoutesPerPort(t, snap.Service, plan)
		for _, c := range plan.Changes {
			st, err := ReadState(c.Desired, "reviews")
			require.NoError(t, err)
			before := original[c.Desired.GetKind()+"/"+c.Desired.GetName()]
			after := c.Desired.Object["spec"].(map[string]interface{})
			switch {
			case before == nil:
				// created by the plugin
			case c.Desired.GetKind() == "VirtualService":
				afterWithoutAdded, refs := withoutAdded(after, st.AddedRoutes, st.Routes)
				require.Equal(t, withoutManagedDestinations(t, before, refs), withoutManagedDestinations(t, afterWithoutAdded, refs), "only managed destination lists and mirrors change, besides the routes start added")
			default:
				require.Equal(t, len(subsetsOf(before))+len(st.AddedSubsets), len(subsetsOf(after)), "start only adds subsets")
				for i, subset := range subsetsOf(before) {
					require.Equal(t, subset, subsetsOf(after)[i], "existing subsets are kept as they were")
				}
			}
		}
		snap.apply(plan)

		plan, err = computeChecked(t, *snap, Intent{Action: ActionWeight, Weight: int(nextWeight) % 101})
		require.NoError(t, err)
		assertManagedWeightsSumTo100(t, plan)
		assertCreatedRoutesPerPort(t, snap.Service, plan)
		snap.apply(plan)

		plan, err = computeChecked(t, *snap, Intent{Action: ActionAbort})
		require.NoError(t, err)
		snap.apply(plan)
		for _, obj := range snap.VirtualServices {
			if before, adopted := original[obj.GetKind()+"/"+obj.GetName()]; adopted {
				requireAbortRestored(t, before, obj, "reviews", "start then abort restores %s but the canary's share", obj.GetName())
			}
		}
		// The DestinationRule comes back exactly too, except that a subset a
		// route named before start (a dangling reference start made real) is
		// never removed while that route still names it, nor the stable
		// subset that a VirtualService start created (abort keeps it,
		// pinned to stable) names, nor the stable subset an adopted route
		// names where abort gave it the canary's pre-start share.
		var originalRoutes []objectSpec
		for name, spec := range original {
			if name != "DestinationRule/reviews" {
				originalRoutes = append(originalRoutes, objectSpec{namespace: "shop", spec: spec})
			}
		}
		for _, obj := range snap.VirtualServices {
			originalRoutes = append(originalRoutes, objectSpec{namespace: "shop", spec: obj.Object["spec"].(map[string]interface{})})
		}
		dangling := referencedSubsets(originalRoutes, serviceRef{name: "reviews", namespace: "shop", clusterDomain: DefaultClusterDomain})
		for _, raw := range subsetsOf(original["DestinationRule/reviews"]) {
			delete(dangling, asString(asMap(raw)["name"]))
		}
		restored := runtime.DeepCopyJSON(snap.DestinationRules[0].Object["spec"].(map[string]interface{}))
		removeSubsets(restored, dangling)
		require.Equal(t, original["DestinationRule/reviews"], restored, "start then abort restores the DestinationRule")
		again, err := computeChecked(t, *snap, Intent{Action: ActionAbort})
		require.NoError(t, err)
		require.False(t, again.Changed(), "abort twice writes nothing")
	})
}
