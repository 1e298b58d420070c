package kube

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

var (
	httpRoutes = schema.GroupVersionResource{Group: routing.GatewayAPIGroup, Version: "v1", Resource: "httproutes"}
	tcpRoutes  = schema.GroupVersionResource{Group: routing.GatewayAPIGroup, Version: "v1alpha2", Resource: "tcproutes"}
	gatewaysV1 = schema.GroupVersionResource{Group: routing.GatewayAPIGroup, Version: "v1", Resource: "gateways"}
)

// gatewayAPIShop is namespace shop (ambient) with Service reviews, its
// per-version Service reviews-v1, an HTTPRoute and Gateway ingress/public,
// on a cluster serving Istio's v1 and the Gateway API (HTTPRoute and
// Gateway at v1, TCPRoute at v1alpha2). Access reviews answer allowed.
func gatewayAPIShop(t *testing.T) (*Clients, *fake.Clientset, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	core := fake.NewSimpleClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{routing.AmbientModeLabel: routing.AmbientMode}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "shop"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "reviews"}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "reviews-v1", Namespace: "shop", ResourceVersion: "7"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "reviews", "version": "v1"}}},
	)
	core.PrependReactor("create", "selfsubjectaccessreviews", func(action clienttesting.Action) (bool, runtime.Object, error) {
		review := action.(clienttesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		review.Status.Allowed = true
		return true, review, nil
	})
	route := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": routing.GatewayAPIGroup + "/v1", "kind": "HTTPRoute",
		"metadata": map[string]interface{}{"name": "reviews", "namespace": "shop", "resourceVersion": "3"},
		"spec":     map[string]interface{}{"rules": []interface{}{}},
	}}
	gateway := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": routing.GatewayAPIGroup + "/v1", "kind": "Gateway",
		"metadata": map[string]interface{}{"name": "public", "namespace": "ingress"},
	}}
	c := &Clients{Core: core, IstioVersion: "v1"}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		c.VirtualServices(): "VirtualServiceList", c.DestinationRules(): "DestinationRuleList", c.Gateways(): "GatewayList",
		httpRoutes: "HTTPRouteList", tcpRoutes: "TCPRouteList", gatewaysV1: "GatewayList",
	}, route)
	require.NoError(t, dyn.Tracker().Create(gatewaysV1, gateway, "ingress"))
	disco := discoveryServing("v1").(*fakediscovery.FakeDiscovery)
	disco.Resources = append(disco.Resources,
		&metav1.APIResourceList{GroupVersion: routing.GatewayAPIGroup + "/v1", APIResources: []metav1.APIResource{
			{Name: "httproutes", Kind: "HTTPRoute"}, {Name: "httproutes/status", Kind: "HTTPRoute"}, {Name: "gateways", Kind: "Gateway"},
		}},
		&metav1.APIResourceList{GroupVersion: routing.GatewayAPIGroup + "/v1alpha2", APIResources: []metav1.APIResource{
			{Name: "tcproutes", Kind: "TCPRoute"}, {Name: "httproutes", Kind: "HTTPRoute"},
		}},
	)
	c.Dynamic, c.Discovery = dyn, disco
	return c, core, dyn
}

func TestServedGatewayAPIKindsAtTheirNewestVersion(t *testing.T) {
	c, _, _ := gatewayAPIShop(t)
	routes, gateway, err := c.servedGatewayAPI()
	require.NoError(t, err)
	assert.ElementsMatch(t, []schema.GroupVersionResource{httpRoutes, tcpRoutes}, routes)
	require.NotNil(t, gateway)
	assert.Equal(t, gatewaysV1, *gateway)
	assert.Equal(t, map[string]string{"HTTPRoute": routing.GatewayAPIGroup + "/v1", "TCPRoute": routing.GatewayAPIGroup + "/v1alpha2"}, gatewayAPIVersions(routes))
}

// Start reads the routes, the Services and the Namespace, and the Gateway
// API Gateway --gateway names besides the Istio one (missing here).
func TestStartSnapshotReadsTheGatewayAPI(t *testing.T) {
	c, _, _ := gatewayAPIShop(t)
	snap, err := c.ReadSnapshot(context.Background(), "shop", "reviews", SnapshotOptions{
		GatewayAPIRoutes: true, Gateways: []types.NamespacedName{{Namespace: "ingress", Name: "public"}},
	})
	require.NoError(t, err)
	require.Len(t, snap.GatewayAPIRoutes, 1)
	assert.Equal(t, "HTTPRoute", snap.GatewayAPIRoutes[0].GetKind())
	assert.Len(t, snap.Services, 2)
	require.NotNil(t, snap.Namespace)
	assert.Equal(t, routing.AmbientMode, snap.Namespace.Labels[routing.AmbientModeLabel])
	assert.True(t, snap.IstioServed && snap.GatewayAPIServed)
	assert.Equal(t, routing.GatewayAPIGroup+"/v1alpha2", snap.GatewayAPIVersions["TCPRoute"])
	require.Len(t, snap.Gateways, 1)
	assert.Equal(t, routing.GatewayAPIGroup+"/v1", snap.Gateways[0].GetAPIVersion())
}

// The commands after start read the routes only when no Istio object
// records the canary in progress: an Istio canary's weight costs no more.
func TestLaterCommandsReadRoutesOnlyWithoutAnIstioCanary(t *testing.T) {
	c, core, dyn := gatewayAPIShop(t)
	snap, err := c.ReadSnapshot(context.Background(), "shop", "reviews", SnapshotOptions{GatewayAPIRoutesUnlessIstio: true})
	require.NoError(t, err)
	assert.Len(t, snap.GatewayAPIRoutes, 1)
	assert.Len(t, snap.Services, 2)
	assert.Nil(t, snap.Namespace, "only start and check read the Namespace")

	state := `{"service":"reviews","stable":"v1","canary":"v2","weight":10,"phase":"Progressing"}`
	require.NoError(t, dyn.Tracker().Add(routingObject("VirtualService", "shop", "reviews", state)))
	core.ClearActions()
	dyn.ClearActions()
	snap, err = c.ReadSnapshot(context.Background(), "shop", "reviews", SnapshotOptions{GatewayAPIRoutesUnlessIstio: true})
	require.NoError(t, err)
	assert.Empty(t, snap.GatewayAPIRoutes)
	for _, a := range append(core.Actions(), dyn.Actions()...) {
		assert.NotEqual(t, routing.GatewayAPIGroup, a.GetResource().Group, "read %v", a)
		assert.False(t, a.GetVerb() == "list" && a.GetResource().Resource == "services", "listed Services: %v", a)
	}
}

func serviceObject(name, rv string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]interface{}{"name": name, "namespace": "shop"},
		"spec":     map[string]interface{}{"selector": map[string]interface{}{"app": "reviews", "version": "v2"}, "ports": []interface{}{map[string]interface{}{"port": int64(9080)}}},
	}}
	if rv != "" {
		u.SetResourceVersion(rv)
	}
	return u
}

// Services go through the typed client, routes through the dynamic one at
// the version the plan gives; a deletion carries the resourceVersion read,
// and a Service already gone is no error.
func TestWriteCreatesAndDeletesServicesAndWritesRoutes(t *testing.T) {
	c, core, dyn := gatewayAPIShop(t)
	ctx := context.Background()
	created, err := c.Write(ctx, routing.Change{Desired: serviceObject("reviews-v2", "")}, false)
	require.NoError(t, err)
	assert.Equal(t, "Service", created.GetKind())
	_, err = core.CoreV1().Services("shop").Get(ctx, "reviews-v2", metav1.GetOptions{})
	require.NoError(t, err)

	route, err := dyn.Resource(httpRoutes).Namespace("shop").Get(ctx, "reviews", metav1.GetOptions{})
	require.NoError(t, err)
	desired := route.DeepCopy()
	desired.Object["spec"] = map[string]interface{}{"rules": []interface{}{map[string]interface{}{"name": "default"}}}
	_, err = c.Write(ctx, routing.Change{Live: route, Desired: desired}, false)
	require.NoError(t, err)
	got, err := dyn.Resource(httpRoutes).Namespace("shop").Get(ctx, "reviews", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, desired.Object["spec"], got.Object["spec"])

	live := serviceObject("reviews-v1", "7")
	core.ClearActions()
	_, err = c.Write(ctx, routing.Change{Live: live, Desired: live.DeepCopy(), Delete: true}, true)
	require.NoError(t, err)
	del := core.Actions()[0].(clienttesting.DeleteAction)
	assert.Equal(t, "7", *del.GetDeleteOptions().Preconditions.ResourceVersion)
	assert.Equal(t, []string{metav1.DryRunAll}, del.GetDeleteOptions().DryRun)

	_, err = c.Write(ctx, routing.Change{Live: live, Desired: live.DeepCopy(), Delete: true}, false)
	require.NoError(t, err)
	_, err = core.CoreV1().Services("shop").Get(ctx, "reviews-v1", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))
	_, err = c.Write(ctx, routing.Change{Live: live, Desired: live.DeepCopy(), Delete: true}, false)
	assert.NoError(t, err, "a Service already gone is what was asked")
}

func TestResourceOfNamesEveryKindAsRBACDoes(t *testing.T) {
	for kind, want := range map[string]string{
		"networking.istio.io/v1 VirtualService":       "virtualservices.networking.istio.io",
		"networking.istio.io/v1 DestinationRule":      "destinationrules.networking.istio.io",
		"v1 Service":                                  "services",
		"gateway.networking.k8s.io/v1 HTTPRoute":      "httproutes.gateway.networking.k8s.io",
		"gateway.networking.k8s.io/v1alpha2 TCPRoute": "tcproutes.gateway.networking.k8s.io",
		"gateway.networking.k8s.io/v1 GRPCRoute":      "grpcroutes.gateway.networking.k8s.io",
	} {
		apiVersion, k, _ := strings.Cut(kind, " ")
		u := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": apiVersion, "kind": k}}
		assert.Equal(t, want, ResourceOf(u), kind)
	}
}

// The questions asked before a Gateway API canary's writes: create and
// delete of Services, update of the route by name, in their own groups.
func TestPermissionNeedsOfAGatewayAPIPlan(t *testing.T) {
	c, _, _ := gatewayAPIShop(t)
	route := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": routing.GatewayAPIGroup + "/v1", "kind": "HTTPRoute", "metadata": map[string]interface{}{"name": "reviews", "namespace": "shop"}}}
	changed := route.DeepCopy()
	changed.Object["spec"] = map[string]interface{}{"rules": []interface{}{}}
	old := serviceObject("reviews-v1", "7")
	needs, err := c.permissionNeeds([]routing.Change{
		{Desired: serviceObject("reviews-v2", ""), Stage: routing.StageSubsets},
		{Live: route, Desired: changed, Stage: routing.StageRoutes},
		{Live: old, Desired: old.DeepCopy(), Delete: true, Stage: routing.StagePrune},
	})
	require.NoError(t, err)
	var got []string
	for _, n := range needs {
		got = append(got, n.String())
	}
	assert.Equal(t, []string{
		"create services in namespace shop",
		`update httproutes.gateway.networking.k8s.io "reviews" in namespace shop`,
		`delete services "reviews-v1" in namespace shop`,
	}, got)
	require.NoError(t, c.CheckPermissions(context.Background(), []routing.Change{{Desired: serviceObject("reviews-v2", "")}}))
}

// status --watch follows the Gateway API routes too, where served and
// the user may watch them: a Gateway API canary's state lives on them.
func TestWatchInventoryFollowsGatewayAPIRoutes(t *testing.T) {
	c, _, dyn := gatewayAPIShop(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := c.WatchInventory(ctx, "shop")
	require.NoError(t, err)
	inv, err := w.Inventory(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"shop/reviews"}, names(inv.GatewayAPIRoutes))
	drainChanges(w)

	route, err := dyn.Resource(httpRoutes).Namespace("shop").Get(ctx, "reviews", metav1.GetOptions{})
	require.NoError(t, err)
	route.SetAnnotations(map[string]string{"kubectl-canary.io/reviews": `{"service":"reviews","phase":"Progressing"}`})
	_, err = dyn.Resource(httpRoutes).Namespace("shop").Update(ctx, route, metav1.UpdateOptions{})
	require.NoError(t, err)
	awaitChange(t, w)
	inv, err = w.Inventory(ctx)
	require.NoError(t, err)
	require.Len(t, inv.GatewayAPIRoutes, 1)
	assert.Contains(t, inv.GatewayAPIRoutes[0].GetAnnotations(), "kubectl-canary.io/reviews")
}

// A write refused by strict field validation says the cluster serves an
// older version of the API, and what mirroring part of the requests needs.
func TestUnknownFieldsAreExplained(t *testing.T) {
	route := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]interface{}{"name": "reviews", "namespace": "shop"}}}
	refused := apierrors.NewBadRequest(`HTTPRoute in version "v1" cannot be handled as a HTTPRoute: strict decoding error: unknown field "spec.rules[0].filters[0].requestMirror.percent"`)
	err := explainUnknownFields(route, refused)
	assert.EqualError(t, err, `HTTPRoute shop/reviews needs fields that the cluster's HTTPRoute.gateway.networking.k8s.io CRD lacks, an older version of its API (`+refused.Error()+`); mirroring a share of the requests needs Gateway API v1.2 or newer, mirroring all of them does not; upgrade the CRDs`)
	assert.True(t, apierrors.IsBadRequest(err), "still the API server's error")
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "httproutes"}, "reviews", nil)
	assert.Equal(t, conflict, explainUnknownFields(route, conflict), "other errors pass as they are")
}
