//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// istioBuckets are the bucket bounds of Istio's request duration histogram.
var istioBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// workloadTraffic is the traffic one version of a Service answers, as its
// sidecar would count it.
type workloadTraffic struct {
	Namespace, Service, Version, Workload string
	RPS                                   float64 // requests per second
	ErrorShare                            float64 // share of them answered 503
	LatencyMs                             float64 // every request takes this long
	// Source is the client workload (productpage-v1 when empty), in
	// SourceNamespace (the Service's when empty); its sidecar reports the
	// requests too (reporter="source"), unless OutsideMesh: a client
	// without a sidecar, which Istio reports as source "unknown".
	Source, SourceNamespace string
	OutsideMesh             bool
	// Cluster is the Istio cluster ID of the answering workload
	// (destination_cluster), for a Prometheus of several clusters; no
	// label when empty.
	Cluster string
}

// client is the source labels of the traffic.
func (w workloadTraffic) client() (workload, namespace string) {
	switch {
	case w.OutsideMesh:
		return "unknown", "unknown"
	case w.Source == "":
		return "productpage-v1", w.Namespace
	case w.SourceNamespace == "":
		return w.Source, w.Namespace
	}
	return w.Source, w.SourceNamespace
}

type series struct {
	ok, errors float64
	buckets    []float64 // cumulative counts per istioBuckets bound
	count, sum float64
}

// istioExporter serves istio_requests_total and
// istio_request_duration_milliseconds_bucket with the labels Istio's
// sidecars give them (reporter="destination"), for the traffic the test
// sets; the counters grow in real time, ten times a second.
type istioExporter struct {
	mu      sync.Mutex
	traffic map[string]workloadTraffic
	series  map[string]*series
	URL     string
}

func startIstioExporter(t *testing.T) *istioExporter {
	t.Helper()
	e := &istioExporter{traffic: map[string]workloadTraffic{}, series: map[string]*series{}}
	srv := httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	everyTenthOfASecond(t, func(context.Context) { e.advance(0.1) })
	return e
}

// everyTenthOfASecond calls do ten times a second until the test ends.
func everyTenthOfASecond(t *testing.T, do func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				do(ctx)
			}
		}
	}()
}

// set replaces the traffic of one version (RPS 0 stops it).
func (e *istioExporter) set(w workloadTraffic) {
	e.mu.Lock()
	defer e.mu.Unlock()
	source, sourceNamespace := w.client()
	e.traffic[w.Cluster+"/"+w.Namespace+"/"+w.Service+"/"+w.Workload+"/"+sourceNamespace+"/"+source] = w
}

func (e *istioExporter) advance(seconds float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, w := range e.traffic {
		if w.RPS == 0 {
			continue
		}
		s := e.series[key]
		if s == nil {
			s = &series{buckets: make([]float64, len(istioBuckets))}
			e.series[key] = s
		}
		n := w.RPS * seconds
		s.errors += n * w.ErrorShare
		s.ok += n * (1 - w.ErrorShare)
		for i, le := range istioBuckets {
			if w.LatencyMs <= le {
				s.buckets[i] += n
			}
		}
		s.count += n
		s.sum += n * w.LatencyMs
	}
}

func (e *istioExporter) serve(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var keys []string
	for k := range e.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# TYPE istio_requests_total counter\n")
	for _, k := range keys {
		tr, s := e.traffic[k], e.series[k]
		fmt.Fprintf(&b, "istio_requests_total{%s,response_code=\"200\"} %.0f\n", istioLabels(tr), s.ok)
		fmt.Fprintf(&b, "istio_requests_total{%s,response_code=\"503\"} %.0f\n", istioLabels(tr), s.errors)
		if !tr.OutsideMesh {
			fmt.Fprintf(&b, "istio_requests_total{%s,response_code=\"200\"} %.0f\n", sourceReported(tr), s.ok)
			fmt.Fprintf(&b, "istio_requests_total{%s,response_code=\"503\"} %.0f\n", sourceReported(tr), s.errors)
		}
	}
	b.WriteString("# TYPE istio_request_duration_milliseconds histogram\n")
	for _, k := range keys {
		tr, s := e.traffic[k], e.series[k]
		for i, le := range istioBuckets {
			fmt.Fprintf(&b, "istio_request_duration_milliseconds_bucket{%s,le=\"%g\"} %.0f\n", istioLabels(tr), le, s.buckets[i])
		}
		fmt.Fprintf(&b, "istio_request_duration_milliseconds_bucket{%s,le=\"+Inf\"} %.0f\n", istioLabels(tr), s.count)
		fmt.Fprintf(&b, "istio_request_duration_milliseconds_sum{%s} %g\n", istioLabels(tr), s.sum)
		fmt.Fprintf(&b, "istio_request_duration_milliseconds_count{%s} %.0f\n", istioLabels(tr), s.count)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

func istioLabels(w workloadTraffic) string {
	source, sourceNamespace := w.client()
	cluster := ""
	if w.Cluster != "" {
		cluster = fmt.Sprintf(",destination_cluster=%q", w.Cluster)
	}
	return fmt.Sprintf(`reporter="destination",source_workload=%[5]q,source_workload_namespace=%[6]q,destination_service="%[2]s.%[1]s.svc.cluster.local",destination_service_name=%[2]q,destination_service_namespace=%[1]q,destination_workload=%[3]q,destination_workload_namespace=%[1]q,destination_version=%[4]q,destination_canonical_service=%[2]q,request_protocol="http"%[7]s`,
		w.Namespace, w.Service, w.Workload, w.Version, source, sourceNamespace, cluster)
}

// sourceReported is the labels of the same requests as the client's own
// sidecar reports them.
func sourceReported(w workloadTraffic) string {
	return strings.Replace(istioLabels(w), `reporter="destination"`, `reporter="source"`, 1)
}

// startPrometheus runs a real Prometheus server on a free 127.0.0.1 port,
// scraping target every second, with its storage in a temporary folder, and
// stops it when the test ends. It returns the server's URL once it is ready.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	return startPrometheusEvery(t, target, time.Second)
}

// startPrometheusEvery is startPrometheus scraping target every interval
// (whole seconds), in job istio-sidecars. The prometheus binary is the one
// hack/build-tools.sh builds, which hack/e2e.sh puts on PATH.
func startPrometheusEvery(t *testing.T, target string, interval time.Duration) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	require.NoError(t, err, "these tests need a Prometheus server: run the e2e tests through hack/e2e.sh (make e2e), which builds Prometheus")
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: istio-sidecars
    scrape_interval: %[1]s
    static_configs:
      - targets: [%[2]q]
`, fmt.Sprintf("%ds", interval/time.Second), strings.TrimPrefix(target, "http://"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	require.NoError(t, err)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logFile.Close()
	})
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		select {
		case <-done:
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("prometheus exited before it was ready:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("prometheus at %s not ready after 30s:\n%s", url, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
