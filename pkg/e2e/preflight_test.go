//go:build e2e

package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPreflightRefusesUnlessForced: start, weight and promote refuse to send
// traffic to a canary with too few available replicas, or to touch routing
// another tool manages, and write nothing; --force goes ahead with a
// warning; a dark launch with no traffic is allowed; abort always works.
func TestPreflightRefusesUnlessForced(t *testing.T) {
	t.Parallel()
	c := shared

	t.Run("canary readiness", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		c.setAvailable(t, ns, "reviews-v2", 0)

		refused := func(args ...string) result {
			t.Helper()
			before := c.versionsOf(t, ns)
			r := c.failCanary(t, append(args, "-n", ns)...)
			assert.Contains(t, r.stderr, "preflight", "%v", args)
			assert.Contains(t, r.stderr, "Deployment "+ns+"/reviews-v2", "%v: the refusal names the canary's Deployment", args)
			assert.Contains(t, r.stderr, "--force", "%v: the refusal says how to go ahead", args)
			assert.Contains(t, r.stderr, "nothing was changed", "%v", args)
			assert.Equal(t, before, c.versionsOf(t, ns), "%v was refused but wrote", args)
			return r
		}

		refused("start", "reviews")
		refused("start", "reviews", "--weight", "5")
		// Testers would reach the canary: not a dark launch.
		refused("start", "reviews", "--weight", "0", "--header", "x-tester=yes")
		refused("start", "reviews", "--weight", "0", "--mirror", "10")
		assert.Empty(t, c.versionsOf(t, ns))

		// No traffic at all reaches the canary: allowed.
		r := c.canary(t, nil, "start", "reviews", "--weight", "0", "-n", ns)
		require.NoError(t, r.err, "%s", r)
		vs := c.get(t, vsV1, ns, "reviews")
		assert.Equal(t, map[string]int64{"v1": 100, "v2": 0}, weights(t, vs, "http", 0))
		assert.Equal(t, "Progressing", stateOf(t, vs, "reviews").Phase)

		refused("weight", "reviews", "10")
		refused("route", "reviews", "--header", "x-tester=yes")
		refused("promote", "reviews")

		// --force: written, with the finding as a warning.
		r = c.canary(t, nil, "weight", "reviews", "10", "--force", "-n", ns)
		require.NoError(t, r.err, "%s", r)
		assert.Contains(t, r.stderr, "Warning:")
		assert.Contains(t, r.stderr, "reviews-v2")
		assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, c.get(t, vsV1, ns, "reviews"), "http", 0))

		// --min-available: 2 available replicas are not 3.
		c.setAvailable(t, ns, "reviews-v2", 2)
		r = refused("weight", "reviews", "20", "--min-available", "3")
		assert.Contains(t, r.stderr, "fewer than 3", "the refusal says how many replicas were asked for")
		c.mustCanary(t, "weight", "reviews", "20", "--min-available", "2", "-n", ns)
		assert.Equal(t, map[string]int64{"v1": 80, "v2": 20}, weights(t, c.get(t, vsV1, ns, "reviews"), "http", 0))

		// abort is the way back: never refused, even with the canary down.
		c.setAvailable(t, ns, "reviews-v2", 0)
		c.mustCanary(t, "abort", "reviews", "-n", ns)
		vs = c.get(t, vsV1, ns, "reviews")
		assert.Equal(t, map[string]int64{"v1": 100}, weights(t, vs, "http", 0))
		assert.Equal(t, "Aborted", stateOf(t, vs, "reviews").Phase)
	})

	t.Run("owned by Argo Rollouts", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		c.create(t, ns, yamlStream(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  annotations: {argo-rollouts.argoproj.io/managed-by-rollouts: reviews-rollout}
spec:
  hosts: [reviews]
  http:
  - name: primary
    route:
    - destination: {host: reviews, subset: v1}
`, reviewsDestinationRule("v1")))
		before := c.versionsOf(t, ns)
		r := c.failCanary(t, "start", "reviews", "-n", ns)
		assert.Contains(t, r.stderr, "Argo Rollouts")
		assert.Contains(t, r.stderr, "VirtualService "+ns+"/reviews")
		assert.Contains(t, r.stderr, "--force")
		assert.Equal(t, before, c.versionsOf(t, ns), "a refused start wrote")
		// check says the same.
		r = c.failCanary(t, "check", "reviews", "-n", ns)
		assert.Contains(t, r.stdout, "Argo Rollouts")

		r = c.canary(t, nil, "start", "reviews", "--force", "-n", ns)
		require.NoError(t, r.err, "%s", r)
		assert.Contains(t, r.stderr, "Warning:")
		assert.Contains(t, r.stderr, "Argo Rollouts")
		vs := c.get(t, vsV1, ns, "reviews")
		assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, vs, "http", 0))
		assert.Equal(t, "reviews-rollout", vs.GetAnnotations()["argo-rollouts.argoproj.io/managed-by-rollouts"], "the other tool's annotation was dropped")
		// Each later command asks again.
		before = c.versionsOf(t, ns)
		c.failCanary(t, "weight", "reviews", "30", "-n", ns)
		assert.Equal(t, before, c.versionsOf(t, ns), "a refused weight wrote")
		c.mustCanary(t, "abort", "reviews", "-n", ns)
	})
}
