//go:build e2e

package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// allExtras are the start flags that add every routing kind at once.
var allExtras = []string{"--header", "x-tester=yes", "--cookie", "beta=on", "--mirror", "15", "--sticky"}

// TestPromoteAndAbortRemoveOnlyWhatTheyAdded: a canary with header and
// cookie rules, a mirror and stickiness on adoptedFixture (foreign routes,
// policies, labels, a TCP route, another host). Promote, abort, and abort
// after someone else edited the VirtualService each remove what the canary
// added and leave everything else as it was.
func TestPromoteAndAbortRemoveOnlyWhatTheyAdded(t *testing.T) {
	t.Parallel()
	c := shared

	// startAll starts the canary with every extra on adoptedFixture in a new
	// namespace and checks that the extras are there.
	startAll := func(t *testing.T) (ns string, vs0, dr0 *unstructured.Unstructured, ratingsRV string) {
		t.Helper()
		ns = c.newNamespace(t)
		setUpAdopted(t, c, ns)
		vs0 = c.get(t, vsV1, ns, "reviews")
		dr0 = c.get(t, drV1, ns, "reviews")
		ratingsRV = c.get(t, vsV1, ns, "ratings").GetResourceVersion()
		c.mustCanary(t, append([]string{"start", "reviews", "-n", ns}, allExtras...)...)
		vs := c.get(t, vsV1, ns, "reviews")
		require.Equal(t, []string{
			"testers",
			"canary-match-slow-path", "canary-sticky-slow-path", "slow-path",
			"canary-match-default", "canary-sticky-default", "default",
		}, routeNames(vs, "http"))
		for _, name := range []string{"slow-path", "default"} {
			i, r := routeNamed(t, vs, "http", name)
			assert.Contains(t, r, "mirror", "route %s", name)
			assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, vs, "http", i), "route %s", name)
			_, found, _ := unstructured.NestedFieldNoCopy(destinationEntry(t, vs, routeRef{"http", i}, "v2"), "headers", "response", "add", "set-cookie")
			assert.True(t, found, "route %s: the canary sets no sticky cookie", name)
		}
		assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, vs, "tcp", 0))
		rows := c.statusTable(t, "-n", ns)
		require.Len(t, rows, 1)
		assert.Equal(t, "header x-tester=yes, cookie beta=on, sticky, mirror 15%", rows[0]["ROUTING"])
		return ns, vs0, dr0, ratingsRV
	}

	t.Run("promote", func(t *testing.T) {
		t.Parallel()
		ns, vs0, dr0, ratingsRV := startAll(t)
		c.mustCanary(t, "weight", "reviews", "60", "-n", ns)
		c.mustCanary(t, "promote", "reviews", "-n", ns)
		vs := c.get(t, vsV1, ns, "reviews")
		dr := c.get(t, drV1, ns, "reviews")

		require.Equal(t, routeNames(vs0, "http"), routeNames(vs, "http"), "promote must remove the routes start added")
		assert.Equal(t, toJSON(t, withoutDestinations(spec(vs0), adoptedManaged)), toJSON(t, withoutDestinations(spec(vs), adoptedManaged)),
			"promote changed VirtualService fields beyond the managed routes' destinations")
		for _, r := range adoptedManaged {
			// The one destination left is the original (port, headers) at v2.
			want := destinationEntry(t, vs0, r, "v1")
			want["destination"].(map[string]interface{})["subset"] = "v2"
			assert.Equal(t, toJSON(t, []interface{}{want}), toJSON(t, route(t, vs, r.kind, r.index)["route"]), "%s route #%d after promote", r.kind, r.index)
		}
		// The DestinationRule keeps everything and the canary's subset, now stable.
		drSpec, drSpec0 := spec(dr), spec(dr0)
		drSubsets, _ := drSpec["subsets"].([]interface{})
		require.Len(t, drSubsets, 3, "subsets %s", toJSON(t, drSubsets))
		assert.Equal(t, map[string]string{"version": "v2"}, subsets(dr)["v2"])
		drSpec["subsets"] = drSubsets[:2]
		assert.Equal(t, toJSON(t, drSpec0), toJSON(t, drSpec), "promote changed DestinationRule fields it does not own")
		requireSameForeignMeta(t, vs0, vs)
		requireSameForeignMeta(t, dr0, dr)
		assert.Equal(t, ratingsRV, c.get(t, vsV1, ns, "ratings").GetResourceVersion(), "the ratings VirtualService was written")
		rows := c.statusTable(t, "-n", ns)
		require.Len(t, rows, 1)
		assert.Equal(t, "Promoted", rows[0]["PHASE"])
		assert.Equal(t, "-", rows[0]["ROUTING"])
		requireSecondRunUnchanged(t, c, ns, "promote", "reviews", "-n", ns)
	})

	t.Run("abort", func(t *testing.T) {
		t.Parallel()
		ns, vs0, dr0, ratingsRV := startAll(t)
		c.mustCanary(t, "weight", "reviews", "40", "--mirror", "30", "-n", ns)
		c.mustCanary(t, "route", "reviews", "-n", ns, "--header", "x-user^qa-")
		c.mustCanary(t, "abort", "reviews", "-n", ns)
		vs := c.get(t, vsV1, ns, "reviews")
		dr := c.get(t, drV1, ns, "reviews")
		assert.Equal(t, toJSON(t, spec(vs0)), toJSON(t, spec(vs)), "abort must restore the VirtualService's pre-start spec")
		assert.Equal(t, spec(vs0), spec(vs))
		assert.Equal(t, toJSON(t, spec(dr0)), toJSON(t, spec(dr)), "abort must restore the DestinationRule's pre-start spec")
		requireSameForeignMeta(t, vs0, vs)
		requireSameForeignMeta(t, dr0, dr)
		assert.Equal(t, ratingsRV, c.get(t, vsV1, ns, "ratings").GetResourceVersion(), "the ratings VirtualService was written")
		requireSecondRunUnchanged(t, c, ns, "abort", "reviews", "-n", ns)
	})

	// Someone else edits the VirtualService while the canary runs: abort
	// cannot put back the pre-start spec, so it removes exactly what the
	// canary added, resets the weights and keeps the edit.
	t.Run("abort after another edit", func(t *testing.T) {
		t.Parallel()
		ns, vs0, _, _ := startAll(t)
		vs := c.get(t, vsV1, ns, "reviews")
		routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
		routes[0].(map[string]interface{})["timeout"] = "7s" // the testers route
		require.NoError(t, unstructured.SetNestedSlice(vs.Object, routes, "spec", "http"))
		annotations := vs.GetAnnotations()
		annotations["other.tool/edited"] = "yes"
		vs.SetAnnotations(annotations)
		_, err := c.dyn.Resource(vsV1).Namespace(ns).Update(context.Background(), vs, metav1.UpdateOptions{})
		require.NoError(t, err)

		r := c.canary(t, nil, "abort", "reviews", "-n", ns)
		require.NoError(t, r.err, "%s", r)
		assert.Contains(t, r.stderr, "Warning:", "abort must say that the pre-start spec is not restored")
		vs = c.get(t, vsV1, ns, "reviews")
		want := runtime.DeepCopyJSON(spec(vs0))
		want["http"].([]interface{})[0].(map[string]interface{})["timeout"] = "7s"
		assert.Equal(t, toJSON(t, want), toJSON(t, spec(vs)), "abort must remove what the canary added and keep the other edit")
		assert.Equal(t, "yes", vs.GetAnnotations()["other.tool/edited"])
		assert.Equal(t, "Aborted", stateOf(t, vs, "reviews").Phase)
	})
}
