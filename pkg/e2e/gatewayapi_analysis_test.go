//go:build e2e

package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGatewayAPIAnalyzeReadsThePerVersionServices: the requests of a
// Gateway API canary are addressed to the per-version Services, so
// sidecars report them with destination_service_name reviews-v1 and
// reviews-v2, never reviews; analyze finds both versions there, from a
// real Prometheus.
func TestGatewayAPIAnalyzeReadsThePerVersionServices(t *testing.T) {
	t.Parallel()
	c := shared
	exporter := startIstioExporter(t)
	prom := startPrometheus(t, exporter.URL)
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.mustCanary(t, "start", "reviews", "-n", ns, "--routing-api", "gateway-api")
	exporter.set(workloadTraffic{Namespace: ns, Service: "reviews-v1", Version: "v1", Workload: "reviews-v1", RPS: 90, ErrorShare: 0.001, LatencyMs: 20})
	exporter.set(workloadTraffic{Namespace: ns, Service: "reviews-v2", Version: "v2", Workload: "reviews-v2", RPS: 10, LatencyMs: 20})

	r, out := analyzeUntilOutput(t, c, func(out analyzeJSON) bool {
		rps := out.Metrics["canary"].RPS
		return out.Decision.Verdict == "pass" && rps != nil && *rps > 8
	}, "reviews", "-n", ns, "--prometheus-url", prom, "--window", "10s", "--min-requests", "20")
	assert.Equal(t, 0, exitCode(r), "%s", r)
	assert.Equal(t, 10, out.Weight)
	require.NotNil(t, out.Metrics["stable"].RPS)
	assert.InDelta(t, 90, *out.Metrics["stable"].RPS, 20)
	assert.InDelta(t, 10, *out.Metrics["canary"].RPS, 3)
}
