package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// withoutObject drops kind/name from the snapshot, as kubectl delete would.
func (s *Snapshot) withoutObject(kind, name string) {
	list := &s.VirtualServices
	switch kind {
	case "DestinationRule":
		list = &s.DestinationRules
	case "HTTPRoute":
		list = &s.GatewayAPIRoutes
	}
	var kept []*unstructured.Unstructured
	for _, obj := range *list {
		if obj.GetName() != name {
			kept = append(kept, obj)
		}
	}
	*list = kept
}

// subsetsNamedMissing are the subsets the VirtualServices' routes to the
// Service name that its DestinationRule lacks.
func subsetsNamedMissing(s *Snapshot) map[string]bool {
	svc := serviceRef{name: s.Service.Name, namespace: s.Service.Namespace, clusterDomain: DefaultClusterDomain}
	var specs []objectSpec
	for _, vs := range s.VirtualServices {
		specs = append(specs, objectSpec{namespace: vs.GetNamespace(), spec: asMap(vs.Object["spec"])})
	}
	have := map[string]bool{}
	for _, dr := range s.DestinationRules {
		for _, raw := range subsetsOf(asMap(dr.Object["spec"])) {
			have[asString(asMap(raw)["name"])] = true
		}
	}
	missing := map[string]bool{}
	for name := range referencedSubsets(specs, svc) {
		if name != "" && !have[name] {
			missing[name] = true
		}
	}
	return missing
}

// TestAbortSendsAllToStableWhereRoutingWasDeleted: with the canary's
// VirtualService or DestinationRule deleted, abort writes routing that
// sends every call to the stable subset, creates what is gone (subsets
// before the routes that name them) and says so; the canary's subset
// goes, the stable one is there.
func TestAbortSendsAllToStableWhereRoutingWasDeleted(t *testing.T) {
	stripStableSubset := func(s *Snapshot) {
		dr := s.object("DestinationRule", "reviews")
		spec := asMap(dr.Object["spec"])
		removeSubsets(spec, map[string]bool{"v1": true})
	}
	cases := []struct {
		name, cluster string
		canary        string
		delete        func(s *Snapshot)
		warnings      []string
		// keepsCanarySubset: the DestinationRule is written before the
		// routes, which still name the canary's subset then.
		keepsCanarySubset bool
	}{
		{"created VirtualService deleted", "no-istio", "", func(s *Snapshot) { s.withoutObject("VirtualService", "reviews") },
			[]string{"no VirtualService routes service shop/reviews any more (the canary's was deleted), so the Service would balance calls over every version's pods, the canary's too; VirtualService shop/reviews is created again, sending all of them to stable subset v1 (version=v1)"}, false},
		{"adopted VirtualService deleted", "bookinfo-adopted", "v3", func(s *Snapshot) { s.withoutObject("VirtualService", "reviews") },
			[]string{"VirtualService bookinfo/reviews is created again, sending all of them to stable subset v1 (version=v1)"}, false},
		{"DestinationRule deleted", "no-istio", "", func(s *Snapshot) { s.withoutObject("DestinationRule", "reviews") },
			[]string{"DestinationRule shop/reviews, which named the versions of the canary, is gone; it is created again with subset v1 of stable version=v1, which the routes send all traffic to"}, false},
		{"both deleted but the DestinationRule", "no-istio", "", func(s *Snapshot) {
			s.withoutObject("VirtualService", "reviews")
			stripStableSubset(s)
		}, []string{"VirtualService shop/reviews is created again", "DestinationRule shop/reviews had lost subset v1 of stable version=v1, which the routes send all traffic to; it is added back"}, false},
		{"stable subset removed", "bookinfo-adopted", "v3", stripStableSubset,
			[]string{"DestinationRule bookinfo/reviews had lost subset v1 of stable version=v1, which the routes send all traffic to; it is added back"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := loadSnapshot(t, c.cluster)
			plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 30, Canary: c.canary})
			require.NoError(t, err)
			snap.apply(plan)
			c.delete(snap)

			plan, err = computeChecked(t, *snap, abort)
			require.NoError(t, err)
			assert.Equal(t, PhaseAborted, plan.State.Phase)
			for _, want := range c.warnings {
				assert.True(t, containsOne(plan.Warnings, want), "warnings %q lack %q", plan.Warnings, want)
			}
			missingBefore := subsetsNamedMissing(snap)
			for _, change := range plan.Changes {
				snap.applyChange(change)
				for name := range subsetsNamedMissing(snap) {
					assert.True(t, missingBefore[name], "after writing %s %s, a route names subset %s, which does not exist", change.Desired.GetKind(), change.Desired.GetName(), name)
				}
			}
			vs := snap.object("VirtualService", "reviews")
			require.NotNil(t, vs)
			st, err := ReadState(vs, "reviews")
			require.NoError(t, err)
			require.NotNil(t, st)
			assert.Equal(t, PhaseAborted, st.Phase)
			for _, kind := range routeKinds {
				for _, raw := range routesOf(asMap(vs.Object["spec"]), kind) {
					route := asMap(raw)
					if asString(route["name"]) == "jason" {
						continue // the user's own route, pinned to v2 before the canary
					}
					for _, d := range destinationsOf(route) {
						assert.Equal(t, "v1", destinationSubset(asMap(d)), "%s route %v", kind, route)
					}
				}
			}
			assert.Empty(t, subsetsNamedMissing(snap))
			subsets := map[string]bool{}
			for _, raw := range subsetsOf(asMap(snap.object("DestinationRule", "reviews").Object["spec"])) {
				subsets[asString(asMap(raw)["name"])] = true
			}
			assert.True(t, subsets["v1"], "the stable subset is there")
			canary := c.canary
			if canary == "" {
				canary = "v2"
			}
			assert.Equal(t, c.keepsCanarySubset, subsets[canary], "the canary's subset start added is pruned where no route names it")

			again, err := Compute(*snap, abort)
			require.NoError(t, err)
			assert.False(t, again.Changed(), "aborting again writes nothing")
		})
	}
}

// TestAbortAfterThePreStartSpecWasReapplied: kubectl apply of the
// pre-canary manifest keeps the plugin's annotations; abort keeps the
// spec, which is the one it restores, and says so instead of "not
// restored".
func TestAbortAfterThePreStartSpecWasReapplied(t *testing.T) {
	for name, c := range map[string]struct {
		snap       func() *Snapshot
		kind       string
		otherNames []string
	}{
		"istio":       {func() *Snapshot { return loadSnapshot(t, "bookinfo-adopted") }, "VirtualService", nil},
		"gateway api": {func() *Snapshot { return loadGatewaySnapshot(t, "bookinfo-adopted") }, "HTTPRoute", nil},
	} {
		t.Run(name, func(t *testing.T) {
			snap := c.snap()
			obj := snap.object(c.kind, "reviews")
			require.NotNil(t, obj)
			preStart := runtime.DeepCopyJSONValue(obj.Object["spec"])
			plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 30, Canary: "v3"})
			require.NoError(t, err)
			snap.apply(plan)
			snap.object(c.kind, "reviews").Object["spec"] = runtime.DeepCopyJSONValue(preStart)

			plan, err = Compute(*snap, abort)
			require.NoError(t, err)
			require.Len(t, plan.Warnings, 1, "%q", plan.Warnings)
			assert.Contains(t, plan.Warnings[0], c.kind+" bookinfo/reviews was set back to its pre-start spec by someone else while the canary ran; it keeps that spec")
			snap.apply(plan)
			assert.Equal(t, preStart, snap.object(c.kind, "reviews").Object["spec"])
			st, err := ReadState(snap.object(c.kind, "reviews"), "reviews")
			require.NoError(t, err)
			assert.Equal(t, PhaseAborted, st.Phase)
		})
	}
}

// TestAbortAfterTheHTTPRoutesWereDeleted: a Gateway API canary records
// itself on its routes only; with them gone, abort cannot tell the stable
// version, says so with the way out and writes nothing, and that way out
// routes everything to stable.
func TestAbortAfterTheHTTPRoutesWereDeleted(t *testing.T) {
	snap := loadGatewaySnapshot(t, "mesh-new")
	plan, err := Compute(*snap, start(30))
	require.NoError(t, err)
	applyInStages(t, snap, plan)
	snap.withoutObject("HTTPRoute", "reviews")

	_, err = Compute(*snap, abort)
	require.Error(t, err)
	assert.Equal(t, "no routing object records a canary of service shop/reviews, but Services reviews-v1, reviews-v2 (version=v1, version=v2), which kubectl canary created for one, are still there: the routes that carried the canary were deleted, so the Service balances its traffic over the pods of every version, the canary's too. Nothing records which version is stable, so nothing was written; to send all traffic to it, run kubectl canary start reviews with stable naming it and weight 0, then kubectl canary abort reviews", err.Error())

	for _, intent := range []Intent{{Action: ActionStart, Stable: "v1"}, abort} {
		plan, err = Compute(*snap, intent)
		require.NoError(t, err)
		applyInStages(t, snap, plan)
	}
	route := snap.object("HTTPRoute", "reviews")
	require.NotNil(t, route)
	for _, rule := range asSlice(asMap(route.Object["spec"])["rules"]) {
		backends := asSlice(asMap(rule)["backendRefs"])
		require.Len(t, backends, 1)
		assert.Equal(t, "reviews-v1", asString(asMap(backends[0])["name"]))
	}
}

// TestAbortSaysWhichReplacedRoutesStillReachTheCanary: a VirtualService
// replaced without the plugin's annotations (kubectl replace) records no
// managed routes; abort leaves its routes, and names those that still
// send traffic to the canary instead of claiming all of it is on stable.
func TestAbortSaysWhichReplacedRoutesStillReachTheCanary(t *testing.T) {
	for canary, want := range map[string]string{
		// Replaced by the pre-canary manifest: jason's pinned route is v2's.
		"v2": `http route "jason"`,
		// Replaced by a copy of the split, annotations dropped.
		"v3": `http route "slow-path", http route "default", tcp route #0`,
	} {
		t.Run(canary, func(t *testing.T) {
			snap := loadSnapshot(t, "bookinfo-adopted")
			preStart := runtime.DeepCopyJSONValue(snap.object("VirtualService", "reviews").Object["spec"])
			plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 30, Canary: canary})
			require.NoError(t, err)
			snap.apply(plan)
			vs := snap.object("VirtualService", "reviews")
			if canary == "v2" {
				vs.Object["spec"] = preStart
			}
			vs.SetAnnotations(nil)

			plan, err = Compute(*snap, abort)
			require.NoError(t, err)
			assert.Equal(t, []string{"VirtualService bookinfo/reviews records no canary (someone replaced it since start) and its " + want + " still send traffic to canary subset " + canary + " (version=" + canary + "); abort leaves them as they are: point them at stable subset v1 by hand (kubectl edit virtualservice reviews -n bookinfo)"}, plan.Warnings)
			snap.apply(plan)
			assert.Empty(t, subsetsNamedMissing(snap), "the canary's subset stays while routes name it")
		})
	}
}
