package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// driftOf is a drift without the parts only the planner reads, for
// comparisons.
func driftOf(drift []Drift) []Drift {
	out := []Drift{}
	for _, d := range drift {
		d.liveSplit = nil
		out = append(out, d)
	}
	return out
}

// running starts a canary on a fixture and writes the plan into it.
func running(t *testing.T, snap *Snapshot, intent Intent) *Snapshot {
	t.Helper()
	plan, err := computeChecked(t, *snap, intent)
	require.NoError(t, err)
	snap.apply(plan)
	return snap
}

func routesAt(t *testing.T, obj *unstructured.Unstructured, path ...string) []interface{} {
	t.Helper()
	list, found, err := unstructured.NestedSlice(obj.Object, path...)
	require.NoError(t, err)
	require.True(t, found, "%s has no %v", obj.GetName(), path)
	return list
}

// setDestinations replaces the destinations of a VirtualService's HTTP
// route, as a hand edit or a re-applied manifest does.
func setDestinations(t *testing.T, vs *unstructured.Unstructured, index int, dests ...interface{}) {
	t.Helper()
	http := routesAt(t, vs, "spec", "http")
	http[index].(map[string]interface{})["route"] = dests
	require.NoError(t, unstructured.SetNestedSlice(vs.Object, http, "spec", "http"))
}

func dest(subset string, weight int64) map[string]interface{} {
	d := map[string]interface{}{"destination": map[string]interface{}{"host": "reviews", "subset": subset}}
	if weight >= 0 {
		d["weight"] = weight
	}
	return d
}

func removeObject(list []*unstructured.Unstructured, kind, name string) []*unstructured.Unstructured {
	var kept []*unstructured.Unstructured
	for _, obj := range list {
		if obj.GetKind() != kind || obj.GetName() != name {
			kept = append(kept, obj)
		}
	}
	return kept
}

func removeSubset(t *testing.T, dr *unstructured.Unstructured, name string) {
	t.Helper()
	var kept []interface{}
	for _, raw := range routesAt(t, dr, "spec", "subsets") {
		if raw.(map[string]interface{})["name"] != name {
			kept = append(kept, raw)
		}
	}
	require.NoError(t, unstructured.SetNestedSlice(dr.Object, kept, "spec", "subsets"))
}

// Every drift an Istio canary can suffer, on a VirtualService and
// DestinationRule the plugin created (no-istio) and on adopted ones
// (bookinfo-adopted): what status and check are told, and the live weight.
func TestIstioDrift(t *testing.T) {
	created := func(t *testing.T) *Snapshot {
		return running(t, loadSnapshot(t, "no-istio"), start(10))
	}
	adopted := func(t *testing.T) *Snapshot {
		return running(t, loadSnapshot(t, "bookinfo-adopted"), Intent{Action: ActionStart, Weight: 10, Canary: "v3", Routes: []string{"default"}})
	}
	withMatch := func(t *testing.T) *Snapshot {
		return running(t, loadSnapshot(t, "no-istio"), Intent{Action: ActionStart, Weight: 10, Matches: []MatchRule{{Name: "x-tester", Op: "exact", Value: "yes"}}})
	}
	intp := func(i int) *int { return &i }
	cases := []struct {
		name   string
		setup  func(t *testing.T) *Snapshot
		mutate func(t *testing.T, s *Snapshot)
		weight *int
		drift  []Drift
	}{
		{"none", created, func(*testing.T, *Snapshot) {}, intp(10), []Drift{}},
		{"weights hand-patched", created, func(t *testing.T, s *Snapshot) {
			setDestinations(t, s.object("VirtualService", "reviews"), 0, dest("v1", 70), dest("v2", 30))
		}, intp(30), []Drift{{Object: "VirtualService/reviews", Route: "http route #0", What: DriftWeight, Recorded: "v1 90 / v2 10", Live: "v1 70 / v2 30"}}},
		{"all-v1 re-applied", created, func(t *testing.T, s *Snapshot) {
			setDestinations(t, s.object("VirtualService", "reviews"), 0, dest("v1", -1))
		}, intp(0), []Drift{{Object: "VirtualService/reviews", Route: "http route #0", What: DriftWeight, Recorded: "v1 90 / v2 10", Live: "v1 100"}}},
		{"route to the Service without a subset", created, func(t *testing.T, s *Snapshot) {
			setDestinations(t, s.object("VirtualService", "reviews"), 0, map[string]interface{}{"destination": map[string]interface{}{"host": "reviews"}})
		}, nil, []Drift{{Object: "VirtualService/reviews", Route: "http route #0", What: DriftWeight, Recorded: "v1 90 / v2 10", Live: "reviews (any version) 100"}}},
		{"pre-canary manifest re-applied (GitOps)", adopted, func(t *testing.T, s *Snapshot) {
			vs := s.object("VirtualService", "reviews")
			st, err := ReadState(vs, "reviews")
			require.NoError(t, err)
			spec, err := st.preStartSpec()
			require.NoError(t, err)
			vs.Object["spec"] = spec
		}, intp(0), []Drift{{Object: "VirtualService/reviews", Route: `http route "default"`, What: DriftWeight, Recorded: "v1 90 / v3 10", Live: "v1 100"}}},
		{"VirtualService deleted", created, func(t *testing.T, s *Snapshot) {
			s.VirtualServices = removeObject(s.VirtualServices, "VirtualService", "reviews")
		}, nil, []Drift{{Object: "VirtualService", What: DriftObjectGone, Recorded: "canary version=v2 on the VirtualServices routing the Service (recorded on DestinationRule/reviews)", Live: "no VirtualService records the canary; no VirtualService routes the Service, which balances over every version's pods"}}},
		{"VirtualService replaced without the record", created, func(t *testing.T, s *Snapshot) {
			s.object("VirtualService", "reviews").SetAnnotations(nil)
		}, nil, []Drift{{Object: "VirtualService", What: DriftObjectGone, Recorded: "canary version=v2 on the VirtualServices routing the Service (recorded on DestinationRule/reviews)", Live: "no VirtualService records the canary; VirtualService/reviews routes the Service without the record (replaced?)"}}},
		{"canary subset deleted", created, func(t *testing.T, s *Snapshot) {
			removeSubset(t, s.object("DestinationRule", "reviews"), "v2")
		}, intp(10), []Drift{{Object: "DestinationRule/reviews", Route: "subset v2", What: DriftSubsetGone, Recorded: "selects version=v2", Live: "gone"}}},
		{"DestinationRule deleted", created, func(t *testing.T, s *Snapshot) {
			s.DestinationRules = nil
		}, intp(10), []Drift{
			{Object: "DestinationRule/reviews", Route: "subset v1", What: DriftSubsetGone, Recorded: "selects version=v1", Live: "gone: no DestinationRule of the Service's host"},
			{Object: "DestinationRule/reviews", Route: "subset v2", What: DriftSubsetGone, Recorded: "selects version=v2", Live: "gone: no DestinationRule of the Service's host"},
		}},
		{"managed route's match changed", adopted, func(t *testing.T, s *Snapshot) {
			vs := s.object("VirtualService", "reviews")
			http := routesAt(t, vs, "spec", "http")
			for _, raw := range http {
				if r := raw.(map[string]interface{}); r["name"] == "default" {
					r["name"] = "catch-all"
				}
			}
			require.NoError(t, unstructured.SetNestedSlice(vs.Object, http, "spec", "http"))
		}, nil, []Drift{{Object: "VirtualService/reviews", Route: `http route "default"`, What: DriftRouteGone, Recorded: "v1 90 / v3 10", Live: "gone"}}},
		{"managed route pointed elsewhere", created, func(t *testing.T, s *Snapshot) {
			setDestinations(t, s.object("VirtualService", "reviews"), 0, dest("legacy", -1))
		}, nil, []Drift{{Object: "VirtualService/reviews", Route: "http route #0", What: DriftRouteGone, Recorded: "v1 90 / v2 10", Live: "sends subset legacy 100 (no longer the canary's versions)"}}},
		{"match route deleted", withMatch, func(t *testing.T, s *Snapshot) {
			vs := s.object("VirtualService", "reviews")
			http := routesAt(t, vs, "spec", "http")
			require.NoError(t, unstructured.SetNestedSlice(vs.Object, http[1:], "spec", "http"))
		}, intp(10), []Drift{{Object: "VirtualService/reviews", Route: `route "canary-match"`, What: DriftAddedRouteGone, Recorded: "sends the matching requests to v2", Live: "gone"}}},
		{"edited elsewhere", adopted, func(t *testing.T, s *Snapshot) {
			vs := s.object("VirtualService", "reviews")
			http := routesAt(t, vs, "spec", "http")
			http[0].(map[string]interface{})["timeout"] = "10s"
			require.NoError(t, unstructured.SetNestedSlice(vs.Object, http, "spec", "http"))
		}, intp(10), []Drift{{Object: "VirtualService/reviews", What: DriftEdited}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := c.setup(t)
			c.mutate(t, snap)
			live := LiveOf(*snap, "reviews")
			got := driftOf(live.Drift)
			if c.name == "edited elsewhere" {
				require.Len(t, got, 1)
				assert.Equal(t, DriftEdited, got[0].What)
				assert.Equal(t, "VirtualService/reviews", got[0].Object)
				assert.Regexp(t, `^spec hash [0-9a-f]{16}$`, got[0].Live)
			} else {
				assert.Equal(t, c.drift, got)
			}
			assert.Equal(t, c.weight, live.Weight)

			// status reads the same from the namespace's objects.
			statuses := SummarizeRouting(append(snap.Services, *snap.Service), snap.Deployments, snap.VirtualServices, snap.DestinationRules, snap.GatewayAPIRoutes)
			require.Len(t, statuses, 1)
			assert.Equal(t, live.Weight, statuses[0].LiveWeight)
			assert.Equal(t, got, driftOf(statuses[0].Drift))

			// check reports each drift, and only with Drift asked for.
			findings := Check(*snap, Intent{}, CheckOptions{MinAvailable: 1, Drift: true})
			without := Check(*snap, Intent{}, CheckOptions{MinAvailable: 1})
			assert.Len(t, findings, len(without)+len(got), "one finding per drift:\n%v", findings)
		})
	}
}

// The same for a Gateway API canary: per-version Services it created
// (mesh-new) or found (bookinfo-adopted).
func TestGatewayAPIDrift(t *testing.T) {
	asked := func(i Intent) Intent { i.RoutingAPI = RoutingAPIGatewayAPI; return i }
	created := func(t *testing.T) *Snapshot {
		return running(t, loadGatewaySnapshot(t, "mesh-new"), asked(start(10)))
	}
	adopted := func(t *testing.T) *Snapshot {
		return running(t, loadGatewaySnapshot(t, "bookinfo-adopted"), Intent{Action: ActionStart, Weight: 10, Canary: "v3", Routes: []string{"default"}})
	}
	setBackends := func(t *testing.T, route *unstructured.Unstructured, rule int, refs ...interface{}) {
		t.Helper()
		rules := routesAt(t, route, "spec", "rules")
		rules[rule].(map[string]interface{})["backendRefs"] = refs
		require.NoError(t, unstructured.SetNestedSlice(route.Object, rules, "spec", "rules"))
	}
	backend := func(name string, weight int64) map[string]interface{} {
		ref := map[string]interface{}{"group": "", "kind": "Service", "name": name, "port": int64(9080)}
		if weight >= 0 {
			ref["weight"] = weight
		}
		return ref
	}
	intp := func(i int) *int { return &i }
	cases := []struct {
		name   string
		setup  func(t *testing.T) *Snapshot
		mutate func(t *testing.T, s *Snapshot)
		weight *int
		drift  []Drift
	}{
		{"none", created, func(*testing.T, *Snapshot) {}, intp(10), []Drift{}},
		{"weights hand-patched", created, func(t *testing.T, s *Snapshot) {
			setBackends(t, s.object("HTTPRoute", "reviews"), 0, backend("reviews-v1", 7), backend("reviews-v2", 3))
		}, intp(30), []Drift{{Object: "HTTPRoute/reviews", Route: "rule #0", What: DriftWeight, Recorded: "v1 90 / v2 10", Live: "v1 70 / v2 30"}}},
		{"HTTPRoute re-applied to the Service", created, func(t *testing.T, s *Snapshot) {
			setBackends(t, s.object("HTTPRoute", "reviews"), 0, backend("reviews", -1))
		}, nil, []Drift{{Object: "HTTPRoute/reviews", Route: "rule #0", What: DriftWeight, Recorded: "v1 90 / v2 10", Live: "reviews (any version) 100"}}},
		{"pre-canary manifest re-applied (GitOps)", adopted, func(t *testing.T, s *Snapshot) {
			route := s.object("HTTPRoute", "reviews")
			st, err := ReadState(route, "reviews")
			require.NoError(t, err)
			spec, err := st.preStartSpec()
			require.NoError(t, err)
			route.Object["spec"] = spec
		}, intp(0), []Drift{{Object: "HTTPRoute/reviews", Route: `rule "default"`, What: DriftWeight, Recorded: "v1 90 / v3 10", Live: "v1 100"}}},
		{"canary's per-version Service deleted", created, func(t *testing.T, s *Snapshot) {
			var kept = s.Services[:0]
			for _, svc := range s.Services {
				if svc.Name != "reviews-v2" {
					kept = append(kept, svc)
				}
			}
			s.Services = kept
		}, intp(10), []Drift{{Object: "Service/reviews-v2", What: DriftServiceGone, Recorded: "selects version=v2 for the routes", Live: "gone"}}},
		{"rule pointed elsewhere", created, func(t *testing.T, s *Snapshot) {
			setBackends(t, s.object("HTTPRoute", "reviews"), 0, backend("legacy", -1))
		}, nil, []Drift{{Object: "HTTPRoute/reviews", Route: "rule #0", What: DriftRouteGone, Recorded: "v1 90 / v2 10", Live: "sends Service legacy 100 (no longer the canary's versions)"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := c.setup(t)
			c.mutate(t, snap)
			live := LiveOf(*snap, "reviews")
			assert.Equal(t, c.drift, driftOf(live.Drift))
			assert.Equal(t, c.weight, live.Weight)
			statuses := SummarizeRouting(snap.Services, snap.Deployments, snap.VirtualServices, snap.DestinationRules, snap.GatewayAPIRoutes)
			require.Len(t, statuses, 1)
			assert.Equal(t, RoutingAPIGatewayAPI, statuses[0].RoutingAPI)
			assert.Equal(t, c.weight, statuses[0].LiveWeight)
			assert.Equal(t, c.drift, driftOf(statuses[0].Drift))
		})
	}
}

// What weight, route and promote do on each drift (actOnDrift): re-assert
// where what to write is known, and say what they replaced; refuse, naming
// the object and the change, where it is not.
func TestVerbsOnDrift(t *testing.T) {
	created := func(t *testing.T) *Snapshot {
		return running(t, loadSnapshot(t, "no-istio"), start(10))
	}
	withMatch := func(t *testing.T) *Snapshot {
		return running(t, loadSnapshot(t, "no-istio"), Intent{Action: ActionStart, Weight: 10, Matches: []MatchRule{{Name: "x-tester", Op: "exact", Value: "yes"}}})
	}
	gateway := func(t *testing.T) *Snapshot {
		return running(t, loadGatewaySnapshot(t, "mesh-new"), Intent{Action: ActionStart, Weight: 10, RoutingAPI: RoutingAPIGatewayAPI})
	}
	patched := func(t *testing.T, s *Snapshot) {
		setDestinations(t, s.object("VirtualService", "reviews"), 0, dest("v1", 70), dest("v2", 30))
	}
	reapplied := func(t *testing.T, s *Snapshot) {
		setDestinations(t, s.object("VirtualService", "reviews"), 0, dest("v1", -1))
	}
	vsDeleted := func(t *testing.T, s *Snapshot) {
		s.VirtualServices = removeObject(s.VirtualServices, "VirtualService", "reviews")
	}
	subsetDeleted := func(t *testing.T, s *Snapshot) { removeSubset(t, s.object("DestinationRule", "reviews"), "v2") }
	pointedElsewhere := func(t *testing.T, s *Snapshot) {
		setDestinations(t, s.object("VirtualService", "reviews"), 0, dest("legacy", -1))
	}
	matchDeleted := func(t *testing.T, s *Snapshot) {
		vs := s.object("VirtualService", "reviews")
		require.NoError(t, unstructured.SetNestedSlice(vs.Object, routesAt(t, vs, "spec", "http")[1:], "spec", "http"))
	}
	serviceDeleted := func(t *testing.T, s *Snapshot) {
		kept := s.Services[:0]
		for _, svc := range s.Services {
			if svc.Name != "reviews-v2" {
				kept = append(kept, svc)
			}
		}
		s.Services = kept
	}
	gatewayPatched := func(t *testing.T, s *Snapshot) {
		route := s.object("HTTPRoute", "reviews")
		rules := routesAt(t, route, "spec", "rules")
		refs := rules[0].(map[string]interface{})["backendRefs"].([]interface{})
		refs[0].(map[string]interface{})["weight"] = int64(100)
		refs[1].(map[string]interface{})["weight"] = int64(0)
		require.NoError(t, unstructured.SetNestedSlice(route.Object, rules, "spec", "rules"))
	}
	cases := []struct {
		name   string
		setup  func(t *testing.T) *Snapshot
		mutate func(t *testing.T, s *Snapshot)
		intent Intent
		// refused is part of the error, "" when the verb goes ahead.
		refused string
		// replaced are the drifts the plan says it writes over.
		replaced []DriftKind
		warning  string
	}{
		{"weight over a patched split", created, patched, weight(50), "", []DriftKind{DriftWeight}, ""},
		{"weight to the live split", created, patched, weight(30), "", nil, ""},
		{"weight to the recorded weight over a re-applied route", created, reapplied, weight(10), "", []DriftKind{DriftWeight}, ""},
		{"route over a patched split", created, patched, Intent{Action: ActionRoute},
			"VirtualService shop/reviews http route #0: recorded v1 90 / v2 10, live v1 70 / v2 30\nRun kubectl canary weight reviews N first", nil, ""},
		{"promote over a patched split", created, patched, promote, "", []DriftKind{DriftWeight}, ""},
		{"weight with the VirtualService deleted", created, vsDeleted, weight(50), "live no VirtualService records the canary", nil, ""},
		{"route with the VirtualService deleted", created, vsDeleted, Intent{Action: ActionRoute}, "live no VirtualService records the canary", nil, ""},
		{"promote with the VirtualService deleted", created, vsDeleted, promote, "so promote would not act on what is live; nothing was changed:\n  VirtualService: recorded canary version=v2", nil, ""},
		{"weight with the canary's subset deleted", created, subsetDeleted, weight(50), "", nil, "DestinationRule shop/reviews had lost subset(s) v2 of the running canary; they are added back"},
		{"promote with the canary's subset deleted", created, subsetDeleted, promote, "DestinationRule shop/reviews subset v2: recorded selects version=v2, live gone", nil, ""},
		{"route with the canary's subset deleted", created, subsetDeleted, Intent{Action: ActionRoute}, "subset v2", nil, ""},
		{"weight with a managed route pointed elsewhere", created, pointedElsewhere, weight(50), "Put the routing back (kubectl edit virtualservice reviews -n shop)", nil, ""},
		{"weight with the match route deleted", withMatch, matchDeleted, weight(10), "", []DriftKind{DriftAddedRouteGone}, ""},
		{"weight on the Gateway API over a patched split", gateway, gatewayPatched, weight(50), "", []DriftKind{DriftWeight}, ""},
		{"weight on the Gateway API with a per-version Service deleted", gateway, serviceDeleted, weight(50), "", nil, "Service(s) shop/reviews-v2 of the running canary were missing; they are created again"},
		{"promote on the Gateway API with the canary's Service deleted", gateway, serviceDeleted, promote, "Service shop/reviews-v2: recorded selects version=v2 for the routes, live gone", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := c.setup(t)
			c.mutate(t, snap)
			plan, err := computeChecked(t, *snap, c.intent)
			if c.refused != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.refused)
				assert.Contains(t, err.Error(), "the live routing of service shop/reviews is not what its canary recorded")
				return
			}
			require.NoError(t, err)
			var replaced []DriftKind
			for _, d := range plan.Replaced {
				replaced = append(replaced, d.What)
			}
			assert.Equal(t, c.replaced, replaced)
			assert.True(t, plan.Changed(), "a verb on drift always writes: the summary must not say unchanged")
			if c.warning != "" {
				assert.Contains(t, plan.Warnings, c.warning)
			}
			// The preflight does not stop what the plan repairs.
			for _, f := range Check(*snap, c.intent, CheckOptions{MinAvailable: 1}) {
				assert.NotEqual(t, SeverityError, f.Severity, "preflight error: %s: %s", f.Object, f.Message)
			}
			// Written, the objects carry what the summary says: no drift.
			snap.apply(plan)
			assert.Empty(t, driftOf(LiveOf(*snap, "reviews").Drift))
		})
	}
}

// A promote cut short after the VirtualService (written first) and before
// the DestinationRule is no VirtualService gone: promote run again
// completes it. A promoted canary whose routes were reverted since is
// drift, and promote refuses to say it is done.
func TestPromoteOnPromotedCanary(t *testing.T) {
	snap := running(t, loadSnapshot(t, "no-istio"), start(10))
	plan, err := computeChecked(t, *snap, promote)
	require.NoError(t, err)
	for _, c := range plan.Changes {
		if c.Desired.GetKind() == "VirtualService" {
			snap.applyChange(c)
		}
	}
	assert.Empty(t, driftOf(LiveOf(*snap, "reviews").Drift))
	plan, err = computeChecked(t, *snap, promote)
	require.NoError(t, err)
	snap.apply(plan)

	// A GitOps sync puts the pre-promote route back.
	setDestinations(t, snap.object("VirtualService", "reviews"), 0, dest("v1", -1))
	live := LiveOf(*snap, "reviews")
	assert.Equal(t, []Drift{{Object: "VirtualService/reviews", Route: "http route #0", What: DriftWeight, Recorded: "v2 100", Live: "subset v1 100"}}, driftOf(live.Drift))
	_, err = computeChecked(t, *snap, promote)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "The canary was promoted (version=v2 is stable) and the routing changed since")
	var found []string
	for _, f := range Check(*snap, Intent{}, CheckOptions{MinAvailable: 1, Drift: true}) {
		found = append(found, string(f.Severity)+" "+f.Object+": "+f.Message)
	}
	assert.Contains(t, found, "warning VirtualService shop/reviews: http route #0 recorded v2 100, live subset v1 100: the routing changed since the canary was promoted (version=v2 stable). Set it back by hand or in Git, or start a new canary (kubectl canary start reviews)")
}
