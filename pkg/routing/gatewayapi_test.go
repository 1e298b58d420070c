package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func gatewayAPIRoute(kind, ns string, spec map[string]interface{}) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": GatewayAPIGroup + "/v1", "kind": kind, "spec": spec}}
	u.SetNamespace(ns)
	u.SetName("route")
	return u
}

func refs(refs ...map[string]interface{}) []interface{} {
	out := make([]interface{}, len(refs))
	for i, r := range refs {
		out[i] = r
	}
	return out
}

func TestGatewayAPIRouting(t *testing.T) {
	reviews := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "shop"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "reviews"}}}
	services := []corev1.Service{
		*reviews,
		{ObjectMeta: metav1.ObjectMeta{Name: "reviews-v1", Namespace: "shop"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "reviews", "version": "v1"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ratings", Namespace: "shop"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "ratings"}}},
	}
	backends := func(rs ...map[string]interface{}) map[string]interface{} {
		return map[string]interface{}{"rules": refs(map[string]interface{}{"backendRefs": refs(rs...)})}
	}
	cases := []struct {
		name  string
		route *unstructured.Unstructured
		want  string
	}{
		{"mesh parentRef", gatewayAPIRoute("HTTPRoute", "shop", map[string]interface{}{"parentRefs": refs(map[string]interface{}{"group": "", "kind": "Service", "name": "reviews"})}), "a parentRef to the Service (mesh routing)"},
		{"mesh parentRef from another namespace", gatewayAPIRoute("HTTPRoute", "web", map[string]interface{}{"parentRefs": refs(map[string]interface{}{"kind": "Service", "name": "reviews", "namespace": "shop"})}), "a parentRef to the Service (mesh routing)"},
		{"parentRef to a Gateway named like the Service", gatewayAPIRoute("HTTPRoute", "shop", map[string]interface{}{"parentRefs": refs(map[string]interface{}{"name": "reviews"})}), ""},
		{"backendRef to the Service", gatewayAPIRoute("TCPRoute", "shop", backends(map[string]interface{}{"name": "reviews", "port": int64(9080)})), "a backendRef to the Service"},
		{"backendRef to a per-version Service", gatewayAPIRoute("GRPCRoute", "shop", backends(map[string]interface{}{"name": "reviews-v1"})), "a backendRef to Service reviews-v1, which selects a version of it"},
		{"backendRef to another Service", gatewayAPIRoute("HTTPRoute", "shop", backends(map[string]interface{}{"name": "ratings"})), ""},
		{"backendRef to a Service of another namespace", gatewayAPIRoute("HTTPRoute", "web", backends(map[string]interface{}{"name": "reviews"})), ""},
		{"backendRef of another kind", gatewayAPIRoute("HTTPRoute", "shop", backends(map[string]interface{}{"group": "multicluster.x-k8s.io", "kind": "ServiceImport", "name": "reviews"})), ""},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, gatewayAPIRouting(c.route, reviews, services), c.name)
	}
}
