//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// versionHealth is how a version answers: the share of 503s and latency.
type versionHealth struct{ ErrorShare, LatencyMs float64 }

// splitClient is one client of the Service. A client that follows the
// weight has a sidecar with the canary's VirtualService; any other reaches
// the pods through kube-proxy, one half to each version (both run 2 pods).
type splitClient struct {
	Source, SourceNamespace string
	RPS                     float64
	OutsideMesh             bool
	FollowsWeight           bool
}

// meshTraffic plays a mesh in front of reviews: its clients' requests are
// split between v1 and v2 as the live VirtualService (read every 100 ms)
// or kube-proxy would split them, and the exporter counts them.
type meshTraffic struct {
	mu       sync.Mutex
	exporter *istioExporter
	ns       string
	clients  []splitClient
	health   map[string]versionHealth
}

func sendTraffic(t *testing.T, c *cluster, e *istioExporter, ns string, clients ...splitClient) *meshTraffic {
	t.Helper()
	m := &meshTraffic{exporter: e, ns: ns, clients: clients, health: map[string]versionHealth{"v1": {LatencyMs: 20}, "v2": {LatencyMs: 20}}}
	m.apply(0)
	everyTenthOfASecond(t, func(ctx context.Context) {
		if vs, err := c.dyn.Resource(vsV1).Namespace(ns).Get(ctx, "reviews", metav1.GetOptions{}); err == nil {
			m.apply(max(weightOf(vs.Object, "v2"), 0))
		}
	})
	return m
}

// setHealth changes how a version answers from now on.
func (m *meshTraffic) setHealth(version string, h versionHealth) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.health[version] = h
}

func (m *meshTraffic) apply(canaryWeight int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, cl := range m.clients {
		canaryShare := 0.5
		if cl.FollowsWeight {
			canaryShare = float64(canaryWeight) / 100
		}
		for version, share := range map[string]float64{"v1": 1 - canaryShare, "v2": canaryShare} {
			h := m.health[version]
			m.exporter.set(workloadTraffic{Namespace: m.ns, Service: "reviews", Version: version, Workload: "reviews-" + version,
				RPS: cl.RPS * share, ErrorShare: h.ErrorShare, LatencyMs: h.LatencyMs,
				Source: cl.Source, SourceNamespace: cl.SourceNamespace, OutsideMesh: cl.OutsideMesh})
		}
	}
}

// The clients of the split tests.
var (
	meshClient = func(rps float64) splitClient {
		return splitClient{Source: "productpage-v1", RPS: rps, FollowsWeight: true}
	}
	outsideClient = func(rps float64) splitClient { return splitClient{RPS: rps, OutsideMesh: true} }
)

type splitJSON struct {
	Verdict             string
	Reason              string
	Requests            float64
	CanaryShare         *float64
	ExpectedCanaryShare float64
	Causes              []struct{ Cause, Says, Fix string }
}

// analyze compares the share of requests each version really answered with
// the weight, in a real Prometheus, explains a mismatch and holds the
// verdict on it; run holds on it too, and both go on when told to.
func TestTrafficSplitAgainstRealPrometheus(t *testing.T) {
	t.Parallel()
	c := shared
	exporter := startIstioExporter(t)
	prom := startPrometheus(t, exporter.URL)
	flags := []string{"--prometheus-url", prom, "--window", "10s", "--min-requests", "20"}
	started := func(t *testing.T, setup ...string) string {
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		for _, yaml := range setup {
			c.create(t, ns, yaml)
		}
		c.mustCanary(t, "start", "reviews", "-n", ns, "--weight", "10")
		return ns
	}
	splitIs := func(verdict string) func(analyzeJSON) bool {
		return func(out analyzeJSON) bool { return out.Split != nil && out.Split.Verdict == verdict }
	}

	t.Run("a share that matches the weight passes", func(t *testing.T) {
		t.Parallel()
		ns := started(t)
		sendTraffic(t, c, exporter, ns, meshClient(100))
		r, out := analyzeUntilOutput(t, c, splitIs("matches"), append([]string{"reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 0, exitCode(r), "%s", r)
		assert.Equal(t, "pass", out.Decision.Verdict)
		require.NotNil(t, out.Split.CanaryShare)
		assert.InDelta(t, 0.10, *out.Split.CanaryShare, 0.02)
		assert.InDelta(t, 0.10, out.Split.ExpectedCanaryShare, 1e-9)
		assert.Empty(t, out.Split.Causes)

		table := c.mustCanary(t, append([]string{"analyze", "reviews", "-n", ns}, flags...)...)
		assert.Regexp(t, `VERSION +WEIGHT +SHARE +REQUESTS`, table)
		assert.Regexp(t, `canary v2 +10% +(9|10|11)\.\d%`, table)
		assert.Contains(t, table, "traffic split: matches: the canary answered")
	})

	t.Run("clients outside the mesh skew the share", func(t *testing.T) {
		t.Parallel()
		ns := started(t)
		// A quarter of the requests come from clients without a sidecar,
		// spread evenly over both versions' pods: the canary gets 20%.
		sendTraffic(t, c, exporter, ns, meshClient(75), outsideClient(25))
		r, out := analyzeUntilOutput(t, c, splitIs("mismatch"), append([]string{"reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 2, exitCode(r), "a mismatch is inconclusive, never pass:\n%s", r)
		assert.Equal(t, "inconclusive", out.Decision.Verdict)
		assert.Equal(t, "traffic-split", out.Decision.Metric)
		require.NotNil(t, out.Split.CanaryShare)
		assert.InDelta(t, 0.20, *out.Split.CanaryShare, 0.03)
		require.NotEmpty(t, out.Split.Causes)
		cause := out.Split.Causes[0]
		assert.Equal(t, "outside-mesh", cause.Cause)
		assert.Contains(t, cause.Says, "reached the pods without passing a mesh proxy (clients without a sidecar (source_workload \"unknown\")")
		assert.Contains(t, cause.Says, "the canary has 2 of 4 ready pods")
		assert.Regexp(t, `without them the canary's share is (9\.\d|10\.\d)%`, cause.Says)
		assert.Contains(t, cause.Fix, "istio-injection=enabled")

		table := c.canary(t, nil, append([]string{"analyze", "reviews", "-n", ns}, flags...)...)
		assert.Contains(t, table.stdout, "traffic split: mismatch: the canary answered")
		assert.Contains(t, table.stdout, "  cause: ")
		assert.Contains(t, table.stdout, "  fix: add the sidecar to these clients")
		assert.Contains(t, table.stderr, "inconclusive: traffic split does not match the weight")

		// Told to, analyze judges the canary anyway, and still reports the split.
		r, out = analyzeUntil(t, c, "pass", append([]string{"reviews", "-n", ns, "--ignore-split-mismatch"}, flags...)...)
		assert.Equal(t, 0, exitCode(r), "%s", r)
		assert.Equal(t, "mismatch", out.Split.Verdict)

		// status --observed shows the share beside the weight.
		rows := c.statusTable(t, "reviews", "-n", ns, "--observed", "--window", "10s", "--prometheus-url", prom)
		require.Len(t, rows, 1)
		assert.Regexp(t, `^(19|2\d)\.\d% \(mismatch\)$`, rows[0]["OBSERVED"])
		var st struct{ Observed *splitJSON }
		require.NoError(t, json.Unmarshal([]byte(c.mustCanary(t, "status", "reviews", "-n", ns, "--observed", "--window", "10s", "--prometheus-url", prom, "-o", "json")), &st))
		require.NotNil(t, st.Observed)
		assert.Equal(t, "mismatch", st.Observed.Verdict)
		assert.Equal(t, "outside-mesh", st.Observed.Causes[0].Cause)
		// Without --observed, no Prometheus is asked and no column is shown.
		assert.NotContains(t, c.statusTable(t, "reviews", "-n", ns)[0], "OBSERVED")
	})

	t.Run("a VirtualService not exported to the clients' namespace", func(t *testing.T) {
		t.Parallel()
		ns := started(t, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  exportTo: ["."]
  http:
  - route:
    - destination: {host: reviews}
`)
		web := "web-" + ns
		sendTraffic(t, c, exporter, ns, meshClient(75), splitClient{Source: "frontend", SourceNamespace: web, RPS: 25})
		r, out := analyzeUntilOutput(t, c, splitIs("mismatch"), append([]string{"reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 2, exitCode(r), "%s", r)
		require.NotEmpty(t, out.Split.Causes)
		cause := out.Split.Causes[0]
		assert.Equal(t, "not-exported", cause.Cause)
		assert.Contains(t, cause.Says, "came from sidecars in namespace "+web)
		assert.Contains(t, cause.Says, fmt.Sprintf("VirtualService %s/reviews is exported to .", ns))
		assert.Contains(t, cause.Fix, "add "+web+" to spec.exportTo")
	})

	t.Run("too little traffic to tell", func(t *testing.T) {
		t.Parallel()
		ns := started(t)
		sendTraffic(t, c, exporter, ns, meshClient(5))
		r, out := analyzeUntilOutput(t, c, func(out analyzeJSON) bool {
			return out.Split != nil && out.Split.Verdict == "unknown" && out.Split.Requests > 0
		}, "reviews", "-n", ns, "--prometheus-url", prom, "--window", "10s", "--min-requests", "1")
		assert.Regexp(t, `^\d+ requests reached the Service's pods in the last \d+s; telling a 10.0% share from noise needs 100$`, out.Split.Reason)
		assert.NotEqual(t, "traffic-split", out.Decision.Metric, "too few requests to tell is no mismatch: %s", r)
	})

	runFlags := []string{"--steps", "20,50,100", "--interval", "10s", "--min-requests", "20", "--prometheus-url", prom}
	t.Run("run holds on a mismatch", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		sendTraffic(t, c, exporter, ns, meshClient(75), outsideClient(25))
		r := c.canary(t, nil, append([]string{"run", "reviews", "-n", ns, "--max-inconclusive", "1"}, runFlags...)...)
		assert.Equal(t, 2, exitCode(r), "%s", r)
		assert.Contains(t, r.stderr, "stays at step 1/3 (20%) after 2 inconclusive analyses")
		assert.Contains(t, r.stdout, "step 1/3 (20%): inconclusive: traffic split does not match the weight")
		_, run := runStateOf(t, c, ns)
		require.NotNil(t, run)
		assert.Contains(t, run.LastReason, "without passing a mesh proxy")
	})

	t.Run("run goes on with --ignore-split-mismatch", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		sendTraffic(t, c, exporter, ns, meshClient(75), outsideClient(25))
		r := c.canary(t, nil, append([]string{"run", "reviews", "-n", ns, "--ignore-split-mismatch"}, runFlags...)...)
		require.NoError(t, r.err, "%s", r)
		assert.Contains(t, r.stdout, "step 1/3 (20%): pass")
		assert.Contains(t, r.stdout, "(mismatch)", "the split is still reported")
		st, _ := runStateOf(t, c, ns)
		assert.Equal(t, "Promoted", st.Phase)
	})
}
