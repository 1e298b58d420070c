package meshsync

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// nonce builds a nonce the way istiod does: push version, then a UUID.
func nonce(counter string) string {
	return "2026-11-30T23:01:03Z/" + counter + "0b6f1a34-5f0e-4c59-9d3a-1f2e3d4c5b6a"
}

const (
	clusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	listenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
)

func TestPushCounter(t *testing.T) {
	for _, tc := range []struct {
		nonce string
		want  uint64
		err   bool
	}{
		{nonce: nonce("12"), want: 12},
		{nonce: nonce("7"), want: 7},
		// The UUID may start with digits: its fixed length tells them apart.
		{nonce: "2026-11-30T23:01:03Z/3" + "12345678-5f0e-4c59-9d3a-1f2e3d4c5b6a", want: 3},
		{nonce: "2026-11-30T23:01:03+01:00/41" + "0b6f1a34-5f0e-4c59-9d3a-1f2e3d4c5b6a", want: 41},
		{nonce: "", err: true},
		{nonce: "no-slash-0b6f1a34-5f0e-4c59-9d3a-1f2e3d4c5b6a", err: true},
		{nonce: "2026-11-30T23:01:03Z/" + "0b6f1a34-5f0e-4c59-9d3a-1f2e3d4c5b6a", err: true},
		{nonce: "2026-11-30T23:01:03Z/x1" + "0b6f1a34-5f0e-4c59-9d3a-1f2e3d4c5b6a", err: true},
	} {
		got, err := PushCounter(tc.nonce)
		if tc.err {
			assert.Error(t, err, tc.nonce)
			continue
		}
		require.NoError(t, err, tc.nonce)
		assert.Equal(t, tc.want, got, tc.nonce)
	}
}

func TestParseAndLatestPush(t *testing.T) {
	body := []byte(`[
	 {"cluster_id":"Kubernetes","proxy":"productpage-1.shop","proxy_type":"sidecar",
	  "cluster_sent":"` + nonce("5") + `","cluster_acked":"` + nonce("5") + `",
	  "resources":{"` + clusterType + `":{"sent":"` + nonce("5") + `","acked":"` + nonce("5") + `","sentTime":"2026-11-30T23:01:03.5Z"},
	               "` + routeType + `":{"sent":"` + nonce("9") + `","acked":"` + nonce("8") + `"}}},
	 {"proxy":"ingress.v1.istio-system","proxy_type":"router",
	  "route_sent":"` + nonce("7") + `","route_acked":"` + nonce("7") + `"}
	]`)
	proxies, err := Parse(body)
	require.NoError(t, err)
	require.Len(t, proxies, 2)
	assert.Equal(t, "shop", proxies[0].Namespace())
	assert.Equal(t, "istio-system", proxies[1].Namespace())
	latest, err := LatestPush(proxies)
	require.NoError(t, err)
	assert.Equal(t, uint64(9), latest)

	latest, err = LatestPush(nil)
	require.NoError(t, err)
	assert.Zero(t, latest)

	_, err = Parse([]byte(`<html>not found</html>`))
	assert.ErrorContains(t, err, "/debug/syncz")

	_, err = LatestPush([]Proxy{{ID: "sidecar~x", RouteSent: "garbage"}})
	assert.ErrorContains(t, err, "proxy sidecar~x")
	assert.ErrorContains(t, err, "without --wait")
}

func vs(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	obj := map[string]interface{}{}
	require.NoError(t, yaml.Unmarshal([]byte(doc), &obj))
	return &unstructured.Unstructured{Object: obj}
}

func TestAudienceOf(t *testing.T) {
	mesh := vs(t, "metadata: {namespace: shop, name: reviews}\nspec: {hosts: [reviews]}")
	local := vs(t, "metadata: {namespace: shop, name: reviews}\nspec: {hosts: [reviews], exportTo: ['.']}")
	listed := vs(t, "metadata: {namespace: shop, name: reviews}\nspec: {hosts: [reviews], exportTo: ['.', web]}")
	gatewayOnly := vs(t, "metadata: {namespace: shop, name: www}\nspec: {hosts: [www.example.com], gateways: [istio-system/public]}")
	both := vs(t, "metadata: {namespace: shop, name: www}\nspec: {hosts: [www.example.com], gateways: [istio-system/public, mesh], exportTo: ['.']}")

	// istiod names proxies POD.NAMESPACE; older ones, and tests, a full node ID.
	sidecar := func(ns string) Proxy { return Proxy{ID: "p-1." + ns, Type: "sidecar"} }
	router := Proxy{ID: "gw.istio-system", Type: "router"}
	waypoint := Proxy{ID: "wp.shop", Type: "waypoint"}
	ztunnel := Proxy{ID: "zt.istio-system", Type: "ztunnel"}
	untyped := Proxy{ID: "sidecar~10.0.0.5~p.web~web.svc.cluster.local"}
	nameless := Proxy{ID: "no-namespace", Type: "sidecar"}
	typeless := Proxy{ID: "p-2.shop"} // counted as a sidecar, not left out

	for _, tc := range []struct {
		name     string
		vss      []*unstructured.Unstructured
		included []Proxy
		excluded []Proxy
	}{
		{"exported everywhere", []*unstructured.Unstructured{mesh}, []Proxy{sidecar("shop"), sidecar("web"), waypoint, untyped}, []Proxy{router, ztunnel}},
		{"exported to its namespace", []*unstructured.Unstructured{local}, []Proxy{sidecar("shop"), waypoint, typeless}, []Proxy{sidecar("web"), untyped, router, nameless, ztunnel}},
		{"exported to a list", []*unstructured.Unstructured{listed}, []Proxy{sidecar("shop"), sidecar("web"), untyped}, []Proxy{sidecar("other"), router}},
		{"gateway only", []*unstructured.Unstructured{gatewayOnly}, []Proxy{router}, []Proxy{sidecar("shop"), waypoint}},
		{"gateway and mesh", []*unstructured.Unstructured{both}, []Proxy{router, sidecar("shop")}, []Proxy{sidecar("web")}},
		{"mesh and gateway objects", []*unstructured.Unstructured{local, gatewayOnly}, []Proxy{router, sidecar("shop")}, []Proxy{sidecar("web"), ztunnel}},
		{"nothing", nil, nil, []Proxy{router, sidecar("shop")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := AudienceOf(tc.vss)
			for _, p := range tc.included {
				assert.True(t, a.Includes(p), p.ID)
			}
			for _, p := range tc.excluded {
				assert.False(t, a.Includes(p), p.ID)
			}
		})
	}
}

func TestAudienceNamespace(t *testing.T) {
	assert.Equal(t, "shop", Audience{Namespaces: map[string]bool{"shop": true}}.Namespace())
	assert.Empty(t, Audience{Namespaces: map[string]bool{"shop": true, "web": true}}.Namespace())
	assert.Empty(t, Audience{Namespaces: map[string]bool{"shop": true}, Gateways: true}.Namespace())
	assert.Empty(t, Audience{AllNamespaces: true}.Namespace())
	assert.Empty(t, Audience{}.Namespace())
}

func TestJudge(t *testing.T) {
	everyone := Audience{AllNamespaces: true, Gateways: true}
	baseline := uint64(10)
	synced := func(id, counter string) Proxy { // a sidecar
		return Proxy{ID: id, Type: "sidecar", Resources: map[string]Resource{
			clusterType: {Sent: nonce(counter), Acked: nonce(counter)},
			routeType:   {Sent: nonce(counter), Acked: nonce(counter)},
		}}
	}
	for _, tc := range []struct {
		name      string
		proxy     Proxy
		newerThan *uint64
		reason    string // empty: in sync
	}{
		{name: "acked a newer push", proxy: synced("sidecar~a~a.ns~ns.svc.cluster.local", "11"), newerThan: &baseline},
		{name: "acked only the baseline", proxy: synced("sidecar~a~a.ns~ns.svc.cluster.local", "10"), newerThan: &baseline, reason: "has push 10, not yet one after the change (newer than 10)"},
		{name: "unchanged plan needs no newer push", proxy: synced("sidecar~a~a.ns~ns.svc.cluster.local", "10")},
		{name: "one type sent, not acked", proxy: Proxy{ID: "sidecar~b", Type: "sidecar", Resources: map[string]Resource{
			clusterType:  {Sent: nonce("11"), Acked: nonce("11")},
			routeType:    {Sent: nonce("12"), Acked: nonce("11")},
			listenerType: {Sent: nonce("12"), Acked: ""},
		}}, newerThan: &baseline, reason: "has not acknowledged the Listener, RouteConfiguration istiod sent it"},
		{name: "rejected", proxy: Proxy{ID: "sidecar~c", Type: "sidecar", Resources: map[string]Resource{
			routeType: {Sent: nonce("12"), Acked: nonce("9"), LastError: "invalid weight"},
		}}, newerThan: &baseline, reason: "rejected the RouteConfiguration istiod sent it: invalid weight"},
		{name: "nothing received", proxy: Proxy{ID: "sidecar~d", Type: "sidecar"}, newerThan: &baseline, reason: "has received no configuration yet"},
		{name: "old istiod fields only", proxy: Proxy{ID: "router~e", Type: "router", RouteSent: nonce("14"), RouteAcked: nonce("14"), ClusterSent: nonce("13"), ClusterAcked: nonce("13")}, newerThan: &baseline},
		{name: "clusters newer, routes not yet", proxy: Proxy{ID: "sidecar~g", Type: "sidecar", Resources: map[string]Resource{
			clusterType: {Sent: nonce("11"), Acked: nonce("11")},
			routeType:   {Sent: nonce("10"), Acked: nonce("10")},
		}}, newerThan: &baseline, reason: "has push 10, not yet one after the change (newer than 10)"},
		{name: "no routes watched: any type", proxy: Proxy{ID: "sidecar~h", Type: "sidecar", Resources: map[string]Resource{
			clusterType: {Sent: nonce("11"), Acked: nonce("11")},
		}}, newerThan: &baseline},
		{name: "types never sent are ignored", proxy: Proxy{ID: "sidecar~f", Type: "sidecar", Resources: map[string]Resource{
			routeType:   {Sent: nonce("11"), Acked: nonce("11")},
			clusterType: {},
		}}, newerThan: &baseline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Judge([]Proxy{tc.proxy}, everyone, tc.newerThan)
			require.NoError(t, err)
			if tc.reason == "" {
				assert.Equal(t, []string{tc.proxy.ID}, v.InSync)
				assert.True(t, v.Done())
				return
			}
			assert.Empty(t, v.InSync)
			require.Len(t, v.Pending, 1)
			assert.Equal(t, Pending{ID: tc.proxy.ID, Reason: tc.reason}, v.Pending[0])
			assert.False(t, v.Done())
		})
	}

	t.Run("only the audience counts, sorted", func(t *testing.T) {
		proxies := []Proxy{
			synced("z-1.shop", "11"),
			synced("a-1.shop", "11"),
			synced("w-1.web", "9"),
			{ID: "g.istio-system", Type: "router", RouteSent: nonce("12"), RouteAcked: nonce("11")},
		}
		v, err := Judge(proxies, Audience{Namespaces: map[string]bool{"shop": true}}, &baseline)
		require.NoError(t, err)
		assert.Equal(t, []string{"a-1.shop", "z-1.shop"}, v.InSync)
		assert.True(t, v.Done())
	})

	t.Run("unreadable nonce", func(t *testing.T) {
		_, err := Judge([]Proxy{{ID: "sidecar~x", Type: "sidecar", RouteSent: "v1", RouteAcked: "v1"}}, everyone, &baseline)
		assert.ErrorContains(t, err, "without --wait")
	})
}

func gatewayAPIRoute(namespace string, parentRefs ...map[string]interface{}) *unstructured.Unstructured {
	var refs []interface{}
	for _, r := range parentRefs {
		refs = append(refs, r)
	}
	route := &unstructured.Unstructured{Object: map[string]interface{}{"kind": "HTTPRoute", "spec": map[string]interface{}{"parentRefs": refs}}}
	route.SetNamespace(namespace)
	return route
}

// A producer route (parentRef to a Service of its namespace) reaches every
// namespace's sidecars, a consumer route its own namespace's, a route
// attached to a Gateway the gateways.
func TestAudienceOfGatewayAPIRoutes(t *testing.T) {
	a := AudienceOf(nil)
	a.AddGatewayAPIRoutes([]*unstructured.Unstructured{gatewayAPIRoute("web", map[string]interface{}{"kind": "Service", "name": "reviews", "namespace": "shop"})})
	assert.Equal(t, "web", a.Namespace())
	assert.False(t, a.Gateways)

	a.AddGatewayAPIRoutes([]*unstructured.Unstructured{gatewayAPIRoute("shop", map[string]interface{}{"name": "public", "namespace": "ingress"})})
	assert.True(t, a.Gateways)
	assert.False(t, a.AllNamespaces)

	a.AddGatewayAPIRoutes([]*unstructured.Unstructured{gatewayAPIRoute("shop", map[string]interface{}{"group": "", "kind": "Service", "name": "reviews"})})
	assert.True(t, a.AllNamespaces)
}
