package routing

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// sample is a snapshot made of the YAML files of Istio's samples and the
// Gateway API's conformance tests, as testdata/routing/samples copies them
// (README.md there names each file's module, version and path). Objects
// without a namespace are in default; a later file's object replaces an
// earlier one of the same kind and name, as kubectl apply would.
type sample struct {
	service   string
	namespace string
	files     []string
}

func (s sample) snapshot(t *testing.T) *Snapshot {
	t.Helper()
	snap := &Snapshot{Now: testNow, APIVersion: "networking.istio.io/v1"}
	var objects []*unstructured.Unstructured
	for _, file := range s.files {
		for _, u := range testutil.ReadObjects(t, testutil.Testdata(append([]string{"routing", "samples"}, file)...)) {
			if u.GetNamespace() == "" {
				u.SetNamespace("default")
			}
			kept := objects[:0]
			for _, o := range objects {
				if o.GetKind() != u.GetKind() || o.GetName() != u.GetName() || o.GetNamespace() != u.GetNamespace() {
					kept = append(kept, o)
				}
			}
			objects = append(kept, u)
		}
	}
	for _, u := range objects {
		if u.GetNamespace() != s.namespace && u.GetKind() != "VirtualService" {
			continue
		}
		switch u.GetKind() {
		case "Service":
			svc := corev1.Service{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &svc))
			snap.Services = append(snap.Services, svc)
			if svc.Name == s.service {
				snap.Service = &snap.Services[len(snap.Services)-1]
			}
		case "Deployment":
			d := appsv1.Deployment{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d))
			snap.Deployments = append(snap.Deployments, d)
		case "HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute":
			snap.GatewayAPIRoutes = append(snap.GatewayAPIRoutes, u)
		case "VirtualService":
			snap.VirtualServices = append(snap.VirtualServices, u)
		case "DestinationRule":
			snap.DestinationRules = append(snap.DestinationRules, u)
		}
	}
	require.NotNil(t, snap.Service, "no Service %s/%s in %v", s.namespace, s.service, s.files)
	svc := *snap.Service
	snap.Service = &svc
	return snap
}

var (
	helloworldGatewayAPI = sample{"helloworld", "default", []string{
		"istio/samples/helloworld/helloworld.yaml",
		"istio/samples/helloworld/gateway-api/helloworld-versions.yaml",
		"istio/samples/helloworld/gateway-api/helloworld-route.yaml",
	}}
	tcpEchoGatewayAPI = sample{"tcp-echo", "default", []string{
		"istio/samples/tcp-echo/tcp-echo-services.yaml",
		"istio/samples/tcp-echo/gateway-api/tcp-echo-all-v1.yaml",
	}}
	tcpEcho20GatewayAPI = sample{"tcp-echo", "default", append(append([]string{}, tcpEchoGatewayAPI.files...),
		"istio/samples/tcp-echo/gateway-api/tcp-echo-20-v2.yaml")}
	tcpEcho20Istio = sample{"tcp-echo", "default", []string{
		"istio/samples/tcp-echo/tcp-echo-services.yaml",
		"istio/samples/tcp-echo/tcp-echo-all-v1.yaml",
		"istio/samples/tcp-echo/tcp-echo-20-v2.yaml",
	}}
	virtualServiceAll = sample{"service3", "default", []string{
		"fixtures/service3.yaml",
		"istio/tests/testdata/config/virtual-service-all.yaml",
	}}
	reviews9010 = sample{"reviews", "default", []string{
		"istio/samples/ambient-argo/application/reviews.yaml",
		"istio/samples/ambient-argo/application/bookinfo-versions.yaml",
		"istio/samples/ambient-argo/application/route-reviews-90-10.yaml",
	}}
	grpcRouteWeight = sample{"echo", "gateway-conformance-mesh", []string{
		"gateway-api-conformance/mesh/manifests.yaml",
		"gateway-api-conformance/tests/mesh/grpcroute-weight.yaml",
	}}
)

// TestSamplesStartWeightAbort runs start, weight and abort on each sample:
// the plans match their golden files; after abort the adopted objects are
// as before start but that the managed routes send the canary nothing,
// and where the canary had a share before start the plan says which.
func TestSamplesStartWeightAbort(t *testing.T) {
	cases := []struct {
		name   string
		sample sample
		start  Intent
		// shares are the pre-start canary shares abort reports.
		shares []PreStartShare
	}{
		{"helloworld-gateway-api", helloworldGatewayAPI, Intent{Action: ActionStart, Canary: "v2", Weight: 20},
			[]PreStartShare{{Object: "HTTPRoute default/helloworld", Route: "rule #0", Percent: 10}}},
		{"tcp-echo-gateway-api", tcpEchoGatewayAPI, Intent{Action: ActionStart, Weight: 10}, nil},
		{"tcp-echo-20-v2-gateway-api", tcpEcho20GatewayAPI, Intent{Action: ActionStart, Canary: "v2", Weight: 30},
			[]PreStartShare{{Object: "TCPRoute default/tcp-echo", Route: "rule #0", Percent: 20}}},
		{"tcp-echo-20-v2-istio", tcpEcho20Istio, Intent{Action: ActionStart, Canary: "v2", Stable: "v1", Weight: 10},
			[]PreStartShare{{Object: "VirtualService default/tcp-echo", Route: "tcp route #0", Percent: 20}}},
		{"virtual-service-all", virtualServiceAll, Intent{Action: ActionStart, Canary: "v2", Stable: "v1", Weight: 10},
			[]PreStartShare{{Object: "VirtualService testns/all", Route: "http route #1", Percent: 20}}},
		{"route-reviews-90-10", reviews9010, Intent{Action: ActionStart, Canary: "v2", Weight: 20},
			[]PreStartShare{{Object: "HTTPRoute default/reviews", Route: "rule #0", Percent: 10}}},
		{"grpcroute-weight", grpcRouteWeight, Intent{Action: ActionStart, Canary: "v2", Weight: 10},
			[]PreStartShare{{Object: "GRPCRoute gateway-conformance-mesh/mesh-grpc-weighted-backends", Route: "rule #0", Percent: 30}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := c.sample.snapshot(t)
			before := map[string]map[string]interface{}{}
			for _, list := range [][]*unstructured.Unstructured{snap.VirtualServices, snap.DestinationRules, snap.GatewayAPIRoutes} {
				for _, obj := range list {
					before[objectRef(obj)] = runtime.DeepCopyJSON(asMap(obj.Object["spec"]))
				}
			}
			steps := []step{{"start", c.start}, {"weight-50", weight(50)}, {"abort", abort}}
			var last *Plan
			for i, s := range steps {
				plan, err := computeChecked(t, *snap, s.intent)
				require.NoError(t, err, "step %s", s.name)
				testutil.Golden(t, testutil.Testdata("routing", "samples", "golden", c.name, fmt.Sprintf("%02d-%s.yaml", i+1, s.name)), renderPlan(t, plan))
				if s.intent.Action != ActionAbort {
					assert.Equal(t, s.intent.Weight, plan.State.Weight)
					assertManagedWeightsSumTo100(t, plan)
				}
				applyInStages(t, snap, plan)
				last = plan
			}
			assert.Equal(t, c.shares, last.PreStartShares)
			for _, list := range [][]*unstructured.Unstructured{snap.VirtualServices, snap.DestinationRules, snap.GatewayAPIRoutes} {
				for _, obj := range list {
					spec, adopted := before[objectRef(obj)]
					switch {
					case !adopted:
						assertSendsNoCanary(t, snap, obj)
					case obj.GetKind() == "DestinationRule":
						assert.Equal(t, spec, obj.Object["spec"], "%s gets its pre-start spec back", objectRef(obj))
					default:
						requireAbortRestored(t, spec, obj, c.sample.service, "%s after abort", objectRef(obj))
					}
				}
			}
			again, err := Compute(*snap, abort)
			require.NoError(t, err)
			assert.False(t, again.Changed(), "abort twice writes nothing")
		})
	}
}

// assertSendsNoCanary checks a route start created after abort: every
// destination or backendRef goes to stable.
func assertSendsNoCanary(t *testing.T, snap *Snapshot, obj *unstructured.Unstructured) {
	t.Helper()
	st, err := ReadState(obj, snap.Service.Name)
	require.NoError(t, err)
	require.NotNil(t, st, "%s was created by start and records the canary", objectRef(obj))
	spec := asMap(obj.Object["spec"])
	for _, kind := range routeKinds {
		for _, r := range routesOf(spec, kind) {
			for _, d := range destinationsOf(asMap(r)) {
				assert.Equal(t, st.StableSubset, destinationSubset(asMap(d)), "%s", objectRef(obj))
			}
		}
	}
	for _, r := range rulesOf(spec) {
		for _, b := range backendRefsOf(asMap(r)) {
			assert.Equal(t, st.StableSubset, asString(asMap(b)["name"]), "%s", objectRef(obj))
		}
	}
}

// TestAbortAfterARevertToAPreStartSplit: someone applies tcp-echo-20-v2's
// VirtualService again while the canary runs (a GitOps revert); abort
// keeps that spec but for v2's 20 %, which goes to v1 as after any abort.
func TestAbortAfterARevertToAPreStartSplit(t *testing.T) {
	snap := tcpEcho20Istio.snapshot(t)
	before := runtime.DeepCopyJSON(asMap(snap.object("VirtualService", "tcp-echo").Object["spec"]))
	plan, err := Compute(*snap, Intent{Action: ActionStart, Canary: "v2", Stable: "v1", Weight: 10})
	require.NoError(t, err)
	snap.apply(plan)
	snap.object("VirtualService", "tcp-echo").Object["spec"] = runtime.DeepCopyJSON(before)

	plan, err = Compute(*snap, abort)
	require.NoError(t, err)
	assert.Equal(t, []PreStartShare{{Object: "VirtualService default/tcp-echo", Route: "tcp route #0", Percent: 20}}, plan.PreStartShares)
	snap.apply(plan)
	requireAbortRestored(t, before, snap.object("VirtualService", "tcp-echo"), "tcp-echo", "abort after the revert")
	vs := snap.object("VirtualService", "tcp-echo")
	assert.Equal(t, map[string]int64{"v1": 100, "v2": 0}, subsetWeights(asMap(routesOf(asMap(vs.Object["spec"]), "tcp")[0])))
}
