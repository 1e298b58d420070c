package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

func reviewsVirtualService(t *testing.T) *unstructured.Unstructured {
	return testutil.DecodeObjects(t, []byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: bookinfo}\nspec: {hosts: [reviews], http: [{route: [{destination: {host: reviews}}]}]}"))[0]
}

func TestChooseRoutingAPI(t *testing.T) {
	ambient := func(s *Snapshot) { s.Namespace.Labels = map[string]string{AmbientModeLabel: AmbientMode} }
	cases := []struct {
		name    string
		cluster string
		mutate  func(*Snapshot)
		asked   RoutingAPI
		want    RoutingAPI
		wantErr []string
	}{
		{"nothing routes, sidecar namespace: Istio", "no-istio", nil, "", RoutingAPIIstio, nil},
		{"nothing routes, auto spelled out", "no-istio", nil, RoutingAPIAuto, RoutingAPIIstio, nil},
		{"a VirtualService routes", "bookinfo-adopted", nil, "", RoutingAPIIstio, nil},
		{"an HTTPRoute routes", "gatewayapi/bookinfo-adopted", nil, "", RoutingAPIGatewayAPI, nil},
		{"a Gateway's HTTPRoute names the Service", "gatewayapi/ingress", nil, "", RoutingAPIGatewayAPI, nil},
		{"ambient namespace", "gatewayapi/mesh-new", func(s *Snapshot) { ambient(s) }, "", RoutingAPIGatewayAPI, nil},
		{"namespace names a waypoint", "gatewayapi/mesh-new", func(s *Snapshot) { s.Namespace.Labels = map[string]string{UseWaypointLabel: "wp"} }, "", RoutingAPIGatewayAPI, nil},
		{"Service names a waypoint", "no-istio", func(s *Snapshot) { s.Service.Labels = map[string]string{UseWaypointLabel: "wp"} }, "", RoutingAPIGatewayAPI, nil},
		{"only the Gateway API's CRDs", "no-istio", func(s *Snapshot) { s.GatewayAPIServed = true }, "", RoutingAPIGatewayAPI, nil},
		{"both APIs' CRDs", "no-istio", func(s *Snapshot) { s.GatewayAPIServed, s.IstioServed = true, true }, "", RoutingAPIIstio, nil},
		{"asked for the Gateway API with nothing routing", "no-istio", nil, RoutingAPIGatewayAPI, RoutingAPIGatewayAPI, nil},
		{"asked for Istio in an ambient namespace", "gatewayapi/mesh-new", nil, RoutingAPIIstio, RoutingAPIIstio, nil},
		{"both route the Service", "gatewayapi/bookinfo-adopted", func(s *Snapshot) { s.VirtualServices = []*unstructured.Unstructured{reviewsVirtualService(t)} }, "", "",
			[]string{"service bookinfo/reviews is routed by Istio's API (VirtualService bookinfo/reviews) and by the Kubernetes Gateway API (HTTPRoute bookinfo/reviews (a parentRef to the Service (mesh routing)))", "delete the other's objects"}},
		{"asked for Istio where HTTPRoutes route", "gatewayapi/bookinfo-adopted", nil, RoutingAPIIstio, "",
			[]string{"routing API istio: service bookinfo/reviews is routed by the Kubernetes Gateway API (HTTPRoute bookinfo/reviews", "Run with routing API gateway-api"}},
		{"asked for the Gateway API where a VirtualService routes", "bookinfo-adopted", nil, RoutingAPIGatewayAPI, "",
			[]string{"routing API gateway-api: service bookinfo/reviews is routed by Istio's API (VirtualService bookinfo/reviews)"}},
		{"unknown API", "no-istio", nil, "linkerd", "", []string{`routing API "linkerd" is no routing API`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := loadSnapshot(t, c.cluster)
			if snap.Namespace == nil {
				snap.Namespace = &corev1.Namespace{}
			}
			if c.mutate != nil {
				c.mutate(snap)
			}
			got, err := ChooseRoutingAPI(*snap, Intent{RoutingAPI: c.asked})
			if c.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, c.want, got)
				return
			}
			require.Error(t, err)
			for _, want := range c.wantErr {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

// A start that asks for one API where the other routes is refused before
// anything is planned; in auto mode the planner stays on Istio's API and
// the preflight check reports the mixed routing (an override may go ahead).
func TestStartOnTheWrongRoutingAPIIsRefused(t *testing.T) {
	snap := loadSnapshot(t, "gatewayapi/bookinfo-adopted")
	_, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3", RoutingAPI: RoutingAPIIstio})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTPRoute bookinfo/reviews")

	snap.VirtualServices = []*unstructured.Unstructured{reviewsVirtualService(t)}
	findings := Check(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3"}, CheckOptions{})
	assert.Contains(t, messages(findings), "HTTPRoute bookinfo/reviews: routes Service bookinfo/reviews through the Kubernetes Gateway API")
}

func messages(findings []Finding) string {
	var out string
	for _, f := range findings {
		out += string(f.Severity) + " " + f.Object + ": " + f.Message + "\n"
	}
	return out
}
