package analysis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func explainingAPI(t *testing.T, handler http.HandlerFunc, at PrometheusAddress) promv1.API {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	if at.URL != "" {
		at.URL = srv.URL
	}
	client, err := NewExplainingClient(srv.URL, srv.Client(), at)
	require.NoError(t, err)
	return promv1.NewAPI(client)
}

// Prometheus's own answers pass through: its error for a bad query is not
// taken for a wrong address, and a Prometheus that takes only GET is asked
// again with GET, as client_golang does.
func TestPrometheusOwnAnswersPassThrough(t *testing.T) {
	direct := PrometheusAddress{URL: "set by explainingAPI"}
	badQuery := explainingAPI(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"parse error at char 5"}`)
	}, direct)
	_, _, _, err := badQuery.Query(context.Background(), "sum(", time.Now())
	require.Error(t, err)
	var explained *PrometheusError
	assert.False(t, errors.As(err, &explained), "a bad query is Prometheus's own answer: %v", err)
	assert.Contains(t, err.Error(), "parse error at char 5")

	onlyGET := explainingAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}, direct)
	has, err := HasSeries(context.Background(), onlyGET, Target{Namespace: "shop", Service: "reviews"}, time.Now(), "here")
	require.NoError(t, err)
	assert.False(t, has)
}

// A JSON answer that is not Prometheus's (another service's API), and a
// URL's password, which is never shown.
func TestPrometheusErrorsNameTheAddress(t *testing.T) {
	at := PrometheusAddress{URL: "https://jane:s3cret@prom.example.com:9090"}
	assert.Equal(t, "https://jane:xxxxx@prom.example.com:9090", at.String())
	assert.Equal(t, "service monitoring/prom:9091 (through the API server's proxy)", PrometheusAddress{Namespace: "monitoring", Service: "prom", Port: 9091}.String())

	other := explainingAPI(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"version":"10.2.0","database":"ok"}`)
	}, PrometheusAddress{URL: "set"})
	_, err := HasSeries(context.Background(), other, Target{Namespace: "shop", Service: "reviews"}, time.Now(), "here")
	var explained *PrometheusError
	require.True(t, errors.As(err, &explained), "%v", err)
	assert.Equal(t, PrometheusNotAPI, explained.Problem)
	assert.Contains(t, err.Error(), `answered, but not as Prometheus's HTTP API (HTTP 200 for /api/v1/query: application/json, {"version":"10.2.0","database":"ok"})`)
}

// A URL that does not parse may still hold a password: no message shows it.
func TestUnparsableAddressKeepsItsPassword(t *testing.T) {
	_, err := NewClient("http://admin:s3cret@127.0.0.1:9090/%zz", nil)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
	assert.NotContains(t, PrometheusAddress{URL: "http://admin:s3cret@127.0.0.1:9090/%zz"}.String(), "s3cret")
	assert.Equal(t, "http://admin:xxxxx@127.0.0.1:9090", PrometheusAddress{URL: "http://admin:s3cret@127.0.0.1:9090"}.String())
}
