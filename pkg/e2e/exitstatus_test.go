//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// analyze's exit status through kubectl canary, against a real Prometheus
// and the real API server's service proxy: 0 pass, 3 fail, 2 inconclusive
// (no metrics at all too), 1 when nothing could be judged, each Prometheus
// failure saying what is wrong and which flag fixes it.
func TestAnalyzeExitStatuses(t *testing.T) {
	t.Parallel()
	c := shared
	exporter := startIstioExporter(t)
	prom := startPrometheus(t, exporter.URL)
	flags := []string{"--prometheus-url", prom, "--window", "10s", "--min-requests", "20"}
	canary := func(t *testing.T) string {
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		c.mustCanary(t, "start", "reviews", "-n", ns)
		return ns
	}
	traffic := func(ns string, canaryErrors float64) {
		exporter.set(workloadTraffic{Namespace: ns, Service: "reviews", Version: "v1", Workload: "reviews-v1", RPS: 90, LatencyMs: 20})
		exporter.set(workloadTraffic{Namespace: ns, Service: "reviews", Version: "v2", Workload: "reviews-v2", RPS: 10, ErrorShare: canaryErrors, LatencyMs: 20})
	}

	t.Run("pass is 0", func(t *testing.T) {
		t.Parallel()
		ns := canary(t)
		traffic(ns, 0)
		r, _ := analyzeUntil(t, c, "pass", append([]string{"reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 0, exitCode(r), "%s", r)
	})

	t.Run("fail is 3", func(t *testing.T) {
		t.Parallel()
		ns := canary(t)
		traffic(ns, 0.3)
		r, out := analyzeUntil(t, c, "fail", append([]string{"reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 3, exitCode(r), "%s", r)
		assert.Equal(t, "error-rate", out.Decision.Metric)
	})

	t.Run("no metrics at all is inconclusive, 2", func(t *testing.T) {
		t.Parallel()
		ns := canary(t)
		r := c.failCanary(t, append([]string{"analyze", "reviews", "-n", ns, "-o", "json"}, flags...)...)
		assert.Equal(t, 2, exitCode(r), "%s", r)
		var out analyzeJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), "%s", r)
		assert.Equal(t, "inconclusive", out.Decision.Verdict)
		assert.Contains(t, out.Decision.Reason, "no Istio request metrics for service "+ns+"/reviews")
		r = c.failCanary(t, append([]string{"analyze", "reviews", "-n", ns}, flags...)...)
		assert.Equal(t, 2, exitCode(r), "%s", r)
		assert.Contains(t, r.stdout, "verdict: inconclusive: no Istio request metrics")
	})

	t.Run("Prometheus it cannot query is 1, explained", func(t *testing.T) {
		t.Parallel()
		ns := canary(t)
		// A Service of that name in ns with no endpoint behind it.
		empty := c.newNamespace(t)
		c.create(t, empty, "apiVersion: v1\nkind: Service\nmetadata: {name: prometheus}\nspec:\n  selector: {app: prometheus}\n  ports: [{name: http, port: 9090}]\n")
		// Grafana's login page where Prometheus was expected.
		html := c.newNamespace(t)
		page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<!DOCTYPE html>\n<html><head><title>Grafana</title></head></html>")
		}))
		t.Cleanup(page.Close)
		servePrometheusAsService(t, c, html, page.URL)
		for name, tc := range map[string]struct {
			args []string
			says string
		}{
			"nothing listens": {[]string{"--prometheus-url", "http://127.0.0.1:1"},
				"Prometheus at http://127.0.0.1:1 cannot be reached (dial tcp 127.0.0.1:1: connect: connection refused); check --prometheus-url"},
			"not Prometheus at the URL": {[]string{"--prometheus-url", page.URL},
				"Prometheus at " + page.URL + " answered, but not as Prometheus's HTTP API (HTTP 200 for /api/v1/query: text/html; charset=utf-8, <!DOCTYPE html> <html><head><title>Grafana</title></head></html>); --prometheus-url must be Prometheus's base address"},
			"no such Service": {nil,
				"Prometheus at service istio-system/prometheus:9090 (through the API server's proxy) does not exist: the API server has no service istio-system/prometheus (HTTP 404 for /api/v1/query: services \"prometheus\" not found); give the namespace and name of Prometheus's Service with --prometheus-namespace and --prometheus-service"},
			"no endpoints": {[]string{"--prometheus-namespace", empty},
				"Prometheus at service " + empty + "/prometheus:9090 (through the API server's proxy) is not answering: the API server found no ready endpoint of service " + empty + "/prometheus on port 9090, or could not reach it"},
			"not Prometheus behind the Service": {[]string{"--prometheus-namespace", html},
				"answered, but not as Prometheus's HTTP API (HTTP 200 for /api/v1/query: text/html; charset=utf-8, <!DOCTYPE html>"},
		} {
			r := c.failCanary(t, append([]string{"analyze", "reviews", "-n", ns}, tc.args...)...)
			assert.Equal(t, 1, exitCode(r), "%s: %s", name, r)
			assert.Contains(t, r.stderr, tc.says, name)
			assert.NotContains(t, r.stderr, "The API server did not answer in time", name)
		}
		r := c.failCanary(t, "analyze", "reviews", "-n", ns, "--prometheus-namespace", empty)
		assert.Contains(t, r.stderr, "check that Prometheus's pods are ready (kubectl get pods -n "+empty+") and that --prometheus-port 9090 is the Service's port")
		r = c.failCanary(t, "analyze", "reviews", "-n", ns, "--prometheus-namespace", html)
		assert.Contains(t, r.stderr, "give the port of Prometheus's HTTP API with --prometheus-port")
	})

	t.Run("no permission on the proxy is 1, explained", func(t *testing.T) {
		t.Parallel()
		ns := canary(t)
		c.bindUser(t, ns, readmeRole(t))
		r := c.canary(t, []string{"KUBECONFIG=" + c.userKubeconfig}, "analyze", "reviews", "-n", ns)
		require.Error(t, r.err, "%s", r)
		assert.Equal(t, 1, exitCode(r), "%s", r)
		assert.Contains(t, r.stderr, "is out of reach: the API server does not allow you to get services/proxy in namespace istio-system (HTTP 403 for /api/v1/query")
		assert.Contains(t, r.stderr, "ask for get on services/proxy in namespace istio-system")
	})

	t.Run("status --observed without Prometheus still prints its table", func(t *testing.T) {
		t.Parallel()
		ns := canary(t)
		r := c.canary(t, nil, "status", "-n", ns, "--observed", "--prometheus-url", "http://127.0.0.1:1")
		require.NoError(t, r.err, "%s", r)
		rows := table(t, r.stdout)
		require.Len(t, rows, 1, "%s", r)
		assert.Equal(t, "unknown", rows[0]["OBSERVED"])
		assert.Equal(t, "10%", rows[0]["WEIGHT"])
		assert.Regexp(t, `^Warning: Prometheus at http://127.0.0.1:1 cannot be reached [^\n]*; the OBSERVED shares are unknown\n$`, r.stderr)
	})
}
