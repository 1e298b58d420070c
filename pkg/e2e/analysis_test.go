//go:build e2e

package e2e

import (
	"encoding/json"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keysOf lists a document's top-level fields.
func keysOf(doc map[string]any) []string {
	var keys []string
	for k := range doc {
		keys = append(keys, k)
	}
	return keys
}

func exitCode(r result) int {
	var exitErr *exec.ExitError
	if errors.As(r.err, &exitErr) {
		return exitErr.ExitCode()
	}
	if r.err != nil {
		return -1
	}
	return 0
}

type analyzeJSON struct {
	Stable, Canary string
	Weight         int
	SelectedBy     string
	Metrics        map[string]struct {
		Requests    *float64
		RPS         *float64
		SuccessRate *float64
		P50Ms       *float64
		P99Ms       *float64
	}
	Split    *splitJSON
	Decision struct{ Verdict, Reason, Metric string }
}

// analyzeUntil runs analyze -o json until its verdict is want (Prometheus
// needs a few scrapes first), and returns the last run.
func analyzeUntil(t *testing.T, c *cluster, want string, args ...string) (result, analyzeJSON) {
	t.Helper()
	return analyzeUntilOutput(t, c, func(out analyzeJSON) bool { return out.Decision.Verdict == want }, args...)
}

// analyzeUntilOutput runs analyze -o json until done accepts its output.
func analyzeUntilOutput(t *testing.T, c *cluster, done func(analyzeJSON) bool, args ...string) (result, analyzeJSON) {
	t.Helper()
	var r result
	var out analyzeJSON
	deadline := time.Now().Add(45 * time.Second)
	for {
		r = c.canary(t, nil, append([]string{"analyze", "-o", "json"}, args...)...)
		out = analyzeJSON{}
		if json.Unmarshal([]byte(r.stdout), &out) == nil && done(out) {
			return r, out
		}
		if time.Now().After(deadline) {
			require.Failf(t, "analyze never gave the expected output", "last run:\n%s", r)
		}
		time.Sleep(time.Second)
	}
}

// analyze reads Istio's metrics from a real Prometheus server that scrapes
// an exporter serving them in Istio's format, compares canary with stable
// and sets its exit status by the verdict.
func TestAnalyzeWithRealPrometheus(t *testing.T) {
	t.Parallel()
	c := shared
	exporter := startIstioExporter(t)
	prom := startPrometheus(t, exporter.URL)
	flags := []string{"--prometheus-url", prom, "--window", "10s", "--min-requests", "20"}

	// Each case is a Service of its own with a running canary at 10%.
	canary := func(t *testing.T) string {
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		c.mustCanary(t, "start", "reviews", "-n", ns)
		return ns
	}
	traffic := func(ns, version, versionLabel string, rps, errorShare, latency float64) {
		exporter.set(workloadTraffic{Namespace: ns, Service: "reviews", Version: versionLabel, Workload: "reviews-" + version, RPS: rps, ErrorShare: errorShare, LatencyMs: latency})
	}

	t.Run("healthy canary passes", func(t *testing.T) {
		t.Parallel()
		ns := canary(t)
		traffic(ns, "v1", "v1", 90, 0.001, 20)
		traffic(ns, "v2", "v2", 10, 0, 20)
		// Once the window is full of traffic, the rates are the real ones.
		r, out := analyzeUntilOutput(t, c, func(out analyzeJSON) bool {
			rps := out.Metrics["canary"].RPS
			return out.Decision.Verdict == "pass" && rps != nil && *rps > 8
		}, append([]string{"reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 0, exitCode(r), "%s", r)
		assert.Equal(t, "destination_version", out.SelectedBy)
		assert.Equal(t, "v1", out.Stable)
		assert.Equal(t, 10, out.Weight)
		require.NotNil(t, out.Metrics["canary"].RPS)
		assert.InDelta(t, 10, *out.Metrics["canary"].RPS, 3)
		assert.InDelta(t, 90, *out.Metrics["stable"].RPS, 20)
		assert.InDelta(t, 1, *out.Metrics["canary"].SuccessRate, 0.001)
		assert.InDelta(t, 22.5, *out.Metrics["canary"].P50Ms, 5, "20ms falls in the (10,25] bucket")

		// The table shows both versions side by side.
		table := c.mustCanary(t, append([]string{"analyze", "reviews", "-n", ns}, flags...)...)
		assert.Contains(t, table, "VERSION")
		assert.Contains(t, table, "stable v1")
		assert.Contains(t, table, "canary v2")
		assert.Contains(t, table, "verdict: pass")

		// -o yaml holds what -o json does; the figures move with the
		// window between the two runs, so the fields are compared by name.
		code, fromJSON, fromYAML := c.jsonAndYAML(t, nil, append([]string{"analyze", "reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 0, code)
		var asYAML analyzeJSON
		decodeDocument(t, fromYAML, &asYAML)
		assert.Equal(t, "pass", asYAML.Decision.Verdict)
		assert.Equal(t, out.Stable, asYAML.Stable)
		assert.Equal(t, out.Weight, asYAML.Weight)
		require.NotNil(t, asYAML.Metrics["canary"].RPS)
		assert.InDelta(t, 10, *asYAML.Metrics["canary"].RPS, 3)
		assert.Equal(t, "kubectl-canary.io/v1alpha1", fromJSON["apiVersion"])
		assert.Equal(t, "CanaryAnalysis", fromJSON["kind"])
		for _, doc := range []map[string]any{fromJSON, fromYAML} {
			assert.ElementsMatch(t, []string{"apiVersion", "kind", "metadata", "namespace", "service", "stable", "canary", "weight", "window", "selectedBy", "metrics", "split", "decision"}, keysOf(doc))
		}

		// Custom checks: the Service's labels fill the template; --min and
		// --max bound the query before them.
		canaryRPS := `canary_rps=sum(rate(istio_requests_total{reporter="destination",destination_service_namespace="{{.Namespace}}",destination_service_name="{{.Service}}",destination_workload=~"{{.CanaryWorkloads}}"}[{{.Window}}]))`
		table = c.mustCanary(t, append([]string{"analyze", "reviews", "-n", ns, "--query", canaryRPS, "--min", "5", "--max", "50"}, flags...)...)
		assert.Regexp(t, `check canary_rps: [0-9.]+ \(min 5, max 50\)`, table)
		r = c.canary(t, nil, append([]string{"analyze", "reviews", "-n", ns, "-o", "json", "--query", canaryRPS, "--max", "1"}, flags...)...)
		assert.Equal(t, 3, exitCode(r), "%s", r)
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
		assert.Equal(t, "canary_rps", out.Decision.Metric)
		assert.Contains(t, out.Decision.Reason, "above its --max 1")
	})

	t.Run("canary errors fail", func(t *testing.T) {
		t.Parallel()
		ns := canary(t)
		traffic(ns, "v1", "v1", 90, 0, 20)
		traffic(ns, "v2", "v2", 10, 0.2, 20)
		r, out := analyzeUntil(t, c, "fail", append([]string{"reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 3, exitCode(r), "%s", r)
		assert.Equal(t, "error-rate", out.Decision.Metric)
		assert.Contains(t, r.stderr, "fail: canary error rate")
	})

	t.Run("canary slower fails", func(t *testing.T) {
		t.Parallel()
		ns := canary(t)
		traffic(ns, "v1", "v1", 90, 0, 20)
		traffic(ns, "v2", "v2", 10, 0, 400)
		r, out := analyzeUntil(t, c, "fail", append([]string{"reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 3, exitCode(r), "%s", r)
		assert.Equal(t, "p99", out.Decision.Metric)
	})

	t.Run("canary without traffic is inconclusive", func(t *testing.T) {
		t.Parallel()
		ns := canary(t)
		traffic(ns, "v1", "v1", 90, 0, 20)
		// Wait until stable's traffic is in Prometheus, so the verdict is
		// about the canary and not about absent metrics.
		r, out := analyzeUntil(t, c, "inconclusive", append([]string{"reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 2, exitCode(r), "%s", r)
		assert.Equal(t, "requests", out.Decision.Metric)
		assert.Contains(t, r.stderr, "inconclusive")
	})

	t.Run("workload names when the version label does not reach the metrics", func(t *testing.T) {
		t.Parallel()
		ns := canary(t)
		traffic(ns, "v1", "unknown", 90, 0, 20)
		traffic(ns, "v2", "unknown", 10, 0, 20)
		r, out := analyzeUntil(t, c, "pass", append([]string{"reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 0, exitCode(r), "%s", r)
		assert.Equal(t, "destination_workload", out.SelectedBy)
	})

	t.Run("clear errors", func(t *testing.T) {
		t.Parallel()
		ns := canary(t)
		// No series at all for this Service: telemetry off or no traffic
		// yet, nothing to judge either way.
		r := c.failCanary(t, append([]string{"analyze", "reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 2, exitCode(r), "no metrics at all is inconclusive: %s", r)
		assert.Contains(t, r.stderr, "no Istio request metrics for service "+ns+"/reviews")

		// Nothing listens on the port: unreachable Prometheus is named.
		r = c.failCanary(t, "analyze", "reviews", "-n", ns, "--prometheus-url", "http://127.0.0.1:1")
		assert.Equal(t, 1, exitCode(r), "%s", r)
		assert.Contains(t, r.stderr, "Prometheus at http://127.0.0.1:1 cannot be reached (dial tcp 127.0.0.1:1: connect: connection refused); check --prometheus-url")

		// Without --prometheus-url the API server's service proxy is used;
		// no such Service runs here, and the error says where it looked.
		r = c.failCanary(t, "analyze", "reviews", "-n", ns)
		assert.Contains(t, r.stderr, "service istio-system/prometheus:9090 (through the API server's proxy)")

		// No canary, no analysis.
		c.mustCanary(t, "abort", "reviews", "-n", ns)
		r = c.failCanary(t, append([]string{"analyze", "reviews", "-n", ns}, flags...)...)
		assert.Contains(t, r.stderr, "no running canary")
	})
}
