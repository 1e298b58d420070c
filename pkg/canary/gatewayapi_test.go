package canary

import (
	"context"
	"strings"
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

// httpRoute is HTTPRoute shop/reviews at a generation, with the conditions
// its controller set for that generation (type=status:reason).
func httpRoute(generation int64, conditions ...string) *unstructured.Unstructured {
	route := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": routing.GatewayAPIGroup + "/v1", "kind": "HTTPRoute",
		"metadata": map[string]interface{}{"name": "reviews", "namespace": "shop", "generation": generation},
		"spec":     map[string]interface{}{"rules": []interface{}{}},
	}}
	if len(conditions) == 0 {
		return route
	}
	var conds []interface{}
	for _, c := range conditions {
		kind, rest, _ := strings.Cut(c, "=")
		status, reason, _ := strings.Cut(rest, ":")
		conds = append(conds, map[string]interface{}{"type": kind, "status": status, "reason": reason, "message": "said " + reason, "observedGeneration": generation})
	}
	route.Object["status"] = map[string]interface{}{"parents": []interface{}{map[string]interface{}{"controllerName": "istio.io/gateway-controller", "conditions": conds}}}
	return route
}

func writtenRoute(live, written *unstructured.Unstructured, dryRun DryRun) *Result {
	return &Result{Request: Request{DryRun: dryRun}, Outcomes: []Outcome{{Change: routing.Change{Live: live, Desired: written}, Object: written}}}
}

// After a write the reader waits for the controller's answer on the
// written generation and passes on what it refused.
func TestRouteStatusReaderReportsTheWrittenGeneration(t *testing.T) {
	answers := []*unstructured.Unstructured{httpRoute(2), httpRoute(3, "Accepted=True:Accepted", "ResolvedRefs=False:BackendNotFound")}
	reads := 0
	var warnings []string
	r := &RouteStatusReader{Timeout: 5 * time.Second, Warn: func(m string) { warnings = append(warnings, m) },
		Reread: func(context.Context, *unstructured.Unstructured) (*unstructured.Unstructured, error) {
			reads++
			return answers[min(reads, len(answers))-1], nil
		}}
	err := r.AfterWrite(context.Background(), writtenRoute(httpRoute(2, "Accepted=True:Accepted"), httpRoute(3), NoDryRun), nil)
	require.NoError(t, err)
	assert.Equal(t, 2, reads, "read again until the written generation has a status")
	assert.Equal(t, []string{"HTTPRoute shop/reviews has references istio.io/gateway-controller cannot resolve (BackendNotFound: said BackendNotFound); requests to them fail"}, warnings)
}

// Without --wait only routes that had a status are waited for, and never
// on a dry run; with --wait a route nobody accepts in time is an error that
// says the change is written.
func TestRouteStatusReaderWaitsOnlyWhereAControllerAnswers(t *testing.T) {
	reads := 0
	reread := func(context.Context, *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		reads++
		return httpRoute(1), nil
	}
	r := &RouteStatusReader{Timeout: 300 * time.Millisecond, Reread: reread}
	require.NoError(t, r.AfterWrite(context.Background(), writtenRoute(nil, httpRoute(1), NoDryRun), nil))
	require.NoError(t, r.AfterWrite(context.Background(), writtenRoute(httpRoute(1, "Accepted=True:Accepted"), httpRoute(2), ServerDryRun), nil))
	assert.Zero(t, reads, "a created route without --wait, and a dry run, are not read back")

	r.RequireAccepted = true
	err := r.AfterWrite(context.Background(), writtenRoute(nil, httpRoute(1), NoDryRun), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--wait: route(s) not accepted within 300ms: HTTPRoute shop/reviews (generation 1: no controller reported on it). The change is written")
	assert.Positive(t, reads)
}
