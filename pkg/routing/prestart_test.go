package routing

import (
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// requireAbortRestored checks an adopted routing object after abort
// against its pre-start spec: every route (or rule) that split the
// Service between its stable and canary versions alone sends the canary
// nothing and keeps the total weight it had, and everything else, weights
// of other routes included, is as it was (in such a route a destination to
// the canary may name stable instead). Start planned no --route.
func requireAbortRestored(t testing.TB, before map[string]interface{}, after *unstructured.Unstructured, service string, msgAndArgs ...interface{}) {
	t.Helper()
	st, err := ReadState(after, service)
	require.NoError(t, err, msgAndArgs...)
	if st == nil {
		// Start left it alone: it has no managed route.
		require.Equal(t, before, after.Object["spec"], msgAndArgs...)
		return
	}
	require.Equal(t, PhaseAborted, st.Phase, msgAndArgs...)
	svcNamespace := st.Namespace // set where the object is in another namespace
	if svcNamespace == "" {
		svcNamespace = after.GetNamespace()
	}
	want := runtime.DeepCopyJSON(before)
	got := runtime.DeepCopyJSON(asMap(after.Object["spec"]))
	for _, kind := range append(append([]string{}, routeKinds...), gatewayRules) {
		wantRoutes, gotRoutes := asSlice(want[kind]), asSlice(got[kind])
		require.Len(t, gotRoutes, len(wantRoutes), msgAndArgs...)
		for i := range wantRoutes {
			wantTargets, gotTargets := targetList(asMap(wantRoutes[i]), kind), targetList(asMap(gotRoutes[i]), kind)
			wantTotal, wantCanary, splitsAlone := targetWeights(wantTargets, st, serviceRef{name: service, namespace: svcNamespace, clusterDomain: DefaultClusterDomain}, after.GetNamespace())
			gotTotal, gotCanary, _ := targetWeights(gotTargets, st, serviceRef{name: service, namespace: svcNamespace, clusterDomain: DefaultClusterDomain}, after.GetNamespace())
			if splitsAlone && wantCanary > 0 {
				require.Zero(t, gotCanary, "%s route #%d of %s still sends the canary traffic after abort: %v then %v", kind, i, after.GetName(), wantRoutes[i], gotRoutes[i])
				require.Equal(t, wantTotal, gotTotal, "%s route #%d of %s keeps its total weight", kind, i, after.GetName())
				for _, d := range append(wantTargets, gotTargets...) {
					delete(d, "weight")
					asStable(d, st)
				}
			}
		}
	}
	require.Equal(t, want, got, msgAndArgs...)
}

// targetWeights sums a route's weights, and those to the canary, and says
// whether it sends traffic to nothing but the Service's stable and canary
// versions (idle ones aside).
func targetWeights(targets []map[string]interface{}, st *State, svc serviceRef, namespace string) (total, canary int64, splitsAlone bool) {
	stable := false
	for _, d := range targets {
		w := targetWeight(d, len(targets))
		total += w
		var toCanary, toStable, otherHost bool
		if dest := asMap(d["destination"]); dest != nil {
			// Only another version of the Service is idle at weight 0.
			otherHost = !svc.isHost(asString(dest["host"]), namespace)
			toCanary = svc.isHost(asString(dest["host"]), namespace) && asString(dest["subset"]) == st.CanarySubset
			toStable = svc.isHost(asString(dest["host"]), namespace) && (asString(dest["subset"]) == st.StableSubset || asString(dest["subset"]) == "")
		} else {
			toCanary = asString(d["name"]) == st.CanarySubset
			toStable = asString(d["name"]) == st.StableSubset || asString(d["name"]) == svc.name
		}
		if toCanary {
			canary += w
		}
		if !toCanary && !toStable && (w > 0 || otherHost) {
			return total, canary, false
		}
		sends := w > 0
		if _, isDestination := d["destination"]; isDestination {
			// A missing weight among several is "some" to the planner.
			sends = sendsTraffic(d, len(targets))
		}
		stable = stable || (toStable && sends)
	}
	return total, canary, stable
}

// targetList are the destinations (VirtualService) or backendRefs (Gateway
// API rules) of a route, as maps of the object.
func targetList(route map[string]interface{}, kind string) []map[string]interface{} {
	list := destinationsOf(route)
	if kind == gatewayRules {
		list = backendRefsOf(route)
	}
	out := make([]map[string]interface{}, 0, len(list))
	for _, raw := range list {
		out = append(out, asMap(raw))
	}
	return out
}

// asStable names stable where a destination or backendRef names the canary.
func asStable(d map[string]interface{}, st *State) {
	if dest := asMap(d["destination"]); dest != nil && asString(dest["subset"]) == st.CanarySubset {
		dest["subset"] = st.StableSubset
	}
	if _, isDestination := d["destination"]; !isDestination && asString(d["name"]) == st.CanarySubset {
		d["name"] = st.StableSubset
	}
}

func targetWeight(d map[string]interface{}, siblings int) int64 {
	if _, isDestination := d["destination"]; isDestination {
		return destinationWeight(d, siblings)
	}
	return backendWeight(d)
}
