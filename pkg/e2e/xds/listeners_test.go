package xds

import (
	"context"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const cart = "cart.default.svc.cluster.local"

func typed(t *testing.T, name string, m proto.Message) *listenerv3.Filter {
	t.Helper()
	a, err := anypb.New(m)
	require.NoError(t, err)
	return &listenerv3.Filter{Name: name, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}}
}

// cartListeners is what Istio sends a sidecar for a Service with a TCP port split 70/30 (at its
// VIP, behind a telemetry filter) and a TLS port routed by SNI, and a gateway's HTTP listener.
func cartListeners(t *testing.T) []types.Resource {
	t.Helper()
	socket := func(address string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: address, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	stats, err := structpb.NewStruct(map[string]any{"type_url": "type.googleapis.com/stats.PluginConfig"})
	require.NoError(t, err)
	statsAny, err := anypb.New(stats)
	require.NoError(t, err)
	return []types.Resource{
		&listenerv3.Listener{
			Name:    "10.0.0.7_5432",
			Address: socket("10.0.0.7", 5432),
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{
				{Name: "istio.stats", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: statsAny}},
				typed(t, "envoy.filters.network.tcp_proxy", &tcpproxyv3.TcpProxy{
					StatPrefix: "outbound|5432||" + cart,
					ClusterSpecifier: &tcpproxyv3.TcpProxy_WeightedClusters{WeightedClusters: &tcpproxyv3.TcpProxy_WeightedCluster{
						Clusters: []*tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{
							{Name: OutboundCluster(cart, 5432, "v1"), Weight: 70},
							{Name: OutboundCluster(cart, 5432, "v2"), Weight: 30},
						},
					}},
				}),
			}}},
		},
		&listenerv3.Listener{
			Name:    "10.0.0.7_443",
			Address: socket("10.0.0.7", 443),
			FilterChains: []*listenerv3.FilterChain{{
				FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{cart}},
				Filters: []*listenerv3.Filter{typed(t, "envoy.filters.network.tcp_proxy", &tcpproxyv3.TcpProxy{
					ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: OutboundCluster(cart, 443, "v1")},
				})},
			}},
		},
		&listenerv3.Listener{
			Name:    "0.0.0.0_80",
			Address: socket("0.0.0.0", 80),
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{typed(t, "envoy.filters.network.http_connection_manager", &hcmv3.HttpConnectionManager{
				RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "http.80"}},
			})}}},
		},
	}
}

func TestClientReturnsTheListenersEnvoyWouldApply(t *testing.T) {
	s := startADSServer(t)
	snap, err := cachev3.NewSnapshot("1", map[resourcev3.Type][]types.Resource{resourcev3.ListenerType: cartListeners(t)})
	require.NoError(t, err)
	require.NoError(t, s.cache.SetSnapshot(context.Background(), productpage.NodeID(), snap))
	c := dial(t, s, productpage, Options{})

	tcp, err := c.WaitForListener(waitCtx(t), "10.0.0.7", 5432, func(Listener) bool { return true })
	require.NoError(t, err)
	assert.Equal(t, Listener{Name: "10.0.0.7_5432", Address: "10.0.0.7", Port: 5432, FilterChains: []FilterChain{{
		TCP: &TCPProxy{WeightedClusters: []WeightedCluster{{Name: OutboundCluster(cart, 5432, "v1"), Weight: 70}, {Name: OutboundCluster(cart, 5432, "v2"), Weight: 30}}},
	}}}, tcp)
	require.Len(t, tcp.TCPChains(), 1)
	assert.Equal(t, map[string]uint32{"v1": 70, "v2": 30}, tcp.TCPChains()[0].TCP.SubsetWeights())

	tls, ok := c.ListenerAt("10.0.0.7", 443)
	require.True(t, ok)
	assert.Equal(t, []FilterChain{{ServerNames: []string{cart}, TCP: &TCPProxy{Cluster: OutboundCluster(cart, 443, "v1")}}}, tls.FilterChains)
	assert.Equal(t, map[string]uint32{OutboundCluster(cart, 443, "v1"): 100}, tls.FilterChains[0].TCP.Weights())

	http, ok := c.ListenerAt("0.0.0.0", 80)
	require.True(t, ok)
	assert.Equal(t, []FilterChain{{RouteConfig: "http.80"}}, http.FilterChains)
	assert.Empty(t, http.TCPChains())
	assert.Len(t, c.Listeners(), 3)
}

func TestWaitForListenerReportsWhatItSaw(t *testing.T) {
	s := startADSServer(t)
	snap, err := cachev3.NewSnapshot("1", map[resourcev3.Type][]types.Resource{resourcev3.ListenerType: cartListeners(t)})
	require.NoError(t, err)
	require.NoError(t, s.cache.SetSnapshot(context.Background(), productpage.NodeID(), snap))
	c := dial(t, s, productpage, Options{})

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.WaitForListener(ctx, "10.0.0.7", 5432, func(l Listener) bool { return l.TCPChains()[0].TCP.SubsetWeights()["v2"] == 50 })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "listener at 10.0.0.7:5432 never matched")
	assert.Contains(t, err.Error(), "outbound|5432|v2|"+cart+"=30")

	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	_, err = c.WaitForListener(ctx2, "10.0.0.8", 5432, func(Listener) bool { return true })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no listener at 10.0.0.8:5432")
	assert.Contains(t, err.Error(), "10.0.0.7:5432")
}
