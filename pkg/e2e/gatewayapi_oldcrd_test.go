//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var crdsV1 = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// withoutMirrorPercent removes requestMirror's percent (and the validation
// rules that name it) from a CRD schema, as Gateway API CRDs were before
// v1.2.
func withoutMirrorPercent(node interface{}) {
	switch n := node.(type) {
	case map[string]interface{}:
		if props, ok := n["properties"].(map[string]interface{}); ok {
			if mirror, ok := props["requestMirror"].(map[string]interface{}); ok {
				delete(mirror["properties"].(map[string]interface{}), "percent")
				var kept []interface{}
				for _, rule := range asList(mirror["x-kubernetes-validations"]) {
					if !strings.Contains(rule.(map[string]interface{})["rule"].(string), "percent") {
						kept = append(kept, rule)
					}
				}
				mirror["x-kubernetes-validations"] = kept
			}
		}
		for _, v := range n {
			withoutMirrorPercent(v)
		}
	case []interface{}:
		for _, v := range n {
			withoutMirrorPercent(v)
		}
	}
}

func asList(v interface{}) []interface{} {
	l, _ := v.([]interface{})
	return l
}

// On a cluster whose HTTPRoute CRD predates requestMirror.percent, a
// mirror of part of the traffic is refused by the server dry run, saying
// why, with nothing written; mirroring every request works.
func TestGatewayAPIMirrorOnACRDWithoutPercent(t *testing.T) {
	t.Parallel()
	c := startCluster(t, "--gateway-api")
	ctx := context.Background()
	crd, err := c.dyn.Resource(crdsV1).Get(ctx, "httproutes.gateway.networking.k8s.io", metav1.GetOptions{})
	require.NoError(t, err)
	withoutMirrorPercent(crd.Object["spec"])
	_, err = c.dyn.Resource(crdsV1).Update(ctx, crd, metav1.UpdateOptions{})
	require.NoError(t, err)
	c.kubectl(t, "", "create", "namespace", "shop")
	c.deployVersions(t, "shop", "reviews", "v1", "v2")

	r := c.canary(t, nil, "start", "reviews", "-n", "shop", "--routing-api", "gateway-api", "--mirror", "20")
	require.Error(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "HTTPRoute shop/reviews needs fields that the cluster's HTTPRoute.gateway.networking.k8s.io CRD lacks")
	assert.Contains(t, r.stderr, "mirroring a share of the requests needs Gateway API v1.2 or newer")
	c.requireAbsent(t, httpRoutesV1, "shop", "reviews")
	c.requireAbsent(t, coreServices, "shop", "reviews-v2")

	c.mustCanary(t, "start", "reviews", "-n", "shop", "--routing-api", "gateway-api", "--mirror", "100")
	route := c.get(t, httpRoutesV1, "shop", "reviews")
	rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
	require.NotEmpty(t, rules)
	var mirrors []interface{}
	for _, f := range asList(rules[len(rules)-1].(map[string]interface{})["filters"]) {
		if m, ok := f.(map[string]interface{})["requestMirror"]; ok {
			mirrors = append(mirrors, m)
		}
	}
	require.Len(t, mirrors, 1, "%v", rules)
	assert.NotContains(t, mirrors[0], "percent")
}
