package routing

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// vsGenerator builds VirtualServices that use every field of Istio's
// VirtualService schema (HTTP, TLS and TCP routes, every match attribute,
// redirects, direct responses, delegates, rewrites, retries, faults,
// mirrors, CORS, header manipulation), routing the Service "reviews" of
// namespace "shop" through subsets the DestinationRule defines.
type vsGenerator struct{ r *rand.Rand }

func (g vsGenerator) pick(options ...interface{}) interface{} { return options[g.r.Intn(len(options))] }
func (g vsGenerator) maybe() bool                             { return g.r.Intn(2) == 0 }

func (g vsGenerator) host() string {
	return g.pick("reviews", "reviews.shop", "reviews.shop.svc.cluster.local", "ratings", "details.other.svc.cluster.local").(string)
}

func (g vsGenerator) stringMatch() map[string]interface{} {
	return map[string]interface{}{g.pick("exact", "prefix", "regex").(string): fmt.Sprintf("/v%d", g.r.Intn(9))}
}

func (g vsGenerator) headerOps() map[string]interface{} {
	ops := map[string]interface{}{}
	if g.maybe() {
		ops["set"] = map[string]interface{}{"x-set": "1"}
	}
	if g.maybe() {
		ops["add"] = map[string]interface{}{"x-add": "2"}
	}
	if g.maybe() {
		ops["remove"] = []interface{}{"x-remove"}
	}
	return ops
}

func (g vsGenerator) destination() map[string]interface{} {
	d := map[string]interface{}{"destination": map[string]interface{}{"host": g.host()}}
	dest := d["destination"].(map[string]interface{})
	if s := g.pick("", "v1", "v1", "v2", "v3").(string); s != "" {
		dest["subset"] = s
	}
	if g.r.Intn(4) == 0 {
		dest["port"] = map[string]interface{}{"number": int64(9080)}
	}
	if g.r.Intn(4) == 0 {
		d["headers"] = map[string]interface{}{"request": g.headerOps(), "response": g.headerOps()}
	}
	return d
}

func (g vsGenerator) destinations() []interface{} {
	n := 1 + g.r.Intn(3)
	out := make([]interface{}, 0, n)
	left := int64(100)
	for i := 0; i < n; i++ {
		d := g.destination()
		if n > 1 {
			w := left
			if i < n-1 {
				w = int64(g.r.Intn(int(left) + 1))
			}
			left -= w
			d["weight"] = w
		}
		out = append(out, d)
	}
	return out
}

func (g vsGenerator) httpMatch() []interface{} {
	if g.r.Intn(3) == 0 {
		return nil
	}
	m := map[string]interface{}{}
	for _, field := range []string{"uri", "scheme", "method", "authority"} {
		if g.r.Intn(4) == 0 {
			m[field] = g.stringMatch()
		}
	}
	if g.r.Intn(4) == 0 {
		m["headers"] = map[string]interface{}{"end-user": g.stringMatch()}
	}
	if g.r.Intn(5) == 0 {
		m["withoutHeaders"] = map[string]interface{}{"x-debug": map[string]interface{}{"exact": "1"}}
	}
	if g.r.Intn(5) == 0 {
		m["queryParams"] = map[string]interface{}{"beta": map[string]interface{}{"exact": "1"}}
	}
	if g.r.Intn(5) == 0 {
		m["port"] = int64(9080)
	}
	if g.r.Intn(6) == 0 {
		m["sourceLabels"] = map[string]interface{}{"app": "productpage"}
	}
	if g.r.Intn(6) == 0 {
		m["gateways"] = []interface{}{"mesh"}
	}
	if g.r.Intn(6) == 0 {
		m["sourceNamespace"] = "frontend"
	}
	if g.r.Intn(6) == 0 {
		m["ignoreUriCase"] = true
	}
	if g.r.Intn(6) == 0 {
		m["name"] = "m"
		m["statPrefix"] = "stats"
	}
	return []interface{}{m}
}

func (g vsGenerator) httpRoute(i int) map[string]interface{} {
	r := map[string]interface{}{}
	if g.maybe() {
		r["name"] = fmt.Sprintf("r%d", i)
	}
	if m := g.httpMatch(); m != nil {
		r["match"] = m
	}
	switch g.r.Intn(8) {
	case 0:
		r["redirect"] = map[string]interface{}{"uri": "/new", "authority": "b.example.com", "redirectCode": int64(301), "scheme": "https", "port": int64(443)}
	case 1:
		r["directResponse"] = map[string]interface{}{"status": int64(503), "body": map[string]interface{}{"string": "down"}}
	case 2:
		r["delegate"] = map[string]interface{}{"name": "delegate", "namespace": "shop"}
	default:
		r["route"] = g.destinations()
	}
	if g.r.Intn(4) == 0 {
		r["rewrite"] = map[string]interface{}{"uri": "/", "authority": "a"}
		if g.maybe() {
			r["rewrite"] = map[string]interface{}{"uriRegexRewrite": map[string]interface{}{"match": "^/v1(.*)", "rewrite": `/v2\1`}}
		}
	}
	if g.r.Intn(3) == 0 {
		r["timeout"] = "5s"
	}
	if g.r.Intn(3) == 0 {
		r["retries"] = map[string]interface{}{"attempts": int64(3), "perTryTimeout": "2s", "retryOn": "5xx,reset", "retryRemoteLocalities": true}
	}
	if g.r.Intn(4) == 0 {
		r["fault"] = map[string]interface{}{
			"delay": map[string]interface{}{"fixedDelay": "1s", "percentage": map[string]interface{}{"value": 1.5}},
			"abort": map[string]interface{}{"httpStatus": int64(500), "percentage": map[string]interface{}{"value": int64(2)}},
		}
	}
	switch g.r.Intn(6) {
	case 0:
		r["mirror"] = map[string]interface{}{"host": "shadow", "port": map[string]interface{}{"number": int64(80)}}
		r["mirrorPercentage"] = map[string]interface{}{"value": 12.5}
	case 1:
		r["mirrors"] = []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "shadow"}, "percentage": map[string]interface{}{"value": int64(5)}}}
	}
	if g.r.Intn(4) == 0 {
		r["corsPolicy"] = map[string]interface{}{
			"allowOrigins": []interface{}{map[string]interface{}{"exact": "https://a.example.com"}}, "allowMethods": []interface{}{"GET"},
			"allowHeaders": []interface{}{"x"}, "exposeHeaders": []interface{}{"y"}, "maxAge": "24h", "allowCredentials": false,
		}
	}
	if g.r.Intn(4) == 0 {
		r["headers"] = map[string]interface{}{"request": g.headerOps(), "response": g.headerOps()}
	}
	return r
}

func (g vsGenerator) l4Route(tls bool) map[string]interface{} {
	m := map[string]interface{}{}
	if tls {
		m["sniHosts"] = []interface{}{"reviews.example.com"}
	}
	if g.maybe() {
		m["port"] = int64(9443)
	}
	if g.r.Intn(4) == 0 {
		m["destinationSubnets"] = []interface{}{"10.0.0.0/8"}
	}
	if g.r.Intn(4) == 0 {
		m["sourceLabels"] = map[string]interface{}{"app": "db-client"}
	}
	if g.r.Intn(5) == 0 {
		m["sourceNamespace"] = "frontend"
	}
	r := map[string]interface{}{"route": g.destinations()}
	if len(m) > 0 {
		r["match"] = []interface{}{m}
	}
	// L4 destinations carry no header manipulation.
	for _, d := range r["route"].([]interface{}) {
		delete(d.(map[string]interface{}), "headers")
	}
	return r
}

func (g vsGenerator) virtualService(name string) *unstructured.Unstructured {
	spec := map[string]interface{}{"hosts": []interface{}{g.pick("reviews", "reviews.shop.svc.cluster.local", "www.example.com").(string)}}
	if g.r.Intn(3) == 0 {
		spec["gateways"] = []interface{}{"istio-system/public", "mesh"}
	}
	if g.r.Intn(4) == 0 {
		spec["exportTo"] = []interface{}{"."}
	}
	var http, tls, tcp []interface{}
	for i, n := 0, g.r.Intn(7); i < n; i++ {
		http = append(http, g.httpRoute(i))
	}
	for i, n := 0, g.r.Intn(2); i < n; i++ {
		tls = append(tls, g.l4Route(true))
	}
	for i, n := 0, g.r.Intn(2); i < n; i++ {
		tcp = append(tcp, g.l4Route(false))
	}
	for kind, routes := range map[string][]interface{}{"http": http, "tls": tls, "tcp": tcp} {
		if routes != nil {
			spec[kind] = routes
		}
	}
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]interface{}{"name": name, "namespace": "shop", "annotations": map[string]interface{}{"other.tool/keep": "yes"}},
		"spec":     spec,
	}}
}

func (g vsGenerator) destinationRule() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]interface{}{"name": "reviews", "namespace": "shop"},
		"spec": map[string]interface{}{
			"host":          "reviews",
			"trafficPolicy": map[string]interface{}{"loadBalancer": map[string]interface{}{"simple": "LEAST_REQUEST"}},
			"subsets": []interface{}{
				map[string]interface{}{"name": "v1", "labels": map[string]interface{}{"version": "v1"}},
				map[string]interface{}{"name": "v2", "labels": map[string]interface{}{"version": "v2"}, "trafficPolicy": map[string]interface{}{"tls": map[string]interface{}{"mode": "ISTIO_MUTUAL"}}},
				map[string]interface{}{"name": "v3", "labels": map[string]interface{}{"version": "v3"}},
			},
		},
	}}
}

const generatedVirtualServices = 3000

// TestGeneratedVirtualServicesComeBackExactly is the exact-restore property:
// for thousands of generated VirtualServices, start → weight → abort gives
// back the original specs, and start → promote changes nothing but the
// managed routes' destinations and the subsets it may prune.
func TestGeneratedVirtualServicesComeBackExactly(t *testing.T) {
	g := vsGenerator{r: rand.New(rand.NewSource(20261125))}
	base := loadSnapshot(t, "no-istio")
	checked := 0
	for i := 0; i < generatedVirtualServices; i++ {
		snap := *base
		snap.VirtualServices = []*unstructured.Unstructured{g.virtualService("reviews"), g.virtualService("reviews-more")}
		snap.DestinationRules = []*unstructured.Unstructured{g.destinationRule()}
		originals := map[string]map[string]interface{}{}
		for _, obj := range append(append([]*unstructured.Unstructured{}, snap.VirtualServices...), snap.DestinationRules...) {
			originals[obj.GetKind()+"/"+obj.GetName()] = runtime.DeepCopyJSON(obj.Object["spec"].(map[string]interface{}))
		}
		intent := Intent{Action: ActionStart, Weight: g.r.Intn(101), Canary: "v2", Stable: "v1"}
		if g.maybe() {
			intent.Matches = []MatchRule{{Name: "x-canary", Op: "exact", Value: "yes"}}
		}
		plan, err := computeChecked(t, snap, intent)
		if err != nil {
			continue // refusing is allowed; a wrong write is not
		}
		checked++
		restart := snap
		restart.VirtualServices = append([]*unstructured.Unstructured(nil), snap.VirtualServices...)
		restart.DestinationRules = append([]*unstructured.Unstructured(nil), snap.DestinationRules...)

		// start → weight → abort restores everything.
		s := &snap
		s.apply(plan)
		for _, next := range []Intent{{Action: ActionWeight, Weight: g.r.Intn(101)}, {Action: ActionAbort}} {
			p, err := computeChecked(t, *s, next)
			require.NoError(t, err, "generated case %d: %v", i, next.Action)
			s.apply(p)
		}
		for _, obj := range append(append([]*unstructured.Unstructured{}, s.VirtualServices...), s.DestinationRules...) {
			if want, ok := originals[obj.GetKind()+"/"+obj.GetName()]; ok {
				if obj.GetKind() == "VirtualService" {
					requireAbortRestored(t, want, obj, "reviews", "generated case %d: start, weight, abort must restore %s but the canary's share", i, obj.GetName())
					continue
				}
				require.Equal(t, want, obj.Object["spec"], "generated case %d: start, weight, abort must restore %s", i, obj.GetName())
			}
		}

		// start → promote leaves every part it does not manage as it was.
		r := &restart
		r.apply(plan)
		p, err := computeChecked(t, *r, Intent{Action: ActionPromote})
		require.NoError(t, err, "generated case %d: promote", i)
		r.apply(p)
		for _, obj := range r.VirtualServices {
			want, ok := originals[obj.GetKind()+"/"+obj.GetName()]
			st, _ := ReadState(obj, "reviews")
			if !ok || st == nil {
				continue
			}
			require.Equal(t, withoutManagedDestinations(t, want, st.Routes), withoutManagedDestinations(t, obj.Object["spec"].(map[string]interface{}), st.Routes),
				"generated case %d: promote changed more than the managed destinations of %s", i, obj.GetName())
		}
	}
	t.Logf("%d generated cases (%d VirtualServices) checked, %d refused", checked, 2*checked, generatedVirtualServices-checked)
	require.Greater(t, checked, generatedVirtualServices/2, "most generated cases must be plannable, or the property proves little")
}
