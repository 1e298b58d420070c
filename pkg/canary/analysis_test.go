package canary

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
)

// The default path to Prometheus is the API server's service proxy: the
// request goes to the exact proxy path under the kubeconfig's host (path
// prefix kept), through the kubeconfig's HTTP client.
func TestPrometheusThroughServiceProxy(t *testing.T) {
	var paths []string
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		auth = r.Header.Get("Authorization")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	defer srv.Close()
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r.Header.Set("Authorization", "Bearer kubeconfig-token")
		return http.DefaultTransport.RoundTrip(r)
	})}
	prom, err := ProxiedPrometheus(srv.URL+"/k8s/", client, PrometheusAt{Namespace: "monitoring", Service: "prom", Port: 9091})
	require.NoError(t, err)
	_, err = analysis.Fetch(context.Background(), prom.api, analysis.Target{Namespace: "shop", Service: "reviews", Stable: "v1", Canary: "v2"}, time.Minute, time.Now(), prom.where)
	require.ErrorIs(t, err, analysis.ErrNoMetrics)
	assert.Contains(t, err.Error(), "service monitoring/prom:9091 (through the API server's proxy)")
	assert.Equal(t, []string{"/k8s/api/v1/namespaces/monitoring/services/prom:9091/proxy/api/v1/query"}, paths)
	assert.Equal(t, "Bearer kubeconfig-token", auth)

	// The targets API, for the scrape interval, takes the same way.
	paths, auth = nil, ""
	m := prom.ScrapeMinimum(context.Background(), "shop", "reviews", time.Now())
	assert.Equal(t, "/k8s/api/v1/namespaces/monitoring/services/prom:9091/proxy/api/v1/targets", paths[0])
	assert.Equal(t, "Bearer kubeconfig-token", auth)
	assert.Contains(t, m.Unknown, "no active target of Prometheus at service monitoring/prom:9091 (through the API server's proxy) reports shop/reviews")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A verdict other than pass is a VerdictError naming the canary; its exit
// status is the command's (pkg/cmd's exit status table).
func TestVerdictErrors(t *testing.T) {
	assert.NoError(t, Verdict("ns", "svc", analysis.Decision{Verdict: analysis.Pass}))
	fail := Verdict("ns", "svc", analysis.Decision{Verdict: analysis.Fail, Reason: "too many errors"})
	assert.EqualError(t, fail, "canary of ns/svc: fail: too many errors")
	assert.Equal(t, analysis.Inconclusive, Verdict("ns", "svc", analysis.Decision{Verdict: analysis.Inconclusive}).(*VerdictError).Decision.Verdict)
}
