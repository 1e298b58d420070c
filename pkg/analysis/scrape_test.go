package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMinInterval(t *testing.T) {
	for _, tc := range []struct {
		name      string
		intervals []time.Duration
		want      time.Duration
	}{
		{"none known: the default", nil, DefaultMinInterval},
		{"zero is not known", []time.Duration{0}, DefaultMinInterval},
		{"four scrapes of 1s", []time.Duration{time.Second}, 4 * time.Second},
		{"four scrapes of Istio's 15s", []time.Duration{15 * time.Second}, time.Minute},
		{"the longest interval counts", []time.Duration{time.Second, 5 * time.Second, 2 * time.Second}, 20 * time.Second},
		{"fractions of a second", []time.Duration{750 * time.Millisecond}, 3 * time.Second},
		{"never below the floor", []time.Duration{100 * time.Millisecond}, 2 * time.Second},
		{"exactly the floor", []time.Duration{500 * time.Millisecond}, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, MinInterval(tc.intervals))
		})
	}
}

// promTarget is one active target in the fake targets API.
type promTarget struct{ job, instance, interval string }

// fakeTargetsAPI serves /api/v1/targets from targets (or answers with
// status and body when status is set) and the queries from query.
type fakeTargetsAPI struct {
	targets    []promTarget
	status     int
	body       string
	query      *fakePrometheus
	targetURLs []string
}

func (f *fakeTargetsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/targets" {
		f.query.ServeHTTP(w, r)
		return
	}
	f.targetURLs = append(f.targetURLs, r.URL.String())
	if f.status != 0 {
		w.WriteHeader(f.status)
		_, _ = w.Write([]byte(f.body))
		return
	}
	var active []map[string]any
	for _, t := range f.targets {
		target := map[string]any{
			"labels":     map[string]string{"job": t.job, "instance": t.instance},
			"scrapePool": t.job,
			"health":     "up",
		}
		if t.interval != "" {
			target["scrapeInterval"] = t.interval
			target["scrapeTimeout"] = t.interval
		}
		active = append(active, target)
	}
	b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"activeTargets": active, "droppedTargets": []any{}}})
	_, _ = w.Write(b)
}

// seriesOf answers the query of the Service's reporting targets with
// these (job, instance) pairs and the query of the jobs collecting
// istio_requests_total with these jobs.
func seriesOf(reporting [][2]string, jobs []string) *fakePrometheus {
	return &fakePrometheus{answer: func(q string) string {
		var samples []string
		switch {
		case strings.HasPrefix(q, "count by (job, instance) (istio_requests_total{"):
			for _, r := range reporting {
				samples = append(samples, sample(map[string]string{"job": r[0], "instance": r[1]}, 12))
			}
		case q == "count by (job) (istio_requests_total)":
			for _, j := range jobs {
				samples = append(samples, sample(map[string]string{"job": j}, 40))
			}
		}
		return "[" + strings.Join(samples, ",") + "]"
	}}
}

func readMinimum(t *testing.T, f *fakeTargetsAPI) ScrapeMinimum {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client, err := NewClient(srv.URL, nil)
	require.NoError(t, err)
	return ReadScrapeMinimum(context.Background(), client, "shop", "reviews", time.Now(), "http://prom")
}

var meshTargets = []promTarget{
	{"istio-sidecars", "10.0.0.1:15020", "1s"},
	{"istio-sidecars", "10.0.0.2:15020", "5s"},
	{"kube-state-metrics", "10.0.0.3:8080", "1m"},
}

func TestReadScrapeMinimumFromTheServicesTargets(t *testing.T) {
	f := &fakeTargetsAPI{targets: meshTargets, query: seriesOf([][2]string{{"istio-sidecars", "10.0.0.1:15020"}}, []string{"istio-sidecars"})}
	m := readMinimum(t, f)
	assert.Equal(t, ScrapeMinimum{Min: 4 * time.Second, ScrapeInterval: time.Second, Targets: 1, Which: "reporting shop/reviews"}, m)
	assert.Equal(t, "4 scrapes at the 1s scrape interval of 1 target reporting shop/reviews", m.Source())
	assert.Equal(t, []string{"/api/v1/targets?state=active"}, f.targetURLs)
	require.NotEmpty(t, f.query.queries)
	assert.Equal(t, `count by (job, instance) (istio_requests_total{reporter="destination",destination_service_namespace="shop",destination_service_name="reviews"})`, f.query.queries[0])
	assert.Len(t, f.query.queries, 1, "the Service's targets are enough")

	// Two reporting targets scraped at different intervals: the longer.
	f = &fakeTargetsAPI{targets: meshTargets, query: seriesOf([][2]string{{"istio-sidecars", "10.0.0.1:15020"}, {"istio-sidecars", "10.0.0.2:15020"}}, nil)}
	m = readMinimum(t, f)
	assert.Equal(t, 20*time.Second, m.Min)
	assert.Equal(t, "4 scrapes at the longest scrape interval, 5s, of 2 targets reporting shop/reviews", m.Source())

	// A series whose instance no active target has (a target gone since)
	// does not count.
	f = &fakeTargetsAPI{targets: meshTargets, query: seriesOf([][2]string{{"istio-sidecars", "10.0.0.9:15020"}, {"istio-sidecars", "10.0.0.1:15020"}}, nil)}
	assert.Equal(t, 4*time.Second, readMinimum(t, f).Min)
}

func TestReadScrapeMinimumBeforeTheServiceReports(t *testing.T) {
	// No series of the Service yet: the targets of the jobs that collect
	// Istio's metrics, not kube-state-metrics' minute.
	f := &fakeTargetsAPI{targets: meshTargets, query: seriesOf(nil, []string{"istio-sidecars"})}
	m := readMinimum(t, f)
	assert.Equal(t, 20*time.Second, m.Min)
	assert.Equal(t, "4 scrapes at the longest scrape interval, 5s, of 2 targets of job istio-sidecars, which collects istio_requests_total (shop/reviews has no series yet)", m.Source())
	assert.Equal(t, []string{f.query.queries[0], "count by (job) (istio_requests_total)"}, f.query.queries)

	f = &fakeTargetsAPI{targets: append(meshTargets, promTarget{"gateways", "10.0.0.4:15020", "2s"}), query: seriesOf(nil, []string{"istio-sidecars", "gateways"})}
	assert.Contains(t, readMinimum(t, f).Source(), "of 3 targets of jobs gateways, istio-sidecars, which collect istio_requests_total")

	// No Istio metrics at all: the default, and why.
	f = &fakeTargetsAPI{targets: meshTargets, query: seriesOf(nil, nil)}
	m = readMinimum(t, f)
	assert.Equal(t, DefaultMinInterval, m.Min)
	assert.Equal(t, "the default minimum, as the scrape interval is unknown: no active target of Prometheus at http://prom reports shop/reviews or collects istio_requests_total yet", m.Source())
}

func TestReadScrapeMinimumDefaultsWhenUnreadable(t *testing.T) {
	reporting := seriesOf([][2]string{{"istio-sidecars", "10.0.0.1:15020"}}, []string{"istio-sidecars"})
	for _, tc := range []struct {
		name string
		f    *fakeTargetsAPI
		why  string
	}{
		{"no scrape interval in the answer", &fakeTargetsAPI{targets: []promTarget{{"istio-sidecars", "10.0.0.1:15020", ""}}, query: reporting},
			"the targets API does not give the scrape interval of the 1 matching targets"},
		{"not found", &fakeTargetsAPI{status: http.StatusNotFound, body: "404 page not found\n", query: reporting},
			"the targets API of Prometheus at http://prom is not readable: HTTP 404 Not Found: 404 page not found"},
		{"a Prometheus error", &fakeTargetsAPI{status: http.StatusBadRequest, body: `{"status":"error","errorType":"bad_data","error":"invalid state"}`, query: reporting},
			"not readable: HTTP 400: invalid state"},
		{"the API server's proxy without endpoints", &fakeTargetsAPI{status: http.StatusServiceUnavailable,
			body: `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"no endpoints available for service \"prometheus\"","reason":"ServiceUnavailable","code":503}`, query: reporting},
			`not readable: HTTP 503: no endpoints available for service "prometheus"`},
		{"not Prometheus", &fakeTargetsAPI{status: http.StatusOK, body: `<html>login</html>`, query: reporting},
			"not readable: not an answer of the Prometheus targets API: <html>login</html>"},
		{"the query fails", &fakeTargetsAPI{targets: meshTargets, query: &fakePrometheus{answer: func(string) string { return "{" }}},
			"cannot query Prometheus at http://prom for the targets reporting shop/reviews"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := readMinimum(t, tc.f)
			assert.Equal(t, DefaultMinInterval, m.Min)
			assert.Contains(t, m.Unknown, tc.why)
			assert.True(t, strings.HasPrefix(m.Source(), "the default minimum, as the scrape interval is unknown: "), m.Source())
		})
	}

	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	client, err := NewClient(srv.URL, nil)
	require.NoError(t, err)
	m := ReadScrapeMinimum(context.Background(), client, "shop", "reviews", time.Now(), srv.URL)
	assert.Equal(t, DefaultMinInterval, m.Min)
	assert.Contains(t, m.Unknown, fmt.Sprintf("the targets API of Prometheus at %s is not readable: ", srv.URL))
	assert.Contains(t, m.Unknown, "connection refused")
}
