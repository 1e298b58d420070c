//go:build e2e

package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// mirrorFixture: two managed HTTP routes (one with a port on its
// destination), a managed TCP route (Istio has no TCP mirror), and a route
// pinned to v2.
var mirrorFixture = yamlStream(
	virtualService("reviews",
		httpRoutes(jasonRoute, mirrorAPIRoute, defaultRoute("v1")),
		tcpRoutes(mirrorTCPRoute)),
	reviewsDestinationRule("v1", "v2"),
)

const mirrorAPIRoute = `
name: api
match:
- uri: {prefix: /api}
route:
- destination: {host: reviews.NAMESPACE.svc.cluster.local, subset: v1, port: {number: 9080}}
`

const mirrorTCPRoute = `
match: [{port: 9081}]
route:
- destination: {host: reviews, subset: v1, port: {number: 9081}}
`

// TestMirror: start --mirror shadows a share of the managed HTTP routes'
// traffic to the canary; weight --mirror 0 stops it; a mirror someone else
// set is refused, never overwritten.
func TestMirror(t *testing.T) {
	t.Parallel()
	c := shared

	t.Run("start and stop", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		c.kubectl(t, "", "patch", "service", "reviews", "-n", ns, "--type=json",
			"-p", `[{"op":"add","path":"/spec/ports/-","value":{"name":"tcp-admin","port":9081}}]`)
		c.create(t, ns, fillNamespace(mirrorFixture, ns))
		vs0 := c.get(t, vsV1, ns, "reviews")

		c.mustCanary(t, "start", "reviews", "-n", ns, "--mirror", "20")
		vs := c.get(t, vsV1, ns, "reviews")
		require.Equal(t, routeNames(vs0, "http"), routeNames(vs, "http"), "mirror adds no route")
		for _, name := range []string{"api", "default"} {
			i, r := routeNamed(t, vs, "http", name)
			assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, vs, "http", i), "route %s", name)
			mirror, ok := r["mirror"].(map[string]interface{})
			require.True(t, ok, "route %s has no mirror: %s", name, toJSON(t, r))
			// The mirror is the route's stable destination (host, port)
			// pointed at the canary subset.
			stable := destinationOf(t, routeOf(t, vs0, "http", name))
			stable["subset"] = "v2"
			assert.Equal(t, stable, mirror, "route %s mirrors to the canary subset", name)
			pct, found, _ := unstructured.NestedFieldNoCopy(r, "mirrorPercentage", "value")
			require.True(t, found, "route %s has no mirrorPercentage", name)
			assert.EqualValues(t, 20, pct, "route %s mirrorPercentage", name)
		}
		_, jason := routeNamed(t, vs, "http", "jason")
		assert.Equal(t, routeOf(t, vs0, "http", "jason"), jason, "the route pinned to v2 changed")
		assert.NotContains(t, route(t, vs, "tcp", 0), "mirror", "TCP routes cannot mirror")
		assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, vs, "tcp", 0))
		rows := c.statusTable(t, "-n", ns)
		require.Len(t, rows, 1)
		assert.Equal(t, "mirror 20%", rows[0]["ROUTING"])
		requireSecondRunUnchanged(t, c, ns, "start", "reviews", "-n", ns, "--mirror", "20")

		// weight without --mirror keeps it; with --mirror changes it.
		c.mustCanary(t, "weight", "reviews", "20", "-n", ns)
		vs = c.get(t, vsV1, ns, "reviews")
		for _, name := range []string{"api", "default"} {
			_, r := routeNamed(t, vs, "http", name)
			pct, _, _ := unstructured.NestedFieldNoCopy(r, "mirrorPercentage", "value")
			assert.EqualValues(t, 20, pct, "weight without --mirror changed the mirror of %s", name)
		}

		c.mustCanary(t, "weight", "reviews", "30", "--mirror", "0", "-n", ns)
		vs = c.get(t, vsV1, ns, "reviews")
		for _, name := range []string{"api", "default"} {
			i, r := routeNamed(t, vs, "http", name)
			assert.Equal(t, map[string]int64{"v1": 70, "v2": 30}, weights(t, vs, "http", i), "route %s", name)
			assert.NotContains(t, r, "mirror", "route %s still mirrors", name)
			assert.NotContains(t, r, "mirrorPercentage", "route %s still has mirrorPercentage", name)
			// Everything but the destinations is as before the canary.
			original := routeOf(t, vs0, "http", name)
			delete(r, "route")
			delete(original, "route")
			assert.Equal(t, original, r, "route %s", name)
		}
		rows = c.statusTable(t, "-n", ns)
		require.Len(t, rows, 1)
		assert.Equal(t, "-", rows[0]["ROUTING"])
		assert.Equal(t, 30, stateOf(t, vs, "reviews").Weight)
	})

	t.Run("a mirror set by someone else", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		othersMirror := defaultRoute("v1") + `
mirror: {host: shadow-recorder, port: {number: 8080}}
mirrorPercentage: {value: 5}
`
		c.create(t, ns, yamlStream(virtualService("reviews", httpRoutes(othersMirror)), reviewsDestinationRule("v1")))
		vs0 := c.get(t, vsV1, ns, "reviews")
		before := c.versionsOf(t, ns)

		r := c.failCanary(t, "start", "reviews", "-n", ns, "--mirror", "10")
		assert.Contains(t, r.stderr, "already mirrors")
		assert.Contains(t, r.stderr, "shadow-recorder")
		assert.Contains(t, r.stderr, `"default"`, "the error names the route")
		assert.Contains(t, r.stderr, "reviews", "the error names the VirtualService")
		assert.Empty(t, r.stdout)
		assert.Equal(t, before, c.versionsOf(t, ns), "a refused start wrote")

		// Without --mirror the canary runs and the other mirror stays as it was.
		c.mustCanary(t, "start", "reviews", "-n", ns)
		vs := c.get(t, vsV1, ns, "reviews")
		assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, vs, "http", 0))
		for _, field := range []string{"mirror", "mirrorPercentage"} {
			assert.Equal(t, route(t, vs0, "http", 0)[field], route(t, vs, "http", 0)[field], "%s set by someone else changed", field)
		}
		// Asking for a mirror later is refused the same way, and writes nothing.
		before = c.versionsOf(t, ns)
		r = c.failCanary(t, "weight", "reviews", "20", "--mirror", "10", "-n", ns)
		assert.Contains(t, r.stderr, "already mirrors")
		assert.Equal(t, before, c.versionsOf(t, ns), "a refused weight wrote")
		// --mirror 0 leaves a mirror it did not set alone.
		c.mustCanary(t, "weight", "reviews", "20", "--mirror", "0", "-n", ns)
		vs = c.get(t, vsV1, ns, "reviews")
		assert.Equal(t, map[string]int64{"v1": 80, "v2": 20}, weights(t, vs, "http", 0))
		for _, field := range []string{"mirror", "mirrorPercentage"} {
			assert.Equal(t, route(t, vs0, "http", 0)[field], route(t, vs, "http", 0)[field], "--mirror 0 removed the %s someone else set", field)
		}
		c.mustCanary(t, "abort", "reviews", "-n", ns)
		assert.Equal(t, spec(vs0), spec(c.get(t, vsV1, ns, "reviews")), "abort must restore the pre-start spec")
	})
}

// destinationOf is a copy of the destination of a route's only entry.
func destinationOf(t *testing.T, r map[string]interface{}) map[string]interface{} {
	t.Helper()
	dests, _ := r["route"].([]interface{})
	require.Len(t, dests, 1, "route %v", r["name"])
	d, _, _ := unstructured.NestedMap(dests[0].(map[string]interface{}), "destination")
	require.NotNil(t, d)
	return d
}
