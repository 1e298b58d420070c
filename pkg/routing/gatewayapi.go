package routing

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// GatewayAPIGroup is the API group of the Kubernetes Gateway API.
const GatewayAPIGroup = "gateway.networking.k8s.io"

// GatewayAPIRouteKinds are the Gateway API routes that can carry a
// Service's traffic, in the mesh (a parentRef to the Service) or from a
// Gateway (a backendRef to it).
var GatewayAPIRouteKinds = []string{"HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute"}

// gatewayAPIRouting says how a Gateway API route carries the Service's
// traffic, empty when it does not.
func gatewayAPIRouting(route *unstructured.Unstructured, svc *corev1.Service, services []corev1.Service) string {
	spec := asMap(route.Object["spec"])
	names := func(ref map[string]interface{}, name string) bool {
		group, kind := asString(ref["group"]), asString(ref["kind"])
		ns := asString(ref["namespace"])
		if ns == "" {
			ns = route.GetNamespace()
		}
		return (group == "" || group == "core") && (kind == "" || kind == "Service") && asString(ref["name"]) == name && ns == svc.Namespace
	}
	for _, p := range asSlice(spec["parentRefs"]) {
		// A parentRef's kind defaults to Gateway: only an explicit Service is the mesh.
		if ref := asMap(p); asString(ref["kind"]) == "Service" && names(ref, svc.Name) {
			return "a parentRef to the Service (mesh routing)"
		}
	}
	for _, backend := range append([]string{svc.Name}, versionServices(svc, services)...) {
		for _, r := range asSlice(spec["rules"]) {
			for _, b := range asSlice(asMap(r)["backendRefs"]) {
				if names(asMap(b), backend) {
					if backend == svc.Name {
						return "a backendRef to the Service"
					}
					return fmt.Sprintf("a backendRef to Service %s, which selects a version of it", backend)
				}
			}
		}
	}
	return ""
}

// versionServices are the Services of the namespace that select a subset
// of the Service's pods: its selector and more (bookinfo's reviews-v1).
func versionServices(svc *corev1.Service, services []corev1.Service) []string {
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	var out []string
	for _, s := range services {
		if s.Name == svc.Name || s.Namespace != svc.Namespace || len(s.Spec.Selector) <= len(svc.Spec.Selector) {
			continue
		}
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(s.Spec.Selector)) {
			out = append(out, s.Name)
		}
	}
	return out
}

// checkGatewayAPIRoutes refuses a VirtualService canary for a Service
// that Gateway API routes also carry: Istio leaves undefined which of the
// two applies, so the split would not be the one written.
func (c *checker) checkGatewayAPIRoutes(virtualServices []*unstructured.Unstructured) {
	beside := "beside it"
	if len(virtualServices) > 0 {
		var refs []string
		for _, vs := range virtualServices {
			refs = append(refs, objectRef(vs))
		}
		beside = "beside " + strings.Join(refs, ", ")
	}
	for _, route := range c.snap.GatewayAPIRoutes {
		how := gatewayAPIRouting(route, c.snap.Service, c.snap.Services)
		if how == "" {
			continue
		}
		c.add(SeverityError, objectRef(route), "routes %s through the Kubernetes Gateway API (%s); a VirtualService canary %s leaves Istio's routing of it undefined. Keep the Service's routing in one API: delete this route to run the canary on VirtualServices, or delete the VirtualServices to run it on this route's backendRefs ({RoutingAPI} %s); or pass {Override} to write all the same",
			c.svcRef, how, beside, RoutingAPIGatewayAPI)
	}
}

// GatewayAPIRoutesOf are the snapshot's Gateway API routes that carry its
// Service's traffic (a parentRef to it, or a backendRef to it or to one of
// its per-version Services).
func GatewayAPIRoutesOf(snap Snapshot) []*unstructured.Unstructured {
	if snap.Service == nil {
		return nil
	}
	var out []*unstructured.Unstructured
	for _, route := range snap.GatewayAPIRoutes {
		if gatewayAPIRouting(route, snap.Service, snap.Services) != "" {
			out = append(out, route)
		}
	}
	return out
}
