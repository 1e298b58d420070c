package xds

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A /debug/syncz answer in istiod's format (pilot/pkg/xds/debug.go SyncStatus), trimmed.
const syncz = `[
 {"cluster_id":"Kubernetes","proxy":"productpage-v1-abc.default","proxy_type":"sidecar","istio_version":"1.31.0",
  "cluster_sent":"a1","cluster_acked":"a1","listener_sent":"b1","listener_acked":"b1","route_sent":"c1","route_acked":"c1",
  "resources":{"type.googleapis.com/envoy.config.cluster.v3.Cluster":{"sent":"a1","acked":"a1"}}},
 {"cluster_id":"Kubernetes","proxy":"stuck.default","proxy_type":"sidecar","istio_version":"1.31.0",
  "cluster_sent":"a2","listener_sent":"b2","route_sent":"c2"}
]`

func TestSyncz(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/syncz" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(syncz))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	proxies, err := Syncz(context.Background(), addr)
	require.NoError(t, err)
	require.Len(t, proxies, 2)
	assert.Equal(t, productpage.ProxyID(), proxies[0].ID)
	assert.Equal(t, "c1", proxies[0].RouteAcked)
	assert.Equal(t, "stuck.default", proxies[1].ID)
	assert.Empty(t, proxies[1].RouteAcked)

	srv.Config.Handler = http.NotFoundHandler()
	_, err = Syncz(context.Background(), addr)
	assert.ErrorContains(t, err, "404")
}
