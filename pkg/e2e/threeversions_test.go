//go:build e2e

package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestThreeVersions: with two candidates start refuses to guess and lists
// them; --canary picks one; the route pinned to v2 is never touched.
func TestThreeVersions(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	// v1 serves everyone, jason is pinned to v2, v3 is new.
	c.deployVersions(t, ns, "reviews", "v1", "v2", "v3")
	c.create(t, ns, bookinfoReviews())
	vs0 := c.get(t, vsV1, ns, "reviews")
	jason := toJSON(t, route(t, vs0, "http", 0))
	before := c.versionsOf(t, ns)

	r := c.failCanary(t, "start", "reviews", "-n", ns)
	assert.Contains(t, r.stderr, "v2")
	assert.Contains(t, r.stderr, "v3")
	assert.Contains(t, r.stderr, "--canary")
	assert.Empty(t, r.stdout)
	assert.Equal(t, before, c.versionsOf(t, ns), "a failed start wrote")

	c.mustCanary(t, "start", "reviews", "--canary", "v3", "-n", ns)
	vs := c.get(t, vsV1, ns, "reviews")
	assert.Equal(t, map[string]int64{"v1": 90, "v3": 10}, weights(t, vs, "http", 1))
	assert.Equal(t, jason, toJSON(t, route(t, vs, "http", 0)), "the route pinned to v2 changed")
	assert.Equal(t, map[string]map[string]string{"v1": {"version": "v1"}, "v2": {"version": "v2"}, "v3": {"version": "v3"}},
		subsets(c.get(t, drV1, ns, "reviews")))
	st := stateOf(t, vs, "reviews")
	assert.Equal(t, "v1", st.Stable)
	assert.Equal(t, "v3", st.Canary)

	c.mustCanary(t, "weight", "reviews", "40", "-n", ns)
	vs = c.get(t, vsV1, ns, "reviews")
	assert.Equal(t, map[string]int64{"v1": 60, "v3": 40}, weights(t, vs, "http", 1))
	assert.Equal(t, jason, toJSON(t, route(t, vs, "http", 0)), "the route pinned to v2 changed")

	c.mustCanary(t, "promote", "reviews", "-n", ns)
	vs = c.get(t, vsV1, ns, "reviews")
	assert.Equal(t, map[string]int64{"v3": 100}, weights(t, vs, "http", 1))
	assert.Equal(t, jason, toJSON(t, route(t, vs, "http", 0)), "the route pinned to v2 changed")
	// v2 is still routed to (jason), so its subset must stay.
	assert.Contains(t, subsets(c.get(t, drV1, ns, "reviews")), "v2")
	js := c.status(t, ns, "reviews")
	assert.Equal(t, "v3", js.Stable)
	assert.Equal(t, "Promoted", js.Phase)

	// The next canary starts from v3; v1 and v2 are both candidates again.
	r = c.failCanary(t, "start", "reviews", "-n", ns)
	require.Contains(t, r.stderr, "--canary")
	assert.Contains(t, r.stderr, "v1")
	assert.Contains(t, r.stderr, "v2")
}
