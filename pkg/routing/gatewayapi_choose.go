package routing

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// RoutingAPI is the API a canary's routing is written in.
type RoutingAPI string

const (
	// RoutingAPIAuto is the API that routes the Service already; for a
	// Service no route names, Istio's classic API unless the namespace
	// leans to the Gateway API (defaultRoutingAPI).
	RoutingAPIAuto RoutingAPI = "auto"
	// RoutingAPIIstio is Istio's VirtualServices and DestinationRules.
	RoutingAPIIstio RoutingAPI = "istio"
	// RoutingAPIGatewayAPI is the Kubernetes Gateway API's routes, with a
	// Service per version.
	RoutingAPIGatewayAPI RoutingAPI = "gateway-api"
)

// Labels by which Istio's ambient mode marks namespaces and Services.
const (
	// AmbientModeLabel with value AmbientMode puts a namespace in ambient mode.
	AmbientModeLabel = "istio.io/dataplane-mode"
	AmbientMode      = "ambient"
	// UseWaypointLabel on a Service or namespace names its waypoint proxy.
	UseWaypointLabel = "istio.io/use-waypoint"
)

// ChooseRoutingAPI decides which routing API a canary of the snapshot's
// Service runs on, as intent.RoutingAPI asks: auto takes the API that
// routes the Service already. Both APIs routing it is refused, since Istio
// leaves undefined which applies; so is asking for one API while the other
// routes it. The errors name each routing object and its kind.
func ChooseRoutingAPI(snap Snapshot, intent Intent) (RoutingAPI, error) {
	if snap.Service == nil {
		return "", fmt.Errorf("no service given")
	}
	svc := serviceRef{name: snap.Service.Name, namespace: snap.Service.Namespace, clusterDomain: intent.ClusterDomain}
	istio, gateway := istioRoutingObjects(snap, svc), gatewayAPIRoutingObjects(snap)
	ref := svc.namespace + "/" + svc.name
	switch intent.RoutingAPI {
	case "", RoutingAPIAuto:
		switch {
		case len(istio) > 0 && len(gateway) > 0:
			return "", fmt.Errorf("service %s is routed by Istio's API (%s) and by the Kubernetes Gateway API (%s) at once; Istio leaves undefined which of them applies, so no canary split would be the one written. Keep the Service's routing in one API (delete the other's objects), then run the command again", ref, strings.Join(istio, ", "), strings.Join(gateway, ", "))
		case len(istio) > 0:
			return RoutingAPIIstio, nil
		case len(gateway) > 0:
			return RoutingAPIGatewayAPI, nil
		}
		return defaultRoutingAPI(snap), nil
	case RoutingAPIIstio:
		if len(gateway) > 0 {
			return "", intentErrorf("{RoutingAPI} %s: service %s is routed by the Kubernetes Gateway API (%s); a VirtualService canary beside it would leave Istio's routing undefined. Run with {RoutingAPI} %s, or move the Service's routing to a VirtualService and delete those routes", RoutingAPIIstio, ref, strings.Join(gateway, ", "), RoutingAPIGatewayAPI)
		}
		return RoutingAPIIstio, nil
	case RoutingAPIGatewayAPI:
		if len(istio) > 0 {
			return "", intentErrorf("{RoutingAPI} %s: service %s is routed by Istio's API (%s); a Gateway API canary beside it would leave Istio's routing undefined. Run with {RoutingAPI} %s, or move the Service's routing to Gateway API routes and delete those objects", RoutingAPIGatewayAPI, ref, strings.Join(istio, ", "), RoutingAPIIstio)
		}
		return RoutingAPIGatewayAPI, nil
	}
	return "", intentErrorf("{RoutingAPI} %q is no routing API; pass %s, %s or %s", string(intent.RoutingAPI), RoutingAPIAuto, RoutingAPIIstio, RoutingAPIGatewayAPI)
}

// defaultRoutingAPI is the API for a Service no route names yet: the
// Gateway API where Istio supports it best (ambient namespaces, Services
// behind a waypoint) or where only its CRDs are installed, else Istio's.
func defaultRoutingAPI(snap Snapshot) RoutingAPI {
	if inAmbientNamespace(snap) || hasWaypoint(snap) {
		return RoutingAPIGatewayAPI
	}
	if !snap.IstioServed && snap.GatewayAPIServed {
		return RoutingAPIGatewayAPI
	}
	return RoutingAPIIstio
}

func inAmbientNamespace(snap Snapshot) bool {
	return snap.Namespace != nil && snap.Namespace.Labels[AmbientModeLabel] == AmbientMode
}

// hasWaypoint reports whether the Service, or its namespace, names a
// waypoint, through which its L7 routes take effect in ambient mode.
func hasWaypoint(snap Snapshot) bool {
	if snap.Service != nil && snap.Service.Labels[UseWaypointLabel] != "" {
		return true
	}
	return snap.Namespace != nil && snap.Namespace.Labels[UseWaypointLabel] != ""
}

// istioRoutingObjects names the VirtualServices that route to the Service.
func istioRoutingObjects(snap Snapshot, svc serviceRef) []string {
	var out []string
	for _, vs := range snap.VirtualServices {
		if routesToService(asMap(vs.Object["spec"]), svc, vs.GetNamespace()) {
			out = append(out, objectRef(vs))
		}
	}
	return out
}

// gatewayAPIRoutingObjects names the Gateway API routes that carry the
// Service's traffic, and how.
func gatewayAPIRoutingObjects(snap Snapshot) []string {
	var out []string
	for _, route := range snap.GatewayAPIRoutes {
		if how := gatewayAPIRouting(route, snap.Service, snap.Services); how != "" {
			out = append(out, objectRef(route)+" ("+how+")")
		}
	}
	return out
}

// usesGatewayAPI picks the backend: the API a canary in progress is
// recorded on, else ChooseRoutingAPI's answer. When that answer is a
// refusal the planner stays on Istio's API, as before the Gateway API
// backend existed: the preflight check reports the mixed routing, and an
// override may still go ahead.
func usesGatewayAPI(snap Snapshot, intent Intent, svc serviceRef) bool {
	if recordsProgressing(snap.GatewayAPIRoutes, svc.name) {
		return true
	}
	if recordsProgressing(snap.VirtualServices, svc.name) || recordsProgressing(snap.DestinationRules, svc.name) || snap.Service == nil {
		return false
	}
	api, err := ChooseRoutingAPI(snap, intent)
	return err == nil && api == RoutingAPIGatewayAPI
}

func recordsProgressing(objects []*unstructured.Unstructured, service string) bool {
	for _, obj := range objects {
		if st, err := ReadState(obj, service); err == nil && st != nil && st.Phase == PhaseProgressing {
			return true
		}
	}
	return false
}

// refuseAskedRoutingAPI refuses a start that asks for one routing API by
// name where it cannot run.
func refuseAskedRoutingAPI(snap Snapshot, intent Intent) error {
	if intent.Action != ActionStart || intent.RoutingAPI == "" || intent.RoutingAPI == RoutingAPIAuto {
		return nil
	}
	_, err := ChooseRoutingAPI(snap, intent)
	return err
}
