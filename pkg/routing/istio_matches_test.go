package routing

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// The cookie expression is RE2, which Go's regexp implements: check it the
// way Envoy will evaluate it against whole Cookie headers.
func TestCookieRulesMatchTheCookieHeader(t *testing.T) {
	headers, err := headerConditions([]MatchRule{{Cookie: true, Name: "beta", Op: "exact", Value: "on"}})
	require.NoError(t, err)
	one := regexp.MustCompile(headers["cookie"].(map[string]interface{})["regex"].(string))
	for _, h := range []string{"beta=on", "a=1; beta=on", "beta=on; a=1", "a=1;beta=on;b=2"} {
		assert.True(t, one.MatchString(h), h)
	}
	for _, h := range []string{"beta=off", "xbeta=on", "beta=onx", "a=beta=on", ""} {
		assert.False(t, one.MatchString(h), h)
	}

	headers, err = headerConditions([]MatchRule{{Cookie: true, Name: "a", Op: "exact", Value: "1"}, {Cookie: true, Name: "b", Op: "exact", Value: "2"}})
	require.NoError(t, err)
	both := regexp.MustCompile(headers["cookie"].(map[string]interface{})["regex"].(string))
	for _, h := range []string{"a=1; b=2", "b=2; a=1", "x=0; b=2; y=9; a=1; z=3"} {
		assert.True(t, both.MatchString(h), h)
	}
	for _, h := range []string{"a=1", "b=2", "a=1; b=3"} {
		assert.False(t, both.MatchString(h), h)
	}
}

func TestConflictingRulesAreRefused(t *testing.T) {
	_, err := headerConditions([]MatchRule{{Name: "x", Op: "exact", Value: "1"}, {Name: "x", Op: "prefix", Value: "2"}})
	assert.ErrorContains(t, err, "header x is given twice")
	_, err = withConditions([]interface{}{map[string]interface{}{"headers": map[string]interface{}{"x": map[string]interface{}{"exact": "0"}}}},
		map[string]interface{}{"x": map[string]interface{}{"exact": "1"}})
	assert.ErrorContains(t, err, "already matches header x differently")
}

func TestAUserOwnedMirrorIsNeverReplaced(t *testing.T) {
	snap := loadSnapshot(t, "bookinfo-adopted")
	vs := snap.object("VirtualService", "reviews")
	def := vs.Object["spec"].(map[string]interface{})["http"].([]interface{})[2].(map[string]interface{})
	def["mirror"] = map[string]interface{}{"host": "reviews-shadow"}
	_, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3", Mirror: intPtr(20)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `http route "default" of VirtualService bookinfo/reviews already mirrors to reviews-shadow`)

	// Without --mirror the user's mirror is simply kept.
	plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3"})
	require.NoError(t, err)
	snap.apply(plan)
	def = snap.object("VirtualService", "reviews").Object["spec"].(map[string]interface{})["http"].([]interface{})[2].(map[string]interface{})
	assert.Equal(t, map[string]interface{}{"host": "reviews-shadow"}, def["mirror"])
}

func TestGatewayServesHosts(t *testing.T) {
	gw := testutil.DecodeObjects(t, []byte(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  servers:
  - hosts: ["*/*.example.com", "./admin.example.com", "shop/store.example.org", "plain.example.net"]`))[0]
	cases := []struct {
		host, namespace string
		want            bool
	}{
		{"www.example.com", "prod", true},
		{"a.b.example.com", "prod", true},
		{"example.com", "prod", false},
		{"admin.example.com", "istio-system", true},
		{"store.example.org", "shop", true},
		{"store.example.org", "prod", false},
		{"plain.example.net", "prod", true},
		{"other.example.net", "prod", false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, gatewayServes(gw, c.host, c.namespace), "%s from %s", c.host, c.namespace)
	}
}
