//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitForSeries waits until Prometheus at prom has istio_requests_total
// series of namespace ns (it scrapes them within one scrape interval).
func waitForSeries(t *testing.T, prom, ns string) {
	t.Helper()
	query := fmt.Sprintf(`count(istio_requests_total{destination_service_namespace=%q})`, ns)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(query))
		if err == nil {
			var answer struct {
				Data struct{ Result []json.RawMessage }
			}
			err = json.NewDecoder(resp.Body).Decode(&answer)
			_ = resp.Body.Close()
			if err == nil && len(answer.Data.Result) > 0 {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "Prometheus at %s has no series of namespace %s after 30s (last error: %v)", prom, ns, err)
		time.Sleep(200 * time.Millisecond)
	}
}

// servePrometheusAsService makes Prometheus at prom (a 127.0.0.1 URL) the
// Service prometheus (port 9090) of namespace ns, as an install would have
// it: a Pod with an IP of the pod network, which podnet maps to loopback, and
// an EndpointSlice with Prometheus's real port (no endpointslice controller
// runs here). The API server's service proxy then reaches it.
func servePrometheusAsService(t *testing.T, c *cluster, ns, prom string) {
	t.Helper()
	u, err := url.Parse(prom)
	require.NoError(t, err)
	_, portText, err := net.SplitHostPort(u.Host)
	require.NoError(t, err)
	port, err := strconv.Atoi(portText)
	require.NoError(t, err)
	ip := fmt.Sprintf("10.244.%d.%d", rand.Intn(250)+1, rand.Intn(250)+1)
	c.create(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: prometheus-0, labels: {app: prometheus}}
spec:
  nodeName: local-node
  containers: [{name: prometheus, image: prom/prometheus}]
---
apiVersion: v1
kind: Service
metadata: {name: prometheus}
spec:
  selector: {app: prometheus}
  ports: [{name: http, port: 9090, targetPort: %[1]d, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: prometheus-0, labels: {kubernetes.io/service-name: prometheus}}
addressType: IPv4
endpoints:
- addresses: [%[2]s]
  conditions: {ready: true, serving: true, terminating: false}
  targetRef: {kind: Pod, namespace: %[3]s, name: prometheus-0}
ports: [{name: http, port: %[1]d, protocol: TCP}]
`, port, ip, ns))
	c.kubectl(t, "", "patch", "pod", "prometheus-0", "-n", ns, "--subresource=status", "--type=merge",
		"-p", fmt.Sprintf(`{"status":{"phase":"Running","podIP":%[1]q,"podIPs":[{"ip":%[1]q}]}}`, ip))
}

// The shortest run --interval and analyze --window follow the scrape
// interval of the targets that report the Service, read from a real
// Prometheus's targets API (directly or through the API server's service
// proxy); when it cannot be read, the default 10s, and the messages say which
// applies.
func TestRunAndAnalyzeFollowTheScrapeInterval(t *testing.T) {
	t.Parallel()
	c := shared
	exporter := startIstioExporter(t)
	everySecond := startPrometheus(t, exporter.URL)
	every5s := startPrometheusEvery(t, exporter.URL, 5*time.Second)
	traffic := func(ns string) {
		exporter.set(workloadTraffic{Namespace: ns, Service: "reviews", Version: "v1", Workload: "reviews-v1", RPS: 90, LatencyMs: 20})
		exporter.set(workloadTraffic{Namespace: ns, Service: "reviews", Version: "v2", Workload: "reviews-v2", RPS: 10, LatencyMs: 20})
	}
	// service is a namespace whose reviews has traffic in both servers.
	service := func(t *testing.T) string {
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		traffic(ns)
		waitForSeries(t, everySecond, ns)
		waitForSeries(t, every5s, ns)
		return ns
	}

	t.Run("run --interval 5s is accepted at a 1s scrape interval", func(t *testing.T) {
		t.Parallel()
		ns := service(t)
		r := c.canary(t, nil, "run", "reviews", "-n", ns, "--steps", "50,100", "--interval", "5s", "--min-requests", "5", "--prometheus-url", everySecond)
		require.NoError(t, r.err, "%s", r)
		assert.Contains(t, r.stdout, "step 1/2 (50%): pass")
		assert.Contains(t, r.stdout, "canary "+ns+"/reviews promoted")
	})

	t.Run("and refused at a 5s scrape interval, which the message names", func(t *testing.T) {
		t.Parallel()
		ns := service(t)
		r := c.failCanary(t, "run", "reviews", "-n", ns, "--interval", "5s", "--prometheus-url", every5s)
		assert.Contains(t, r.stderr, "--interval 5s is too short; Prometheus needs 4 scrapes of each step, give 20s or more (4 scrapes at the 5s scrape interval of 1 target reporting "+ns+"/reviews)")
		assert.Empty(t, c.versionsOf(t, ns), "a refused run writes nothing")
		out := c.mustCanary(t, "run", "reviews", "-n", ns, "--interval", "20s", "--dry-run", "--prometheus-url", every5s)
		assert.Contains(t, out, "shortest interval and window: 20s, 4 scrapes at the 5s scrape interval of 1 target reporting "+ns+"/reviews\n")
	})

	t.Run("a Service without series yet: the targets of the jobs collecting Istio's metrics", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		// Istio's metrics of another Service, so the job is known.
		traffic("other-" + ns)
		waitForSeries(t, every5s, "other-"+ns)
		r := c.failCanary(t, "run", "reviews", "-n", ns, "--interval", "5s", "--prometheus-url", every5s)
		assert.Contains(t, r.stderr, "give 20s or more (4 scrapes at the 5s scrape interval of 1 target of job istio-sidecars, which collects istio_requests_total ("+ns+"/reviews has no series yet))")
	})

	t.Run("targets API not readable: the default 10s, and why", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		// A proxy in front of Prometheus that passes its queries alone.
		target, err := url.Parse(everySecond)
		require.NoError(t, err)
		forward := httputil.NewSingleHostReverseProxy(target)
		queriesOnly := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/v1/query" {
				http.NotFound(w, r)
				return
			}
			forward.ServeHTTP(w, r)
		}))
		t.Cleanup(queriesOnly.Close)
		r := c.failCanary(t, "run", "reviews", "-n", ns, "--interval", "5s", "--prometheus-url", queriesOnly.URL)
		assert.Contains(t, r.stderr, "--interval 5s is too short; Prometheus needs a few scrapes of each step, give 10s or more (the default minimum, as the scrape interval is unknown: the targets API of Prometheus at "+queriesOnly.URL+" is not readable: ")
		assert.Contains(t, r.stderr, "HTTP 404 for /api/v1/targets")
		assert.Empty(t, c.versionsOf(t, ns))
	})

	t.Run("through the API server's service proxy", func(t *testing.T) {
		t.Parallel()
		ns := service(t)
		servePrometheusAsService(t, c, ns, everySecond)
		out := c.mustCanary(t, "run", "reviews", "-n", ns, "--interval", "5s", "--dry-run", "--prometheus-namespace", ns)
		assert.Contains(t, out, "shortest interval and window: 4s, 4 scrapes at the 1s scrape interval of 1 target reporting "+ns+"/reviews\n")
	})

	t.Run("analyze --window 5s", func(t *testing.T) {
		t.Parallel()
		ns := service(t)
		c.mustCanary(t, "start", "reviews", "-n", ns)
		r := c.failCanary(t, "analyze", "reviews", "-n", ns, "--window", "5s", "--prometheus-url", every5s)
		assert.Equal(t, 1, exitCode(r))
		assert.Contains(t, r.stderr, "--window 5s is too short; Prometheus needs 4 scrapes in it, give 20s or more (4 scrapes at the 5s scrape interval of 1 target reporting "+ns+"/reviews)")
		r, _ = analyzeUntil(t, c, "pass", "reviews", "-n", ns, "--window", "5s", "--min-requests", "5", "--prometheus-url", everySecond)
		assert.Equal(t, 0, exitCode(r), "%s", r)
	})
}
