//go:build e2e

package e2e

import (
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// followCanary sends reviews 100 requests a second, split between stable
// v1 and canary as the live VirtualService weighs them, as a mesh would.
func followCanary(t *testing.T, c *cluster, e *istioExporter, ns, canary string) {
	t.Helper()
	apply := func(weight int64) {
		e.set(workloadTraffic{Namespace: ns, Service: "reviews", Version: "v1", Workload: "reviews-v1", RPS: float64(100 - weight), LatencyMs: 20})
		e.set(workloadTraffic{Namespace: ns, Service: "reviews", Version: canary, Workload: "reviews-" + canary, RPS: float64(weight), LatencyMs: 20})
	}
	apply(0)
	everyTenthOfASecond(t, func(ctx context.Context) {
		if vs, err := c.dyn.Resource(vsV1).Namespace(ns).Get(ctx, "reviews", metav1.GetOptions{}); err == nil {
			apply(max(weightOf(vs.Object, canary), 0))
		}
	})
}

// runSteps are the steps a run printed: "step 4/5 50%" for a plan line
// ("step 4/5: canary at 50% ...") or an analysis ("step 4/5 (50%): pass").
func runSteps(out string) []string {
	var steps []string
	for _, m := range regexp.MustCompile(`(?m)^step (\d+/\d+)(?:: canary at | \()(\d+)%`).FindAllStringSubmatch(out, -1) {
		if s := "step " + m[1] + " " + m[2] + "%"; len(steps) == 0 || steps[len(steps)-1] != s {
			steps = append(steps, s)
		}
	}
	return steps
}

// planBegins is the step a dry run says the run begins with.
func planBegins(t *testing.T, out, ns string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^would run the canary of ` + regexp.QuoteMeta(ns) + `/reviews: (.*)$`).FindStringSubmatch(out)
	require.NotNil(t, m, "the plan does not say how the run begins:\n%s", out)
	return m[1]
}

// run is a first-class start: it takes start's version flags (Bookinfo's
// three versions need --canary), its dry run prints the steps the real run
// then takes, and a Prometheus it cannot query stops it before any write.
func TestRunIsAFirstClassStart(t *testing.T) {
	t.Parallel()
	c := shared
	exporter := startIstioExporter(t)
	prom := startPrometheus(t, exporter.URL)
	flags := []string{"--interval", "10s", "--min-requests", "20", "--prometheus-url", prom}

	t.Run("three versions: --canary picks the canary, without it nothing is written", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2", "v3")
		c.create(t, ns, yamlStream(virtualService("reviews", httpRoutes(defaultRoute("v1"))), reviewsDestinationRule("v1", "v2", "v3")))
		followCanary(t, c, exporter, ns, "v3")
		waitForSeries(t, prom, ns)
		before := c.versionsOf(t, ns)
		args := append([]string{"run", "reviews", "-n", ns, "--steps", "20,100"}, flags...)

		for _, dryRun := range []string{"--dry-run", "--dry-run=server", "--dry-run=none"} {
			r := c.failCanary(t, append(args, dryRun)...)
			assert.Equal(t, 1, exitCode(r), "%s", r)
			assert.Contains(t, r.stderr, "several versions besides stable version=v1: v2, v3; pass --canary with one of them", dryRun)
			assert.NotContains(t, r.stdout, "starting the canary", "a refused run says nothing of starting (%s)", dryRun)
			assert.Equal(t, before, c.versionsOf(t, ns), "a refused run %s wrote", dryRun)
		}

		plan := c.mustCanary(t, append(args, "--canary", "v3", "--dry-run")...)
		assert.Equal(t, before, c.versionsOf(t, ns), "the dry run wrote")
		r := c.canary(t, nil, append(args, "--canary", "v3")...)
		require.NoError(t, r.err, "%s", r)
		assert.Equal(t, "starting the canary at step 1/2 (20%)", planBegins(t, plan, ns))
		assert.Contains(t, r.stdout, "starting the canary at step 1/2 (20%)\n")
		assert.Equal(t, []string{"step 1/2 20%", "step 2/2 100%"}, runSteps(plan))
		assert.Equal(t, runSteps(plan), runSteps(r.stdout), "the real run took other steps than its dry run printed:\n%s\n%s", plan, r.stdout)
		assert.Contains(t, r.stdout, "canary "+ns+"/reviews promoted: version=v3 is stable")
		st := c.status(t, ns, "reviews")
		assert.Equal(t, "v3", st.Stable)
		assert.Equal(t, "Promoted", st.Phase)
	})

	t.Run("a canary at 30%: the dry run's plan is the real run's steps", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		followCanary(t, c, exporter, ns, "v2")
		c.mustCanary(t, "start", "reviews", "-n", ns, "--weight", "30")
		waitForSeries(t, prom, ns)
		before := c.versionsOf(t, ns)
		args := append([]string{"run", "reviews", "-n", ns, "--steps", "5,10,25,50,100"}, flags...)

		plan := c.mustCanary(t, append(args, "--dry-run")...)
		assert.Equal(t, before, c.versionsOf(t, ns), "the dry run wrote")
		r := c.canary(t, nil, args...)
		require.NoError(t, r.err, "%s", r)
		begins := planBegins(t, plan, ns)
		assert.Equal(t, "taking over the running canary (30%) at step 4/5 (50%)", begins)
		assert.Contains(t, r.stdout, begins+"\n", "the real run begins as its dry run said")
		assert.Equal(t, []string{"step 4/5 50%", "step 5/5 100%"}, runSteps(plan))
		assert.Equal(t, runSteps(plan), runSteps(r.stdout), "the real run took other steps than its dry run printed:\n%s\n%s", plan, r.stdout)
		assert.Contains(t, r.stdout, "promoted")
	})

	t.Run("a Prometheus it cannot query stops the run before any write", func(t *testing.T) {
		t.Parallel()
		fresh := c.newNamespace(t)
		c.deployVersions(t, fresh, "reviews", "v1", "v2")
		running := c.newNamespace(t)
		c.deployVersions(t, running, "reviews", "v1", "v2")
		c.mustCanary(t, "start", "reviews", "-n", running, "--weight", "30")
		for _, ns := range []string{fresh, running} {
			before := c.versionsOf(t, ns)
			for name, where := range map[string]struct {
				args []string
				says string
			}{
				"nothing listens": {[]string{"--prometheus-url", "http://127.0.0.1:1"},
					"Prometheus at http://127.0.0.1:1 cannot be reached (dial tcp 127.0.0.1:1: connect: connection refused); check --prometheus-url"},
				"no Prometheus Service": {nil,
					"Prometheus at service istio-system/prometheus:9090 (through the API server's proxy) does not exist: the API server has no service istio-system/prometheus (HTTP 404 for /api/v1/query: services \"prometheus\" not found); give the namespace and name of Prometheus's Service with --prometheus-namespace and --prometheus-service"},
			} {
				for _, dryRun := range []string{"--dry-run=none", "--dry-run", "--dry-run=server"} {
					r := c.failCanary(t, append([]string{"run", "reviews", "-n", ns, "--interval", "10s", dryRun}, where.args...)...)
					assert.Equal(t, 1, exitCode(r), "%s: %s", name, r)
					assert.Contains(t, r.stderr, where.says, name)
					assert.Contains(t, r.stderr, "Nothing was written", name)
					assert.NotContains(t, r.stdout, "canary "+ns+"/reviews", "%s: a refused run reports no change", name)
				}
			}
			assert.Equal(t, before, c.versionsOf(t, ns), "a run that could not query Prometheus wrote")
		}
		st := c.status(t, running, "reviews")
		assert.Equal(t, 30, st.Weight, "the running canary stays where it was")
		assert.NotContains(t, c.get(t, vsV1, running, "reviews").GetAnnotations()["kubectl-canary.io/reviews"], `"run"`, "no run state was recorded")
	})
}
