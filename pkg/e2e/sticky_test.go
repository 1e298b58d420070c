//go:build e2e

package e2e

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// stickyFixture: the default route's destination sets a response header of
// its own, which the canary's Set-Cookie must join, not replace, and which
// promote must keep.
var stickyFixture = yamlStream(
	virtualService("reviews", httpRoutes(`
name: default
retries: {attempts: 2}
route:
- destination: {host: reviews, subset: v1}
  headers:
    response:
      set: {x-served-by: reviews}
`)),
	reviewsDestinationRule("v1"),
)

// TestSticky: start --sticky makes the canary's responses set a cookie and
// adds a route that sends requests carrying it to the canary, so a user who
// reached the canary stays there; promote removes both.
func TestSticky(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.create(t, ns, stickyFixture)
	vs0 := c.get(t, vsV1, ns, "reviews")

	c.mustCanary(t, "start", "reviews", "-n", ns, "--sticky")
	vs := c.get(t, vsV1, ns, "reviews")
	require.Equal(t, []string{"canary-sticky-default", "default"}, routeNames(vs, "http"), "the sticky route comes before the managed route")
	assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, vs, "http", 1))

	// The canary's destination adds the cookie to its responses; the stable
	// one does not, and both keep their own header.
	canary := destinationEntry(t, vs, routeRef{"http", 1}, "v2")
	setCookie, found, _ := unstructured.NestedString(canary, "headers", "response", "add", "set-cookie")
	require.True(t, found, "the canary destination sets no cookie: %s", toJSON(t, canary))
	cookie, err := http.ParseSetCookie(setCookie)
	require.NoError(t, err, "set-cookie %q", setCookie)
	assert.Equal(t, "kubectl-canary-reviews", cookie.Name)
	assert.Equal(t, "v2", cookie.Value)
	assert.Equal(t, "/", cookie.Path, "the cookie must hold for every path of the service")
	served, _, _ := unstructured.NestedString(canary, "headers", "response", "set", "x-served-by")
	assert.Equal(t, "reviews", served, "the canary destination lost the route's own response header")
	stable := destinationEntry(t, vs, routeRef{"http", 1}, "v1")
	assert.Equal(t, destinationEntry(t, vs0, routeRef{"http", 0}, "v1"), stable, "the stable destination changed")

	// The sticky route sends requests with that cookie, and only those, to the canary.
	sticky := route(t, vs, "http", 0)
	assert.Equal(t, map[string]int64{"v2": 100}, weights(t, vs, "http", 0))
	assert.Equal(t, sticky["retries"], route(t, vs0, "http", 0)["retries"], "the sticky route keeps the managed route's policies")
	stickyDest := destinationEntry(t, vs, routeRef{"http", 0}, "v2")
	_, found, _ = unstructured.NestedFieldNoCopy(stickyDest, "headers", "response", "add", "set-cookie")
	assert.False(t, found, "a client that already carries the cookie needs no new one")
	match, _ := sticky["match"].([]interface{})
	require.Len(t, match, 1, "sticky route match: %s", toJSON(t, sticky))
	expr, found, _ := unstructured.NestedString(match[0].(map[string]interface{}), "headers", "cookie", "regex")
	require.True(t, found, "the sticky route matches no cookie: %s", toJSON(t, sticky))
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	require.NoError(t, err)
	sent := cookie.Name + "=" + cookie.Value // what the browser sends back
	for value, want := range map[string]bool{
		sent:                         true,
		"session=1; " + sent:         true,
		sent + "; session=1":         true,
		"kubectl-canary-reviews=v1":  false,
		"kubectl-canary-reviews=v22": false,
		"kubectl-canary-ratings=v2":  false,
		"session=1":                  false,
		"x" + sent:                   false,
	} {
		assert.Equal(t, want, re.MatchString(value), "sticky route on Cookie: %s (regex %s)", value, expr)
	}

	rows := c.statusTable(t, "-n", ns)
	require.Len(t, rows, 1)
	assert.Equal(t, "sticky", rows[0]["ROUTING"])
	requireSecondRunUnchanged(t, c, ns, "start", "reviews", "-n", ns, "--sticky")

	// weight keeps both.
	stickyJSON := toJSON(t, sticky)
	c.mustCanary(t, "weight", "reviews", "50", "-n", ns)
	vs = c.get(t, vsV1, ns, "reviews")
	require.Equal(t, []string{"canary-sticky-default", "default"}, routeNames(vs, "http"))
	assert.Equal(t, stickyJSON, toJSON(t, route(t, vs, "http", 0)), "weight changed the sticky route")
	assert.Equal(t, map[string]int64{"v1": 50, "v2": 50}, weights(t, vs, "http", 1))
	got, _, _ := unstructured.NestedString(destinationEntry(t, vs, routeRef{"http", 1}, "v2"), "headers", "response", "add", "set-cookie")
	assert.Equal(t, setCookie, got, "weight changed the canary's cookie")

	// promote: one route, one destination (the canary), nothing we added.
	c.mustCanary(t, "promote", "reviews", "-n", ns)
	vs = c.get(t, vsV1, ns, "reviews")
	want := route(t, vs0, "http", 0)
	want["route"].([]interface{})[0].(map[string]interface{})["destination"].(map[string]interface{})["subset"] = "v2"
	require.Equal(t, []string{"default"}, routeNames(vs, "http"), "promote left the sticky route")
	assert.Equal(t, toJSON(t, want), toJSON(t, route(t, vs, "http", 0)), "promote: the managed route is the original at v2, without the cookie")
	assert.Equal(t, map[string]int64{"v2": 100}, weights(t, vs, "http", 0))
	assert.Equal(t, toJSON(t, withoutDestinations(spec(vs0), []routeRef{{"http", 0}})), toJSON(t, withoutDestinations(spec(vs), []routeRef{{"http", 0}})))
	rows = c.statusTable(t, "-n", ns)
	require.Len(t, rows, 1)
	assert.Equal(t, "-", rows[0]["ROUTING"])
}
