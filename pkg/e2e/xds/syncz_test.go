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

func TestSyncStatusOf(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/syncz" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(syncz))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	st, err := SyncStatusOf(context.Background(), addr, productpage.ProxyID())
	require.NoError(t, err)
	assert.Equal(t, "c1", st.RouteAcked)
	assert.True(t, st.Synced())

	st, err = SyncStatusOf(context.Background(), addr, "stuck.default")
	require.NoError(t, err)
	assert.False(t, st.Synced())

	_, err = SyncStatusOf(context.Background(), addr, "nobody.default")
	assert.ErrorContains(t, err, `no proxy "nobody.default"`)
}
