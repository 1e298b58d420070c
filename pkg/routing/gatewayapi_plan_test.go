package routing

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// loadGatewaySnapshot reads testdata/routing/gatewayapi/NAME/cluster.yaml,
// with the namespace's Services read (the canary's among them), as a
// Gateway API canary's commands read them.
func loadGatewaySnapshot(t testing.TB, name string) *Snapshot {
	t.Helper()
	snap := loadSnapshot(t, "gatewayapi/"+name)
	snap.Services = append(append(snap.Services[:0:0], *snap.Service), snap.Services...)
	return snap
}

var gatewayIntent = &GatewayIntent{Namespace: "istio-ingress", Name: "public", Hosts: []string{"www.example.com", "shop.example.com"}}

func TestGatewayAPIFlowsMatchGoldenFiles(t *testing.T) {
	asked := func(i Intent) Intent { i.RoutingAPI = RoutingAPIGatewayAPI; return i }
	flows := []struct {
		cluster, flow string
		steps         []step
	}{
		{"mesh-new", "promote", []step{
			{"start", start(10)}, {"start-again", start(10)}, {"weight-50", weight(50)},
			{"promote", promote}, {"promote-again", promote},
		}},
		{"mesh-new", "abort", []step{{"start", start(10)}, {"abort", abort}, {"abort-again", abort}}},
		{"bookinfo-adopted", "abort", []step{
			{"start-v3", Intent{Action: ActionStart, Weight: 10, Canary: "v3"}}, {"weight-30", weight(30)}, {"abort", abort},
		}},
		{"bookinfo-adopted", "extras-promote", []step{
			{"start-header-cookie-sticky-mirror", Intent{Action: ActionStart, Weight: 10, Canary: "v3", Sticky: true, Mirror: intPtr(25), Routes: []string{"default"},
				Matches: []MatchRule{{Name: "x-tester", Op: "exact", Value: "yes"}, {Name: "user-agent", Op: "prefix", Value: "qa-bot"}, {Cookie: true, Name: "beta", Op: "exact", Value: "on"}}}},
			{"weight-40-mirror-5", Intent{Action: ActionWeight, Weight: 40, Mirror: intPtr(5)}},
			{"route-clears-matches", Intent{Action: ActionRoute}},
			{"promote", promote},
		}},
		{"multi-port", "promote", []step{{"start", asked(start(20))}, {"promote", promote}}},
		{"ingress", "gateway-abort", []step{
			{"start", asked(Intent{Action: ActionStart, Weight: 20, Gateway: gatewayIntent})},
			{"start-again", asked(Intent{Action: ActionStart, Weight: 20, Gateway: gatewayIntent})},
			{"abort", abort},
		}},
	}
	for _, f := range flows {
		t.Run(f.cluster+"/"+f.flow, func(t *testing.T) {
			snap := loadGatewaySnapshot(t, f.cluster)
			for i, s := range f.steps {
				plan, err := computeChecked(t, *snap, s.intent)
				require.NoError(t, err, "step %s", s.name)
				testutil.Golden(t, testutil.Testdata("routing", "gatewayapi", f.cluster, f.flow, fmt.Sprintf("%02d-%s.yaml", i+1, s.name)), renderPlan(t, plan))
				applyInStages(t, snap, plan)
			}
		})
	}
}

// applyInStages writes a plan change by change, checking after each that
// no route names a Service that does not exist (but those routes named
// before the plan), and that the managed rules' weights add up to 100.
func applyInStages(t *testing.T, snap *Snapshot, plan *Plan) {
	t.Helper()
	dangling := missingServicesNamed(snap)
	for _, c := range plan.Changes {
		snap.applyChange(c)
		for name := range missingServicesNamed(snap) {
			assert.True(t, dangling[name], "after writing %s %s, a route names Service %s, which does not exist", c.Desired.GetKind(), c.Desired.GetName(), name)
		}
	}
	assertManagedBackendWeights(t, snap)
	snap.Now = snap.Now.Add(60e9)
}

// missingServicesNamed are the Services the routes name that do not exist.
func missingServicesNamed(snap *Snapshot) map[string]bool {
	exists := map[string]bool{}
	for _, s := range snap.Services {
		exists[s.Name] = true
	}
	missing := map[string]bool{}
	for name := range gatewayBackendOf(snap).servicesNamed() {
		if !exists[name] {
			missing[name] = true
		}
	}
	return missing
}

func gatewayBackendOf(snap *Snapshot) *gatewayAPIBackend {
	return newGatewayAPIBackend(&planner{snap: *snap, svc: serviceRef{name: snap.Service.Name, namespace: snap.Service.Namespace}})
}

func assertManagedBackendWeights(t *testing.T, snap *Snapshot) {
	t.Helper()
	for _, route := range snap.GatewayAPIRoutes {
		st, err := ReadState(route, snap.Service.Name)
		require.NoError(t, err)
		if st == nil || st.Phase != PhaseProgressing {
			continue
		}
		o := &object{live: route, desired: route}
		for _, ref := range st.Routes {
			i, err := newRouteFinder(o).index(ref)
			require.NoError(t, err, "managed %s of %s", describeRule(ref), route.GetName())
			var sum int64
			for _, b := range backendRefsOf(asMap(rulesOf(o.spec())[i])) {
				sum += backendWeight(asMap(b))
			}
			assert.Equal(t, int64(100), sum, "%s of %s", describeRule(ref), route.GetName())
		}
	}
}

func TestGatewayAPIAbortRestoresTheAdoptedRouteExactly(t *testing.T) {
	snap := loadGatewaySnapshot(t, "bookinfo-adopted")
	before := runtime.DeepCopyJSONValue(snap.object("HTTPRoute", "reviews").Object["spec"])
	services := len(snap.Services)
	for _, intent := range []Intent{
		{Action: ActionStart, Weight: 10, Canary: "v3", Sticky: true, Mirror: intPtr(10), Matches: []MatchRule{{Name: "x-tester", Op: "exact", Value: "yes"}}},
		weight(60), abort,
	} {
		plan, err := computeChecked(t, *snap, intent)
		require.NoError(t, err)
		applyInStages(t, snap, plan)
	}
	route := snap.object("HTTPRoute", "reviews")
	assert.Equal(t, before, route.Object["spec"])
	assert.Equal(t, "keep me", route.GetAnnotations()["other.tool/note"])
	assert.Len(t, snap.Services, services, "the Service start created for v3 is deleted")
	again, err := Compute(*snap, abort)
	require.NoError(t, err)
	assert.False(t, again.Changed(), "abort twice writes nothing")
}

func TestGatewayAPIAbortAfterSomeoneChangedTheRouteOnlyResetsBackends(t *testing.T) {
	snap := loadGatewaySnapshot(t, "bookinfo-adopted")
	plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3"})
	require.NoError(t, err)
	snap.apply(plan)
	rules := snap.object("HTTPRoute", "reviews").Object["spec"].(map[string]interface{})["rules"].([]interface{})
	rules[1].(map[string]interface{})["timeouts"] = map[string]interface{}{"request": "9s"}

	plan, err = Compute(*snap, abort)
	require.NoError(t, err)
	require.Len(t, plan.Warnings, 1)
	assert.Contains(t, plan.Warnings[0], "HTTPRoute bookinfo/reviews changed since the canary started")
	applyInStages(t, snap, plan)
	def := snap.object("HTTPRoute", "reviews").Object["spec"].(map[string]interface{})["rules"].([]interface{})[1].(map[string]interface{})
	assert.Equal(t, map[string]interface{}{"request": "9s"}, def["timeouts"], "the other writer's change survives")
	require.Len(t, def["backendRefs"], 1)
	assert.Equal(t, "reviews-v1", def["backendRefs"].([]interface{})[0].(map[string]interface{})["name"])
}

func TestGatewayAPIRunningTheSameCommandTwiceChangesNothing(t *testing.T) {
	for _, cluster := range []string{"mesh-new", "bookinfo-adopted", "multi-port", "ingress"} {
		for _, intents := range [][]Intent{{start(10)}, {start(10), weight(40)}, {start(10), promote}, {start(10), abort}} {
			snap := loadGatewaySnapshot(t, cluster)
			for i, intent := range intents {
				intent.RoutingAPI = RoutingAPIGatewayAPI
				if cluster == "bookinfo-adopted" && i == 0 {
					intent.Canary = "v3"
				}
				intents[i] = intent
				plan, err := Compute(*snap, intent)
				require.NoError(t, err, "%s %v", cluster, intent)
				snap.apply(plan)
			}
			again, err := Compute(*snap, intents[len(intents)-1])
			require.NoError(t, err, "%s %v", cluster, intents)
			assert.False(t, again.Changed(), "%s: %v twice must write nothing", cluster, intents)
		}
	}
}

// A mirror of part of the traffic carries percent; mirroring all of it
// leaves the field out (the API's default, and all a CRD older than
// Gateway API v1.2 knows).
func TestGatewayAPIMirrorPercentOnlyBelowAll(t *testing.T) {
	for mirror, want := range map[int]interface{}{30: int64(30), 100: nil} {
		snap := loadGatewaySnapshot(t, "bookinfo-adopted")
		plan, err := computeChecked(t, *snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3", Mirror: intPtr(mirror)})
		require.NoError(t, err)
		applyInStages(t, snap, plan)
		var found bool
		for _, rule := range rulesOf(snap.object("HTTPRoute", "reviews").Object["spec"].(map[string]interface{})) {
			for _, f := range asSlice(asMap(rule)["filters"]) {
				if m := asMap(asMap(f)["requestMirror"]); m != nil {
					found = true
					assert.Equal(t, want, m["percent"], "--mirror %d", mirror)
				}
			}
		}
		assert.True(t, found, "--mirror %d sets a RequestMirror", mirror)
	}
}
