package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakePrometheus answers /api/v1/query from a function of the query and
// records the queries it was sent.
type fakePrometheus struct {
	mu      sync.Mutex
	queries []string
	answer  func(query string) string // the "result" JSON of a vector
}

func (f *fakePrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	_ = r.ParseForm()
	q := r.Form.Get("query")
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":%s}}`, f.answer(q))
}

func sample(labels map[string]string, v float64) string {
	b, _ := json.Marshal(labels)
	return fmt.Sprintf(`{"metric":%s,"value":[1700000000,"%g"]}`, b, v)
}

var reviews = Target{Namespace: "shop", Service: "reviews", Stable: "v1", Canary: "v2", StableWorkloads: []string{"reviews-v1"}, CanaryWorkloads: []string{"reviews-v2"}}

func serve(t *testing.T, f *fakePrometheus) API {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	api, err := NewAPI(srv.URL, nil)
	require.NoError(t, err)
	return api
}

func TestQueriesAreIstioStandardMetricsByVersion(t *testing.T) {
	q := QueriesFor(reviews, VersionLabel, true, 5*time.Minute)
	m := `reporter="destination",destination_service_namespace="shop",destination_service_name="reviews",destination_version="v2"`
	assert.Equal(t, `sum(increase(istio_requests_total{`+m+`}[5m]))`, q.Requests)
	assert.Equal(t, `sum(rate(istio_requests_total{`+m+`}[5m]))`, q.RPS)
	assert.Equal(t, `sum(rate(istio_requests_total{`+m+`,response_code!~"5.."}[5m])) / sum(rate(istio_requests_total{`+m+`}[5m]))`, q.SuccessRate)
	assert.Equal(t, `histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{`+m+`}[5m])))`, q.P99)
	assert.Equal(t, `histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket{`+m+`}[5m])))`, q.P50)

	w := QueriesFor(Target{Namespace: "shop", Service: "reviews", Stable: "v1", StableWorkloads: []string{"reviews-v1", "reviews.v1-eu"}}, WorkloadLabel, false, 90*time.Second)
	assert.Contains(t, w.RPS, `destination_workload=~"reviews-v1|reviews\\.v1-eu"}[1m30s]`)
}

func TestFetchByVersion(t *testing.T) {
	f := &fakePrometheus{answer: func(q string) string {
		switch {
		case strings.HasPrefix(q, "count by"):
			return "[" + sample(map[string]string{"destination_version": "v1", "destination_workload": "reviews-v1"}, 3) + "," + sample(map[string]string{"destination_version": "v2", "destination_workload": "reviews-v2"}, 3) + "]"
		case strings.Contains(q, `destination_version="v2"`) && strings.HasPrefix(q, "sum(increase"):
			return "[" + sample(nil, 42) + "]"
		case strings.Contains(q, `destination_version="v2"`) && strings.HasPrefix(q, "histogram_quantile(0.99"):
			return "[" + sample(nil, 87.5) + "]"
		}
		return "[]" // no samples: NaN
	}}
	r, err := Fetch(context.Background(), serve(t, f), reviews, time.Minute, time.Now(), "test")
	require.NoError(t, err)
	assert.Equal(t, VersionLabel, r.By)
	assert.Equal(t, 42.0, r.Canary.Requests)
	assert.Equal(t, 87.5, r.Canary.P99)
	assert.True(t, math.IsNaN(r.Stable.Requests), "an empty vector is NaN")
	assert.True(t, math.IsNaN(r.Canary.SuccessRate))
	assert.Len(t, f.queries, 11, "one label query and five per version")
}

func TestFetchFallsBackToWorkloads(t *testing.T) {
	f := &fakePrometheus{answer: func(q string) string {
		if strings.HasPrefix(q, "count by") {
			return "[" + sample(map[string]string{"destination_version": "unknown", "destination_workload": "reviews-v2"}, 1) + "]"
		}
		if strings.Contains(q, `destination_workload=~"reviews-v2"`) && strings.HasPrefix(q, "sum(increase") {
			return "[" + sample(nil, 7) + "]"
		}
		return "[]"
	}}
	r, err := Fetch(context.Background(), serve(t, f), reviews, time.Minute, time.Now(), "test")
	require.NoError(t, err)
	assert.Equal(t, WorkloadLabel, r.By)
	assert.Equal(t, 7.0, r.Canary.Requests)
}

func TestFetchExplainsMissingMetrics(t *testing.T) {
	_, err := Fetch(context.Background(), serve(t, &fakePrometheus{answer: func(string) string { return "[]" }}), reviews, time.Minute, time.Now(), "http://prom")
	require.ErrorIs(t, err, ErrNoMetrics)
	assert.Contains(t, err.Error(), "Istio's telemetry")

	unlabelled := &fakePrometheus{answer: func(q string) string {
		return "[" + sample(map[string]string{"destination_version": "unknown", "destination_workload": "other"}, 1) + "]"
	}}
	_, err = Fetch(context.Background(), serve(t, unlabelled), reviews, time.Minute, time.Now(), "http://prom")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `destination_version is "unknown"`)
	assert.Contains(t, err.Error(), "Label the pods with version=")
}

func TestFetchUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	api, err := NewAPI(srv.URL, nil)
	require.NoError(t, err)
	_, err = Fetch(context.Background(), api, reviews, time.Minute, time.Now(), srv.URL)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot query Prometheus at "+srv.URL)
}

// With a cluster, every query of the Service (metrics, split, custom
// checks) keeps to the requests answered in that cluster.
func TestQueriesOfOneClusterOfSeveral(t *testing.T) {
	target := Target{Namespace: "shop", Service: "reviews", Stable: "v1", Canary: "v2", Cluster: "west"}
	q := QueriesFor(target, VersionLabel, true, time.Minute)
	for _, query := range []string{q.Requests, q.RPS, q.SuccessRate, q.P50, q.P99} {
		assert.Contains(t, query, `destination_service_name="reviews",destination_cluster="west"`, query)
	}
	answered, sent := SplitQueries(target, VersionLabel, time.Minute)
	assert.Contains(t, answered, `reporter="destination",destination_service_namespace="shop",destination_service_name="reviews",destination_cluster="west"`)
	assert.Contains(t, sent, `reporter="source",destination_service_namespace="shop",destination_service_name="reviews",destination_cluster="west"}`)
	rendered, err := Check{Name: "c", Query: `x{destination_cluster="{{.Cluster}}"}`}.Render(target, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, `x{destination_cluster="west"}`, rendered)

	target.Cluster = ""
	answered, _ = SplitQueries(target, VersionLabel, time.Minute)
	assert.NotContains(t, answered, "destination_cluster", "one cluster's Prometheus: no cluster label")
}

// A Gateway API canary's requests are addressed to per-version Services:
// every query selects them beside the Service, by an anchored regexp.
func TestQueriesOfAGatewayAPICanarySelectItsVersionServices(t *testing.T) {
	cases := []struct {
		name     string
		services []string
		want     string
	}{
		{"istio", nil, `destination_service_name="reviews"`},
		{"gateway-api", []string{"reviews-v1", "reviews-v2"}, `destination_service_name=~"reviews|reviews-v1|reviews-v2"`},
		{"dots quoted", []string{"reviews.v1"}, `destination_service_name=~"reviews|reviews\\.v1"`},
	}
	for _, c := range cases {
		target := Target{Namespace: "shop", Service: "reviews", Stable: "v1", Canary: "v2", VersionServices: c.services}
		q := QueriesFor(target, VersionLabel, true, time.Minute)
		for _, query := range []string{q.Requests, q.RPS, q.SuccessRate, q.P50, q.P99} {
			assert.Contains(t, query, `destination_service_namespace="shop",`+c.want+`,destination_version="v2"`, c.name)
		}
		answered, sent := SplitQueries(target, VersionLabel, time.Minute)
		assert.Contains(t, answered, c.want, c.name)
		assert.Contains(t, sent, c.want, c.name)
	}
}
