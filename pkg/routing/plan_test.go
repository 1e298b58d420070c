package routing

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// loadSnapshot reads testdata/routing/NAME/cluster.yaml.
func loadSnapshot(t testing.TB, name string) *Snapshot {
	t.Helper()
	return snapshotOf(t, testutil.ReadObjects(t, testutil.Testdata("routing", name, "cluster.yaml")))
}

func snapshotOf(t testing.TB, objects []*unstructured.Unstructured) *Snapshot {
	t.Helper()
	snap := &Snapshot{Now: testNow, APIVersion: "networking.istio.io/v1"}
	for _, u := range objects {
		switch u.GetKind() {
		case "Service":
			// The first Service is the canary's; the others are the
			// namespace's (per-version Services of the Gateway API).
			s := corev1.Service{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s))
			if snap.Service == nil {
				snap.Service = &s
			} else {
				snap.Services = append(snap.Services, s)
			}
		case "Namespace":
			snap.Namespace = &corev1.Namespace{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, snap.Namespace))
		case "HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute":
			snap.GatewayAPIRoutes = append(snap.GatewayAPIRoutes, u)
		case "Deployment":
			d := appsv1.Deployment{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d))
			snap.Deployments = append(snap.Deployments, d)
		case "VirtualService":
			snap.VirtualServices = append(snap.VirtualServices, u)
		case "DestinationRule":
			snap.DestinationRules = append(snap.DestinationRules, u)
		case "Gateway":
			snap.Gateways = append(snap.Gateways, u)
		default:
			t.Fatalf("fixture holds unexpected kind %s", u.GetKind())
		}
	}
	return snap
}

// apply writes a plan into the snapshot the way the API server would.
func (s *Snapshot) apply(plan *Plan) {
	for _, c := range plan.Changes {
		s.applyChange(c)
	}
	s.Now = s.Now.Add(time.Minute)
}

// applyChange writes one change of a plan into the snapshot.
func (s *Snapshot) applyChange(c Change) {
	if c.Desired.GetKind() == "Service" {
		s.applyService(c)
		return
	}
	list := &s.VirtualServices
	switch c.Desired.GetKind() {
	case "DestinationRule":
		list = &s.DestinationRules
	case "HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute":
		list = &s.GatewayAPIRoutes
	}
	replaced := false
	for i, obj := range *list {
		if obj.GetKind() == c.Desired.GetKind() && obj.GetName() == c.Desired.GetName() && obj.GetNamespace() == c.Desired.GetNamespace() {
			(*list)[i] = c.Desired.DeepCopy()
			replaced = true
		}
	}
	if !replaced {
		*list = append(*list, c.Desired.DeepCopy())
	}
}

// applyService creates, updates or deletes a per-version Service.
func (s *Snapshot) applyService(c Change) {
	var kept []corev1.Service
	for _, svc := range s.Services {
		if svc.Name != c.Desired.GetName() {
			kept = append(kept, svc)
		}
	}
	if !c.Delete {
		svc := corev1.Service{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(c.Desired.Object, &svc); err != nil {
			panic(err)
		}
		kept = append(kept, svc)
	}
	if kept == nil {
		kept = []corev1.Service{}
	}
	s.Services = kept
}

// computeChecked is Compute that also fails the test if planning changed any
// object of the snapshot, or if a planned object shares a map or a list with
// the snapshot or with another place of the plan, where a later change to one
// would show in the other: plans are deep copies.
func computeChecked(t testing.TB, snap Snapshot, intent Intent) (*Plan, error) {
	t.Helper()
	var live, before []*unstructured.Unstructured
	for _, list := range [][]*unstructured.Unstructured{snap.VirtualServices, snap.DestinationRules, snap.Gateways, snap.GatewayAPIRoutes} {
		for _, obj := range list {
			live = append(live, obj)
			before = append(before, obj.DeepCopy())
		}
	}
	plan, err := Compute(snap, intent)
	for i, obj := range live {
		require.Equal(t, before[i].Object, obj.Object, "planning %s changed the snapshot's %s %s", intent.Action, obj.GetKind(), obj.GetName())
	}
	if plan != nil {
		if shared := sharedContainer(live, plan); shared != "" {
			require.Failf(t, "shared map or list", "planning %s: %s", intent.Action, shared)
		}
	}
	return plan, err
}

// sharedContainer names the first map or list of a planned object that is
// also in the snapshot or elsewhere in the plan, "" when there is none.
func sharedContainer(snapshot []*unstructured.Unstructured, plan *Plan) string {
	seen := map[uintptr]string{}
	for _, obj := range snapshot {
		walkContainers(obj.Object, "snapshot "+obj.GetKind()+" "+obj.GetName(), func(p uintptr, where string) { seen[p] = where })
	}
	shared := ""
	for _, c := range plan.Changes {
		walkContainers(c.Desired.Object, "planned "+c.Desired.GetKind()+" "+c.Desired.GetName(), func(p uintptr, where string) {
			if other, ok := seen[p]; ok && shared == "" {
				shared = where + " is also " + other
			}
			seen[p] = where
		})
	}
	return shared
}

// walkContainers calls visit with the address of every map and non-empty
// list in v (empty ones need not have one of their own), and where it is.
func walkContainers(v interface{}, where string, visit func(uintptr, string)) {
	switch t := v.(type) {
	case map[string]interface{}:
		if t == nil {
			return
		}
		visit(reflect.ValueOf(t).Pointer(), where)
		for k, x := range t {
			walkContainers(x, where+"."+k, visit)
		}
	case []interface{}:
		if len(t) == 0 {
			return
		}
		visit(reflect.ValueOf(t).Pointer(), where)
		for i, x := range t {
			walkContainers(x, fmt.Sprintf("%s[%d]", where, i), visit)
		}
	}
}

// The check of computeChecked must be able to fail: a route the plan left as
// the snapshot's own map, or one map in two places of a plan, is caught.
func TestSharedContainerIsCaught(t *testing.T) {
	snap := loadSnapshot(t, "bookinfo-adopted")
	plan, err := computeChecked(t, *snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3"})
	require.NoError(t, err)
	live := append(append([]*unstructured.Unstructured{}, snap.VirtualServices...), snap.DestinationRules...)
	require.Empty(t, sharedContainer(live, plan))

	liveRoutes := snap.object("VirtualService", "reviews").Object["spec"].(map[string]interface{})["http"].([]interface{})
	planned := snap.objectIn(plan, "VirtualService", "reviews").Object["spec"].(map[string]interface{})["http"].([]interface{})
	// The route pinned to v2 ("jason"), which the plan does not change.
	kept := planned[0]
	planned[0] = liveRoutes[0]
	assert.Contains(t, sharedContainer(live, plan), "planned VirtualService reviews.spec.http[0] is also snapshot VirtualService reviews.spec.http[0]")

	planned[0] = kept
	require.Empty(t, sharedContainer(live, plan))
	dr := snap.objectIn(plan, "DestinationRule", "reviews")
	dr.Object["spec"].(map[string]interface{})["trafficPolicy"] = planned[1].(map[string]interface{})["retries"]
	assert.Regexp(t, `^planned .+ is also planned .+$`, sharedContainer(live, plan))
}

func (s *Snapshot) object(kind, name string) *unstructured.Unstructured {
	list := s.VirtualServices
	switch kind {
	case "DestinationRule":
		list = s.DestinationRules
	case "HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute":
		list = s.GatewayAPIRoutes
	}
	for _, obj := range list {
		if obj.GetName() == name && obj.GetNamespace() == s.Service.Namespace {
			return obj
		}
	}
	return nil
}

// renderPlan prints a plan for golden files: each object as it must become.
func renderPlan(t testing.TB, plan *Plan) []byte {
	var out bytes.Buffer
	fmt.Fprintf(&out, "# canary %s/%s: stable %s, canary %s, weight %d, phase %s\n",
		plan.Namespace, plan.Service, plan.State.Stable, plan.State.Canary, plan.State.Weight, plan.State.Phase)
	for _, w := range plan.Warnings {
		fmt.Fprintf(&out, "# warning: %s\n", w)
	}
	for _, c := range plan.Changes {
		verb := "configured"
		switch {
		case c.Delete:
			verb = "deleted"
		case c.Live == nil:
			verb = "created"
		case !c.Changed():
			verb = "unchanged"
		}
		data, err := yaml.Marshal(c.Desired.Object)
		require.NoError(t, err)
		fmt.Fprintf(&out, "---\n# %s %s/%s %s (stage %d)\n%s", c.Desired.GetKind(), c.Desired.GetNamespace(), c.Desired.GetName(), verb, c.Stage, data)
	}
	return out.Bytes()
}

type step struct {
	name   string
	intent Intent
}

func intPtr(i int) *int { return &i }

func start(weight int) Intent { return Intent{Action: ActionStart, Weight: weight} }
func weight(w int) Intent     { return Intent{Action: ActionWeight, Weight: w} }

var (
	promote = Intent{Action: ActionPromote}
	abort   = Intent{Action: ActionAbort}
)

func TestFlowsMatchGoldenFiles(t *testing.T) {
	flows := []struct {
		cluster, flow string
		steps         []step
	}{
		{"no-istio", "promote", []step{
			{"start", start(10)}, {"start-again", start(10)}, {"weight-50", weight(50)},
			{"promote", promote}, {"promote-again", promote},
			{"next-start", Intent{Action: ActionStart, Weight: 20, Canary: "v1"}}, // the retired version, by name
		}},
		{"no-istio", "abort", []step{{"start", start(10)}, {"weight-0", weight(0)}, {"abort", abort}, {"abort-again", abort}}},
		{"bookinfo-adopted", "abort", []step{
			{"start-v3", Intent{Action: ActionStart, Weight: 10, Canary: "v3"}},
			{"weight-30", weight(30)}, {"abort", abort},
		}},
		{"bookinfo-adopted", "promote-default-route", []step{
			{"start-v3", Intent{Action: ActionStart, Weight: 25, CanaryDeployment: "reviews-v3", Routes: []string{"default"}}},
			{"promote", promote},
		}},
		{"hosts-and-gateway", "promote", []step{{"start", start(5)}, {"weight-100", weight(100)}, {"promote", promote}}},
		{"hosts-and-gateway", "abort", []step{{"start", start(5)}, {"abort", abort}}},
		{"app-kubernetes-version", "abort", []step{{"start", start(1)}, {"abort", abort}}},
		{"unnamed-label", "promote", []step{{"start", start(50)}, {"promote", promote}}},
		{"bookinfo-adopted", "dark-launch", []step{
			{"start-testers-only", Intent{Action: ActionStart, Weight: 0, Canary: "v3", Matches: []MatchRule{
				{Name: "x-tester", Op: "exact", Value: "yes"}, {Name: "user-agent", Op: "prefix", Value: "qa-bot"}, {Cookie: true, Name: "beta", Op: "exact", Value: "on"},
			}}},
			{"weight-20-keeps-match-routes", weight(20)},
			{"route-changes-matches", Intent{Action: ActionRoute, Matches: []MatchRule{{Name: "x-tester", Op: "regex", Value: "^(yes|true)$"}}}},
			{"route-clears-matches", Intent{Action: ActionRoute}},
			{"abort", abort},
		}},
		{"hosts-and-gateway", "gateway", []step{
			{"start-adopt-and-create", Intent{Action: ActionStart, Weight: 20, Gateway: &GatewayIntent{Namespace: "istio-system", Name: "public-gateway", Hosts: []string{"www.example.com", "shop.example.com"}}}},
			{"start-again", Intent{Action: ActionStart, Weight: 20, Gateway: &GatewayIntent{Namespace: "istio-system", Name: "public-gateway", Hosts: []string{"www.example.com", "shop.example.com"}}}},
			{"abort", abort},
		}},
		{"delegate", "abort", []step{{"start", start(10)}, {"abort", abort}}},
		{"cross-namespace", "abort", []step{{"start", start(10)}, {"weight-50", weight(50)}, {"abort", abort}}},
		{"bookinfo-adopted", "all-extras-promote", []step{
			{"start-header-sticky-mirror", Intent{Action: ActionStart, Weight: 10, Canary: "v3", Sticky: true, Mirror: intPtr(25),
				Matches: []MatchRule{{Name: "x-tester", Op: "exact", Value: "yes"}}}},
			{"weight-40-mirror-5", Intent{Action: ActionWeight, Weight: 40, Mirror: intPtr(5)}},
			{"promote", promote},
		}},
		{"no-istio", "sticky-mirror", []step{
			{"start-sticky-mirror-50", Intent{Action: ActionStart, Weight: 10, Sticky: true, Mirror: intPtr(50)}},
			{"weight-30-mirror-off", Intent{Action: ActionWeight, Weight: 30, Mirror: intPtr(0)}},
			{"promote", promote},
		}},
	}
	for _, f := range flows {
		t.Run(f.cluster+"/"+f.flow, func(t *testing.T) { runGoldenFlow(t, f.cluster, f.flow, f.steps) })
	}
}

// runGoldenFlow plans the steps one after the other on the snapshot of
// testdata/routing/CLUSTER, each against the last one's outcome, and
// compares each plan with its golden file under FLOW.
func runGoldenFlow(t *testing.T, cluster, flow string, steps []step) {
	t.Helper()
	snap := loadSnapshot(t, cluster)
	for i, s := range steps {
		plan, err := computeChecked(t, *snap, s.intent)
		require.NoError(t, err, "step %s", s.name)
		testutil.Golden(t, testutil.Testdata("routing", cluster, flow, fmt.Sprintf("%02d-%s.yaml", i+1, s.name)), renderPlan(t, plan))
		assertManagedWeightsSumTo100(t, plan)
		assertCreatedRoutesPerPort(t, snap.Service, plan)
		snap.apply(plan)
	}
}

func TestRunningTheSameCommandTwiceChangesNothing(t *testing.T) {
	for _, cluster := range []string{"no-istio", "hosts-and-gateway", "app-kubernetes-version", "unnamed-label"} {
		for _, intents := range [][]Intent{{start(10)}, {start(10), weight(40)}, {start(10), promote}, {start(10), abort}} {
			snap := loadSnapshot(t, cluster)
			for _, intent := range intents {
				plan, err := Compute(*snap, intent)
				require.NoError(t, err)
				snap.apply(plan)
			}
			again, err := Compute(*snap, intents[len(intents)-1])
			require.NoError(t, err, "%s %v", cluster, intents)
			assert.False(t, again.Changed(), "%s: %v twice must write nothing", cluster, intents)
		}
	}
}

func TestAbortRestoresTheAdoptedSpecExactly(t *testing.T) {
	snap := loadSnapshot(t, "bookinfo-adopted")
	before := map[string]interface{}{
		"vs": runtime.DeepCopyJSONValue(snap.object("VirtualService", "reviews").Object["spec"]),
		"dr": runtime.DeepCopyJSONValue(snap.object("DestinationRule", "reviews").Object["spec"]),
	}
	for _, intent := range []Intent{{Action: ActionStart, Weight: 10, Canary: "v3"}, weight(60), abort} {
		plan, err := Compute(*snap, intent)
		require.NoError(t, err)
		snap.apply(plan)
	}
	assert.Equal(t, before["vs"], snap.object("VirtualService", "reviews").Object["spec"])
	assert.Equal(t, before["dr"], snap.object("DestinationRule", "reviews").Object["spec"])
	assert.Equal(t, "keep me", snap.object("VirtualService", "reviews").GetAnnotations()["other.tool/note"])
}

func TestAbortAfterSomeoneElseChangedTheVirtualServiceOnlyResetsWeights(t *testing.T) {
	snap := loadSnapshot(t, "bookinfo-adopted")
	plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3"})
	require.NoError(t, err)
	snap.apply(plan)
	vs := snap.object("VirtualService", "reviews")
	// Another writer adds a timeout to the default route meanwhile.
	routes := vs.Object["spec"].(map[string]interface{})["http"].([]interface{})
	routes[2].(map[string]interface{})["timeout"] = "3s"

	plan, err = Compute(*snap, abort)
	require.NoError(t, err)
	require.Len(t, plan.Warnings, 1)
	assert.Contains(t, plan.Warnings[0], "VirtualService bookinfo/reviews changed since the canary started")
	snap.apply(plan)
	def := snap.object("VirtualService", "reviews").Object["spec"].(map[string]interface{})["http"].([]interface{})[2].(map[string]interface{})
	assert.Equal(t, "3s", def["timeout"], "the other writer's change survives")
	assert.Equal(t, []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "reviews", "subset": "v1"}}}, def["route"])
	// The canary subset start added is pruned, the DestinationRule is otherwise as before.
	var names []string
	for _, s := range snap.object("DestinationRule", "reviews").Object["spec"].(map[string]interface{})["subsets"].([]interface{}) {
		names = append(names, s.(map[string]interface{})["name"].(string))
	}
	assert.Equal(t, []string{"v1", "v2"}, names)
}

func TestErrorsNameTheObjectAndTheFix(t *testing.T) {
	twoVersionLabels := func(s *Snapshot) {
		for i := range s.Deployments {
			s.Deployments[i].Spec.Template.Labels["build"] = fmt.Sprintf("b%d", i)
			delete(s.Deployments[i].Spec.Template.Labels, "version")
			s.Deployments[i].Spec.Template.Labels["flavor"] = fmt.Sprintf("f%d", i)
		}
	}
	cases := []struct {
		name    string
		cluster string
		mutate  func(*Snapshot)
		intent  Intent
		wantErr []string
	}{
		{"no deployment behind the service", "no-istio", func(s *Snapshot) { s.Deployments = s.Deployments[2:] }, start(10),
			[]string{"no Deployment in namespace shop has pods matching the selector of service reviews", "deploy the versions first"}},
		{"selector-less service", "no-istio", func(s *Snapshot) { s.Service.Spec.Selector = nil }, start(10),
			[]string{"service shop/reviews has no selector"}},
		{"one version only", "no-istio", func(s *Snapshot) { s.Deployments = s.Deployments[:1] }, start(10),
			[]string{"service shop/reviews has only one version behind it (deployment reviews-v1)", "deploy the canary"}},
		{"ambiguous version label", "no-istio", func(s *Snapshot) { s.Deployments = s.Deployments[:2]; twoVersionLabels(s) }, start(10),
			[]string{"cannot choose the version label of service shop/reviews: candidates are build, flavor", "pass version label with one of them"}},
		{"no differing label", "no-istio", func(s *Snapshot) {
			for i := range s.Deployments {
				delete(s.Deployments[i].Spec.Template.Labels, "version")
			}
		}, start(10), []string{"cannot tell the versions of service shop/reviews apart", "or pass version label"}},
		{"version label missing on a deployment", "no-istio", nil, Intent{Action: ActionStart, Weight: 10, VersionLabel: "track"},
			[]string{`version label "track" is missing from the pod template of deployment(s) reviews-v1, reviews-v2`}},
		{"several canary candidates", "bookinfo-adopted", nil, start(10),
			[]string{"service bookinfo/reviews has several versions besides stable version=v1: v2, v3", "pass canary with one of them"}},
		{"canary equal to stable", "no-istio", nil, Intent{Action: ActionStart, Weight: 10, Canary: "v1"},
			[]string{"canary version=v1 is the stable version of service shop/reviews", "pick another version with canary"}},
		{"unknown canary", "no-istio", nil, Intent{Action: ActionStart, Weight: 10, Canary: "v9"},
			[]string{"canary v9: service shop/reviews has no such version (version values: v1, v2)"}},
		{"unknown canary deployment", "no-istio", nil, Intent{Action: ActionStart, Weight: 10, CanaryDeployment: "nope"},
			[]string{"canary deployment nope: no such deployment behind service shop/reviews (deployments: reviews-v1, reviews-v2)"}},
		{"unknown stable", "no-istio", nil, Intent{Action: ActionStart, Weight: 10, Stable: "v0"},
			[]string{"stable v0: service shop/reviews has no such version"}},
		{"weight above 100", "no-istio", nil, start(101), []string{"weight 101 is outside 0 to 100"}},
		{"negative weight", "no-istio", nil, weight(-5), []string{"weight -5 is outside 0 to 100"}},
		{"weight without canary", "no-istio", nil, weight(20), []string{"no canary in progress for service shop/reviews", "kubectl canary start reviews"}},
		{"promote without canary", "no-istio", nil, promote, []string{"no canary in progress for service shop/reviews"}},
		{"abort without canary", "no-istio", nil, abort, []string{"no canary in progress for service shop/reviews"}},
		{"unknown route name", "bookinfo-adopted", nil, Intent{Action: ActionStart, Weight: 10, Canary: "v3", Routes: []string{"nope"}},
			[]string{"route nope: no route of that name sends traffic to stable subset v1 of service bookinfo/reviews"}},
		{"pinned route cannot be managed", "bookinfo-adopted", nil, Intent{Action: ActionStart, Weight: 10, Canary: "v3", Routes: []string{"jason"}},
			[]string{"route jason"}},
		{"two destination rules", "bookinfo-adopted", func(s *Snapshot) {
			dup := s.DestinationRules[0].DeepCopy()
			dup.SetName("reviews-dup")
			s.DestinationRules = append(s.DestinationRules, dup)
		}, Intent{Action: ActionStart, Weight: 10, Canary: "v3"}, []string{"DestinationRules reviews, reviews-dup all apply to service bookinfo/reviews", "merge them"}},
		{"gateway not found", "hosts-and-gateway", nil, Intent{Action: ActionStart, Weight: 10, Gateway: &GatewayIntent{Namespace: "istio-system", Name: "nope", Hosts: []string{"www.example.com"}}},
			[]string{"gateway istio-system/nope not found"}},
		{"gateway does not serve the host", "hosts-and-gateway", nil, Intent{Action: ActionStart, Weight: 10, Gateway: &GatewayIntent{Namespace: "istio-system", Name: "public-gateway", Hosts: []string{"api.example.org"}}},
			[]string{`gateway istio-system/public-gateway does not serve host "api.example.org" for VirtualServices in namespace prod`}},
		{"a VirtualService holds the host but routes elsewhere", "no-istio", func(s *Snapshot) {
			s.VirtualServices = append(s.VirtualServices, testutil.DecodeObjects(t, []byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: shop}\nspec: {hosts: [reviews], http: [{route: [{destination: {host: other}}]}]}"))...)
		}, start(10), []string{"a VirtualService of namespace shop holds the host of service reviews but sends none of its traffic to it"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := loadSnapshot(t, c.cluster)
			if c.mutate != nil {
				c.mutate(snap)
			}
			_, err := Compute(*snap, c.intent)
			require.Error(t, err)
			for _, want := range c.wantErr {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestStartWhileAnotherCanaryRunsIsRefused(t *testing.T) {
	snap := loadSnapshot(t, "bookinfo-adopted")
	plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3"})
	require.NoError(t, err)
	snap.apply(plan)
	_, err = Compute(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v2"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a canary of service bookinfo/reviews is already in progress")
	assert.Contains(t, err.Error(), "promote or abort it")
}

func TestRoutesAreFoundAgainAfterSomeoneInsertsOne(t *testing.T) {
	snap := loadSnapshot(t, "bookinfo-adopted")
	plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3"})
	require.NoError(t, err)
	snap.apply(plan)
	spec := snap.object("VirtualService", "reviews").Object["spec"].(map[string]interface{})
	// Someone puts an unnamed route in front, and the tcp route (unnamed) shifts nothing.
	spec["http"] = append([]interface{}{map[string]interface{}{
		"match": []interface{}{map[string]interface{}{"uri": map[string]interface{}{"prefix": "/admin"}}},
		"route": []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "reviews", "subset": "v1"}}},
	}}, spec["http"].([]interface{})...)
	plan, err = Compute(*snap, weight(40))
	require.NoError(t, err)
	snap.apply(plan)
	http := snap.object("VirtualService", "reviews").Object["spec"].(map[string]interface{})["http"].([]interface{})
	assert.Len(t, http[0].(map[string]interface{})["route"], 1, "the inserted route is not managed")
	def := http[3].(map[string]interface{})
	assert.Equal(t, "default", def["name"])
	assert.Equal(t, int64(40), def["route"].([]interface{})[1].(map[string]interface{})["weight"])
}

func TestStatusSummarizesCanariesWithReadiness(t *testing.T) {
	snap := loadSnapshot(t, "no-istio")
	plan, err := Compute(*snap, start(10))
	require.NoError(t, err)
	snap.apply(plan)
	statuses := Summarize([]corev1.Service{*snap.Service}, snap.Deployments, snap.VirtualServices, snap.DestinationRules)
	require.Len(t, statuses, 1)
	st := statuses[0]
	assert.Equal(t, "shop", st.Namespace)
	assert.Equal(t, "reviews", st.Service)
	assert.Equal(t, "v1", st.Stable)
	assert.Equal(t, "v2", st.Canary)
	assert.Equal(t, 10, st.Weight)
	assert.Equal(t, PhaseProgressing, st.Phase)
	assert.Equal(t, Ready{Available: 3, Desired: 3}, st.StableReady)
	assert.Equal(t, &Ready{Available: 1, Desired: 1}, st.CanaryReady)
	assert.Equal(t, []string{"DestinationRule/reviews", "VirtualService/reviews"}, st.Objects)

	snap = loadSnapshot(t, "cross-namespace")
	plan, err = Compute(*snap, start(10))
	require.NoError(t, err)
	snap.apply(plan)
	statuses = Summarize([]corev1.Service{*snap.Service}, snap.Deployments, snap.VirtualServices, snap.DestinationRules)
	require.Len(t, statuses, 1, "a VirtualService in another namespace reports the canary of its Service's namespace")
	assert.Equal(t, []string{"DestinationRule/reviews", "VirtualService/frontend/shop-reviews", "VirtualService/reviews"}, statuses[0].Objects)
}

func TestHostEquivalence(t *testing.T) {
	cases := []struct {
		host, objectNamespace string
		want                  bool
	}{
		{"reviews", "bookinfo", true},
		{"reviews", "other", false},
		{"reviews.bookinfo", "other", true},
		{"reviews.bookinfo.svc", "other", true},
		{"reviews.bookinfo.svc.cluster.local", "other", true},
		{"Reviews.Bookinfo.svc.cluster.local.", "other", true},
		{"reviews.bookinfo.svc.example.org", "bookinfo", false},
		{"reviews.other", "bookinfo", false},
		{"*.bookinfo.svc.cluster.local", "bookinfo", false},
		{"*", "bookinfo", false},
		{"", "bookinfo", false},
		{"ratings", "bookinfo", false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, hostRefersToService(c.host, c.objectNamespace, "reviews", "bookinfo", ""), "%s in %s", c.host, c.objectNamespace)
	}
	assert.True(t, hostRefersToService("reviews.bookinfo.svc.example.org", "x", "reviews", "bookinfo", "example.org"))
}

func TestSubsetNamesAreDNSLabels(t *testing.T) {
	spec := map[string]interface{}{"subsets": []interface{}{map[string]interface{}{"name": "v2"}}}
	assert.Equal(t, "1-5-0-rc-1", subsetName(spec, "1.5.0-rc.1"))
	assert.Equal(t, "v2-2", subsetName(spec, "V2"))
	assert.Equal(t, "version", subsetName(spec, "..."))
}

// assertManagedWeightsSumTo100 checks the invariant on every route a plan manages.
func assertManagedWeightsSumTo100(t *testing.T, plan *Plan) {
	t.Helper()
	for _, c := range plan.Changes {
		st, err := ReadState(c.Desired, plan.Service)
		require.NoError(t, err)
		if st == nil || c.Desired.GetKind() != "VirtualService" {
			continue
		}
		spec := c.Desired.Object["spec"].(map[string]interface{})
		for _, ref := range st.Routes {
			i, err := locateRoute(spec, ref)
			require.NoError(t, err)
			dests := destinationsOf(asMap(routesOf(spec, ref.Kind)[i]))
			var sum int64
			for _, d := range dests {
				sum += destinationWeight(asMap(d), len(dests))
			}
			assert.Equal(t, int64(100), sum, "%s in %s", ref, filepath.Join(c.Desired.GetNamespace(), c.Desired.GetName()))
		}
	}
}

// Two racing starts must contend for one object before either writes
// anything else: every start that changes something writes the
// DestinationRule first, so the loser's write conflicts.
func TestEveryStartClaimsTheDestinationRuleFirst(t *testing.T) {
	for _, cluster := range []string{"no-istio", "bookinfo-adopted", "hosts-and-gateway", "app-kubernetes-version", "unnamed-label", "delegate", "cross-namespace"} {
		snap := loadSnapshot(t, cluster)
		intent := start(10)
		if cluster == "bookinfo-adopted" {
			intent.Canary = "v2" // its subset exists already: only the claim changes the DestinationRule
		}
		plan, err := Compute(*snap, intent)
		require.NoError(t, err, cluster)
		require.NotEmpty(t, plan.Changes, cluster)
		first := plan.Changes[0]
		assert.Equal(t, "DestinationRule", first.Desired.GetKind(), cluster)
		assert.True(t, first.Changed(), cluster)
	}
}

// Someone pointed every destination of a managed route elsewhere while the
// canary ran: the commands that set its destinations refuse, naming it,
// instead of guessing (or failing on the missing destination).
func TestManagedRoutePointedElsewhereIsRefused(t *testing.T) {
	for _, intent := range []Intent{weight(50), promote, abort} {
		t.Run(string(intent.Action), func(t *testing.T) {
			snap := loadSnapshot(t, "no-istio")
			plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10, Mirror: intPtr(20), Matches: []MatchRule{{Name: "x-tester", Op: "exact", Value: "yes"}}})
			require.NoError(t, err)
			snap.apply(plan)
			vs := snap.object("VirtualService", "reviews")
			http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
			for _, raw := range http {
				route := raw.(map[string]interface{})
				if route["name"] == nil || !strings.HasPrefix(route["name"].(string), "canary-") {
					route["route"] = []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "reviews", "subset": "legacy"}}}
				}
			}
			require.NoError(t, unstructured.SetNestedSlice(vs.Object, http, "spec", "http"))

			_, err = computeChecked(t, *snap, intent)
			require.Error(t, err)
			if intent.Action != ActionAbort {
				// Weight and promote find the drift before they plan.
				assert.Contains(t, err.Error(), "the live routing of service shop/reviews is not what its canary recorded, so "+string(intent.Action)+" would not act on what is live; nothing was changed")
				assert.Contains(t, err.Error(), "VirtualService shop/reviews http route #1: recorded v1 90 / v2 10, live sends subset legacy 100 (no longer the canary's versions)")
				assert.Contains(t, err.Error(), "Put the routing back (kubectl edit virtualservice reviews -n shop), or run kubectl canary abort reviews")
				return
			}
			assert.Contains(t, err.Error(), "VirtualService shop/reviews")
			assert.Contains(t, err.Error(), "sends no traffic to subset v1 or v2")
			assert.Contains(t, err.Error(), "in VirtualService shop/reviews: someone changed it; set its destinations back to the canary's subsets by hand (kubectl edit virtualservice reviews -n shop), then run the command again")
		})
	}
}
