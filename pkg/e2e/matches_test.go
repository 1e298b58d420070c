//go:build e2e

package e2e

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// matchesFixture is hand-written routing for reviews: jason pinned to v2 (a
// deliberate rule the canary leaves alone), a managed route with its own
// match (two entries, ORed) and the managed default route. The labels of
// the VirtualService are another tool's, which the canary must keep.
var matchesFixture = yamlStream(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  labels: {team: books}
spec:
  hosts: [reviews]
  http:
  - name: pinned
    match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
  - name: api
    match:
    - uri: {prefix: /api}
    - uri: {prefix: /v2/api}
    timeout: 3s
    route:
    - destination: {host: reviews, subset: v1, port: {number: 9080}}
  - name: default
    retries: {attempts: 2}
    route:
    - destination: {host: reviews, subset: v1}
`, reviewsDestinationRule("v1", "v2"))

// TestHeaderAndCookieRulesThenPercentage: a dark launch for testers (a
// header and a cookie, ANDed), then a percentage for everyone, then other
// testers, then no rules, then abort back to the exact pre-start spec.
func TestHeaderAndCookieRulesThenPercentage(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.create(t, ns, matchesFixture)
	vs0 := c.get(t, vsV1, ns, "reviews")
	dr0 := c.get(t, drV1, ns, "reviews")
	pinned := toJSON(t, route(t, vs0, "http", 0))

	c.mustCanary(t, "start", "reviews", "-n", ns, "--weight", "0", "--header", "x-tester=yes", "--cookie", "beta=on")
	vs := c.get(t, vsV1, ns, "reviews")
	// One match route before each managed HTTP route; the pinned route is
	// not managed and gets none.
	require.Equal(t, []string{"pinned", "canary-match-api", "api", "canary-match-default", "default"}, routeNames(vs, "http"))
	assert.Equal(t, pinned, toJSON(t, route(t, vs, "http", 0)), "the route the canary does not manage changed")
	for _, managed := range []string{"api", "default"} {
		i, r := routeNamed(t, vs, "http", managed)
		assert.Equal(t, map[string]int64{"v1": 100, "v2": 0}, weights(t, vs, "http", i), "dark launch: managed route %s", managed)
		original := routeOf(t, vs0, "http", managed)
		// The managed route keeps every field but its destinations.
		delete(r, "route")
		delete(original, "route")
		assert.Equal(t, toJSON(t, original), toJSON(t, r), "managed route %s changed beyond its destinations", managed)

		_, m := routeNamed(t, vs, "http", "canary-match-"+managed)
		assert.Equal(t, map[string]int64{"v2": 100}, weights(t, vs, "http", i-1), "match route before %s sends everything to the canary", managed)
		// The copy keeps the managed route's policies (timeout, retries).
		for _, field := range []string{"timeout", "retries"} {
			assert.Equal(t, original[field], m[field], "match route before %s: %s", managed, field)
		}
		requireMatchANDsRules(t, routeOf(t, vs0, "http", managed), m)
	}
	// The api route's destination port is kept on the canary.
	_, m := routeNamed(t, vs, "http", "canary-match-api")
	port, _, _ := unstructured.NestedInt64(m["route"].([]interface{})[0].(map[string]interface{}), "destination", "port", "number")
	assert.Equal(t, int64(9080), port, "the match route's destination lost the port")

	st := c.status(t, ns, "reviews")
	assert.Equal(t, 0, st.Weight)
	rows := c.statusTable(t, "-n", ns)
	require.Len(t, rows, 1)
	assert.Equal(t, "header x-tester=yes, cookie beta=on", rows[0]["ROUTING"])
	requireSecondRunUnchanged(t, c, ns, "start", "reviews", "-n", ns, "--weight", "0", "--header", "x-tester=yes", "--cookie", "beta=on")

	// Then a percentage for everyone: the match routes stay byte for byte.
	before := map[string]string{}
	for _, name := range []string{"canary-match-api", "canary-match-default"} {
		_, r := routeNamed(t, vs, "http", name)
		before[name] = toJSON(t, r)
	}
	c.mustCanary(t, "weight", "reviews", "20", "-n", ns)
	vs = c.get(t, vsV1, ns, "reviews")
	require.Equal(t, []string{"pinned", "canary-match-api", "api", "canary-match-default", "default"}, routeNames(vs, "http"))
	for name, js := range before {
		_, r := routeNamed(t, vs, "http", name)
		assert.Equal(t, js, toJSON(t, r), "weight changed the match route %s", name)
	}
	for _, managed := range []string{"api", "default"} {
		i, _ := routeNamed(t, vs, "http", managed)
		assert.Equal(t, map[string]int64{"v1": 80, "v2": 20}, weights(t, vs, "http", i), "managed route %s", managed)
	}
	assert.Equal(t, 20, stateOf(t, vs, "reviews").Weight)

	// Other testers: the rules are replaced, the split stays.
	out := c.mustCanary(t, "route", "reviews", "-n", ns, "--header", "x-user~^(alice|bob)$")
	assert.NotRegexp(t, `reviews :`, out, "the summary line of route names no verb")
	vs = c.get(t, vsV1, ns, "reviews")
	require.Equal(t, []string{"pinned", "canary-match-api", "api", "canary-match-default", "default"}, routeNames(vs, "http"))
	for _, managed := range []string{"api", "default"} {
		i, _ := routeNamed(t, vs, "http", managed)
		assert.Equal(t, map[string]int64{"v1": 80, "v2": 20}, weights(t, vs, "http", i), "route changed the split of %s", managed)
		_, m := routeNamed(t, vs, "http", "canary-match-"+managed)
		assert.Equal(t, map[string]int64{"v2": 100}, weights(t, vs, "http", i-1))
		originalMatch, _ := routeOf(t, vs0, "http", managed)["match"].([]interface{})
		gotMatch, _ := m["match"].([]interface{})
		if len(originalMatch) == 0 {
			originalMatch = []interface{}{map[string]interface{}{}}
		}
		require.Len(t, gotMatch, len(originalMatch), "match route before %s", managed)
		for k, raw := range gotMatch {
			entry := raw.(map[string]interface{})
			headers, _ := entry["headers"].(map[string]interface{})
			assert.Equal(t, map[string]interface{}{"x-user": map[string]interface{}{"regex": "^(alice|bob)$"}}, headers,
				"match route before %s, entry %d: only the new rule", managed, k)
			delete(entry, "headers")
			assert.Equal(t, originalMatch[k], entry, "match route before %s, entry %d: the route's own conditions", managed, k)
		}
	}
	rows = c.statusTable(t, "-n", ns)
	require.Len(t, rows, 1)
	assert.Equal(t, "header x-user~^(alice|bob)$", rows[0]["ROUTING"])
	requireSecondRunUnchanged(t, c, ns, "route", "reviews", "-n", ns, "--header", "x-user~^(alice|bob)$")

	// No rules: the match routes go, the split stays.
	c.mustCanary(t, "route", "reviews", "-n", ns, "--clear-matches")
	vs = c.get(t, vsV1, ns, "reviews")
	require.Equal(t, []string{"pinned", "api", "default"}, routeNames(vs, "http"))
	assert.Equal(t, map[string]int64{"v1": 80, "v2": 20}, weights(t, vs, "http", 1))
	assert.Equal(t, map[string]int64{"v1": 80, "v2": 20}, weights(t, vs, "http", 2))
	rows = c.statusTable(t, "-n", ns)
	require.Len(t, rows, 1)
	assert.Equal(t, "-", rows[0]["ROUTING"])

	// Rules again, then abort: the adopted objects get their exact pre-start specs.
	c.mustCanary(t, "route", "reviews", "-n", ns, "--header", "x-tester=yes", "--cookie", "beta=on")
	require.Len(t, routeNames(c.get(t, vsV1, ns, "reviews"), "http"), 5)
	c.mustCanary(t, "abort", "reviews", "-n", ns)
	vs = c.get(t, vsV1, ns, "reviews")
	dr := c.get(t, drV1, ns, "reviews")
	assert.Equal(t, toJSON(t, spec(vs0)), toJSON(t, spec(vs)), "abort must restore the VirtualService's pre-start spec")
	assert.Equal(t, spec(vs0), spec(vs))
	assert.Equal(t, spec(dr0), spec(dr), "abort must restore the DestinationRule's pre-start spec")
	requireSameForeignMeta(t, vs0, vs)
	assert.Equal(t, "Aborted", stateOf(t, vs, "reviews").Phase)
}

// routeOf is a copy of the route of kind named name.
func routeOf(t *testing.T, vs *unstructured.Unstructured, kind, name string) map[string]interface{} {
	t.Helper()
	_, r := routeNamed(t, vs, kind, name)
	return r
}

// requireMatchANDsRules checks the match of the route added before managed
// for the rules x-tester=yes and cookie beta=on: each entry of the managed
// route's match (ORed) gets both, ANDed with its own conditions, and the
// cookie regex matches the Cookie headers browsers send, exactly when beta=on
// is one of the cookies.
func requireMatchANDsRules(t *testing.T, managed, added map[string]interface{}) {
	t.Helper()
	want, _ := managed["match"].([]interface{})
	if len(want) == 0 {
		want = []interface{}{map[string]interface{}{}}
	}
	got, _ := added["match"].([]interface{})
	require.Len(t, got, len(want), "the match route has one entry per entry of %s's match", managed["name"])
	for k, raw := range got {
		entry := raw.(map[string]interface{})
		headers, _ := entry["headers"].(map[string]interface{})
		require.NotNil(t, headers, "entry %d has no header conditions", k)
		assert.Equal(t, map[string]interface{}{"exact": "yes"}, headers["x-tester"], "entry %d: header x-tester", k)
		cookie, _ := headers["cookie"].(map[string]interface{})
		require.NotNil(t, cookie, "entry %d has no cookie condition: %v", k, headers)
		require.Len(t, cookie, 1)
		expr, ok := cookie["regex"].(string)
		require.True(t, ok, "entry %d: the cookie is matched by regex (Istio has no cookie match): %v", k, cookie)
		re, err := regexp.Compile(expr) // Envoy uses RE2, as Go does
		require.NoError(t, err, "cookie regex %q", expr)
		// Envoy's safe_regex must match the whole value.
		full := regexp.MustCompile(`^(?:` + expr + `)$`)
		for value, match := range map[string]bool{
			"beta=on":                     true,
			"session=abc; beta=on":        true,
			"beta=on; session=abc":        true,
			"a=1;beta=on;b=2":             true,
			"beta=off":                    false,
			"xbeta=on":                    false,
			"beta=onion":                  false,
			"session=abc":                 false,
			"session=beta=on":             false,
			"session=abc; beta=off; x=on": false,
		} {
			assert.Equal(t, match, full.MatchString(value), "cookie regex %q on Cookie: %s", re, value)
		}
		// The managed route's own conditions are kept.
		delete(headers, "x-tester")
		delete(headers, "cookie")
		if len(headers) == 0 {
			delete(entry, "headers")
		}
		assert.Equal(t, want[k], entry, "entry %d: the route's own conditions", k)
	}
}
