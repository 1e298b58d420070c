package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestGatewayAPICheckFindings(t *testing.T) {
	startIntent := Intent{Action: ActionStart, Weight: 10, Canary: "v3", RoutingAPI: RoutingAPIGatewayAPI}
	setCondition := func(s *Snapshot, condition map[string]interface{}) {
		route := s.object("HTTPRoute", "reviews")
		parents := route.Object["status"].(map[string]interface{})["parents"].([]interface{})
		parents[0].(map[string]interface{})["conditions"] = []interface{}{condition}
	}
	cases := []struct {
		name    string
		cluster string
		mutate  func(*Snapshot)
		want    []string
		notWant []string
	}{
		{"a healthy adopted route", "gatewayapi/bookinfo-adopted", nil, nil, []string{"error", "warning"}},
		{"ambient without a waypoint", "gatewayapi/mesh-new", func(s *Snapshot) { delete(s.Namespace.Labels, UseWaypointLabel) },
			[]string{"error Service shop/reviews: is in ambient namespace shop (label istio.io/dataplane-mode=ambient) and has no waypoint", "istioctl waypoint apply -n shop --enroll-namespace, or label the Service with istio.io/use-waypoint=WAYPOINT; or pass an override"}, nil},
		{"ambient with the Service's waypoint", "gatewayapi/mesh-new", func(s *Snapshot) {
			delete(s.Namespace.Labels, UseWaypointLabel)
			s.Service.Labels = map[string]string{UseWaypointLabel: "reviews-waypoint"}
		}, nil, []string{"waypoint"}},
		{"route not accepted", "gatewayapi/bookinfo-adopted", func(s *Snapshot) {
			setCondition(s, map[string]interface{}{"type": "Accepted", "status": "False", "reason": "NoMatchingParent", "message": "no port 9080", "observedGeneration": int64(3)})
		}, []string{"error HTTPRoute bookinfo/reviews: is not accepted by istio.io/gateway-controller (NoMatchingParent: no port 9080)"}, nil},
		{"refs not resolved", "gatewayapi/bookinfo-adopted", func(s *Snapshot) {
			setCondition(s, map[string]interface{}{"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound", "message": "backend(reviews-v2) not found", "observedGeneration": int64(3)})
		}, []string{"warning HTTPRoute bookinfo/reviews: has references istio.io/gateway-controller cannot resolve (BackendNotFound: backend(reviews-v2) not found)"}, nil},
		{"a condition of an older generation", "gatewayapi/bookinfo-adopted", func(s *Snapshot) {
			setCondition(s, map[string]interface{}{"type": "Accepted", "status": "False", "reason": "Old", "observedGeneration": int64(2)})
		}, nil, []string{"Old"}},
		{"backendRef to a missing Service", "gatewayapi/bookinfo-adopted", func(s *Snapshot) { s.Services = s.Services[:2] },
			[]string{"warning HTTPRoute bookinfo/reviews: has a backendRef to Service bookinfo/reviews-v2, which does not exist"}, nil},
		{"a rule whose weights send nothing", "gatewayapi/bookinfo-adopted", func(s *Snapshot) {
			rules := s.object("HTTPRoute", "reviews").Object["spec"].(map[string]interface{})["rules"].([]interface{})
			rules[0].(map[string]interface{})["backendRefs"].([]interface{})[0].(map[string]interface{})["weight"] = int64(0)
		}, []string{`warning HTTPRoute bookinfo/reviews: rule "jason" gives all its backendRefs weight 0`}, nil},
		{"owned by Flagger", "gatewayapi/bookinfo-adopted", func(s *Snapshot) {
			s.object("HTTPRoute", "reviews").SetLabels(map[string]string{"app.kubernetes.io/managed-by": "flagger"})
		}, []string{"error HTTPRoute bookinfo/reviews: is managed by Flagger"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := loadGatewaySnapshot(t, c.cluster[len("gatewayapi/"):])
			if c.mutate != nil {
				c.mutate(snap)
			}
			intent := startIntent
			if c.cluster != "gatewayapi/bookinfo-adopted" {
				intent.Canary = ""
			}
			got := messages(Check(*snap, intent, CheckOptions{}))
			for _, want := range c.want {
				assert.Contains(t, got, want)
			}
			for _, not := range c.notWant {
				assert.NotContains(t, got, not)
			}
		})
	}
}

// A running Gateway API canary whose Service someone also routes with a
// VirtualService: the check names the VirtualService.
func TestGatewayAPICheckReportsAVirtualServiceBeside(t *testing.T) {
	snap := loadGatewaySnapshot(t, "bookinfo-adopted")
	plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3"})
	require.NoError(t, err)
	snap.apply(plan)
	snap.VirtualServices = []*unstructured.Unstructured{reviewsVirtualService(t)}
	got := messages(Check(*snap, weight(20), CheckOptions{}))
	assert.Contains(t, got, "error VirtualService bookinfo/reviews: routes Service bookinfo/reviews with Istio's API beside its Kubernetes Gateway API routes")
}

func TestVirtualServiceCanaryInAnAmbientNamespaceWarns(t *testing.T) {
	snap := loadSnapshot(t, "no-istio")
	snap.Namespace = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{AmbientModeLabel: AmbientMode}}}
	got := messages(Check(*snap, Intent{Action: ActionStart, Weight: 10, RoutingAPI: RoutingAPIIstio}, CheckOptions{}))
	assert.Contains(t, got, "warning Service shop/reviews: is in ambient namespace shop (label istio.io/dataplane-mode=ambient), where Istio applies VirtualServices only on waypoints and only as an alpha feature; consider routing API gateway-api")
}

func TestStatusSummarizesGatewayAPICanaries(t *testing.T) {
	snap := loadGatewaySnapshot(t, "ingress")
	plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 20, Gateway: gatewayIntent})
	require.NoError(t, err)
	snap.apply(plan)
	statuses := SummarizeRouting(snap.Services, snap.Deployments, nil, nil, snap.GatewayAPIRoutes)
	require.Len(t, statuses, 1)
	st := statuses[0]
	assert.Equal(t, RoutingAPIGatewayAPI, st.RoutingAPI)
	assert.Equal(t, "v1", st.Stable)
	assert.Equal(t, "v2", st.Canary)
	assert.Equal(t, 20, st.Weight)
	assert.Equal(t, PhaseProgressing, st.Phase)
	assert.Equal(t, Ready{Available: 2, Desired: 2}, st.StableReady)
	assert.Equal(t, []string{"HTTPRoute/reviews", "HTTPRoute/reviews-gateway", "HTTPRoute/www"}, st.Objects)
	assert.Equal(t, []string{"www.example.com", "shop.example.com"}, st.GatewayHosts)

	running, err := RunningCanary(*snap, "reviews")
	require.NoError(t, err)
	require.NotNil(t, running)
	assert.Equal(t, "reviews-v2", running.CanarySubset)

	istio := loadSnapshot(t, "no-istio")
	plan, err = Compute(*istio, start(10))
	require.NoError(t, err)
	istio.apply(plan)
	assert.Equal(t, RoutingAPIIstio, Summarize([]corev1.Service{*istio.Service}, istio.Deployments, istio.VirtualServices, istio.DestinationRules)[0].RoutingAPI)
}
