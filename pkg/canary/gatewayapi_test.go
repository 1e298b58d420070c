package canary

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// gatewayAPICanary is the snapshot of reviews once a Gateway API canary of
// v2 at 30 % has started: the plan's Services and route, as written.
func gatewayAPICanary(t *testing.T) *routing.Snapshot {
	t.Helper()
	snap := routing.Snapshot{
		Service: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "shop"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "reviews"}, Ports: []corev1.ServicePort{{Name: "http", Port: 9080}},
		}},
		Services: []corev1.Service{}, IstioServed: true, GatewayAPIServed: true, Now: time.Unix(1_800_000_000, 0),
	}
	for i, v := range []string{"v1", "v2"} {
		labels := map[string]string{"app": "reviews", "version": v}
		snap.Deployments = append(snap.Deployments, appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "reviews-" + v, Namespace: "shop", CreationTimestamp: metav1.NewTime(time.Unix(int64(1_700_000_000+i), 0))},
			Spec:       appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}}},
			Status:     appsv1.DeploymentStatus{AvailableReplicas: 1},
		})
	}
	plan, err := routing.Compute(snap, routing.Intent{Action: routing.ActionStart, Weight: 30, RoutingAPI: routing.RoutingAPIGatewayAPI})
	require.NoError(t, err)
	for _, c := range plan.Changes {
		if c.Desired.GetKind() == "HTTPRoute" {
			snap.GatewayAPIRoutes = append(snap.GatewayAPIRoutes, c.Desired)
		}
	}
	require.Len(t, snap.GatewayAPIRoutes, 1)
	return &snap
}

// analyze and run judge a Gateway API canary by the requests to its
// per-version Services, which is how sidecars report them.
func TestTargetOfAGatewayAPICanaryNamesItsVersionServices(t *testing.T) {
	snap := gatewayAPICanary(t)
	target, st, err := canaryTarget(snap, "shop", "reviews")
	require.NoError(t, err)
	assert.Equal(t, routing.RoutingAPIGatewayAPI, st.RoutingAPI)
	assert.Equal(t, []string{"reviews-v1", "reviews-v2"}, target.VersionServices)
	assert.Equal(t, 30, target.Routing.Weight)
}

// -f edits Istio's objects only: a Gateway API canary's Services and
// routes are refused with a message that says what to do.
func TestManifestsRefuseGatewayAPIObjects(t *testing.T) {
	route := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": routing.GatewayAPIGroup + "/v1", "kind": "HTTPRoute", "metadata": map[string]interface{}{"name": "reviews", "namespace": "shop"}}}
	err := refuseInManifests(routing.Change{Desired: route})
	var manifestErr *ManifestError
	require.ErrorAs(t, err, &manifestErr)
	assert.Contains(t, err.Error(), "HTTPRoute shop/reviews belongs to a Kubernetes Gateway API canary")
	assert.Contains(t, err.Error(), "without -f, or with --routing-api istio")
	vs := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService"}}
	assert.NoError(t, refuseInManifests(routing.Change{Desired: vs}))
}
