package xds

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const reviews = "reviews.default.svc.cluster.local"

var productpage = Sidecar("default", "productpage-v1-abc", "10.1.2.3", map[string]string{"app": "productpage", "version": "v1"})

// adsServer is go-control-plane's own ADS server over a snapshot cache on 127.0.0.1, recording
// every request it gets and every response it sends.
type adsServer struct {
	addr  string
	cache cachev3.SnapshotCache

	mu        sync.Mutex
	requests  []*discoveryv3.DiscoveryRequest
	responses []*discoveryv3.DiscoveryResponse
}

func startADSServer(t *testing.T) *adsServer {
	t.Helper()
	s := &adsServer{cache: cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)}
	callbacks := serverv3.CallbackFuncs{
		StreamRequestFunc: func(_ int64, req *discoveryv3.DiscoveryRequest) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.requests = append(s.requests, proto.Clone(req).(*discoveryv3.DiscoveryRequest))
			return nil
		},
		StreamResponseFunc: func(_ context.Context, _ int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.responses = append(s.responses, proto.Clone(resp).(*discoveryv3.DiscoveryResponse))
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, serverv3.NewServer(ctx, s.cache, callbacks))
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(func() { g.Stop(); cancel() })
	s.addr = lis.Addr().String()
	return s
}

// serve publishes a snapshot for the proxy: two clusters, a listener and route config "9080".
func (s *adsServer) serve(t *testing.T, p Proxy, version string, rc *routev3.RouteConfiguration) {
	t.Helper()
	snap, err := cachev3.NewSnapshot(version, map[resourcev3.Type][]types.Resource{
		resourcev3.ClusterType: {
			&clusterv3.Cluster{Name: OutboundCluster(reviews, 9080, "v1")},
			&clusterv3.Cluster{Name: OutboundCluster(reviews, 9080, "v2")},
		},
		resourcev3.ListenerType: {&listenerv3.Listener{Name: "0.0.0.0_9080"}},
		resourcev3.RouteType:    {rc},
	})
	require.NoError(t, err)
	require.NoError(t, s.cache.SetSnapshot(context.Background(), p.NodeID(), snap))
}

func (s *adsServer) seen() ([]*discoveryv3.DiscoveryRequest, []*discoveryv3.DiscoveryResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests), slices.Clone(s.responses)
}

// acked reports whether the server got an ACK of every response it sent of typeURL: a later
// request carrying that response's version and nonce.
func (s *adsServer) acked(typeURL string) bool {
	reqs, resps := s.seen()
	sent := 0
	for _, resp := range resps {
		if resp.GetTypeUrl() != typeURL {
			continue
		}
		sent++
		if !slices.ContainsFunc(reqs, func(r *discoveryv3.DiscoveryRequest) bool {
			return r.GetTypeUrl() == typeURL && r.GetResponseNonce() == resp.GetNonce() && r.GetVersionInfo() == resp.GetVersionInfo()
		}) {
			return false
		}
	}
	return sent > 0
}

// reviewsRoutes is what Istio generates for a 90/10 canary of reviews with a header route for
// one user and a mirror to v3, plus a direct response, in Envoy's own types.
func reviewsRoutes(v1, v2 uint32) *routev3.RouteConfiguration {
	weighted := func(subset string, w uint32) *routev3.WeightedCluster_ClusterWeight {
		return &routev3.WeightedCluster_ClusterWeight{Name: OutboundCluster(reviews, 9080, subset), Weight: wrapperspb.UInt32(w)}
	}
	return &routev3.RouteConfiguration{
		Name: "9080",
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    reviews + ":9080",
			Domains: []string{reviews, "reviews", "reviews.default"},
			Routes: []*routev3.Route{
				{
					Name: "jason",
					Match: &routev3.RouteMatch{
						PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
						CaseSensitive: wrapperspb.Bool(true),
						Headers: []*routev3.HeaderMatcher{
							{Name: "end-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
								StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "jason"}}}},
							{Name: "x-canary", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
								StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{
									SafeRegex: &matcherv3.RegexMatcher{Regex: "on|yes"}}}}},
							{Name: "x-legacy", InvertMatch: true, HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}},
						},
						QueryParameters: []*routev3.QueryParameterMatcher{
							{Name: "v", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{
								StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "2"}}}},
							{Name: "debug", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}},
						},
					},
					Action: &routev3.Route_Route{Route: &routev3.RouteAction{
						ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: OutboundCluster(reviews, 9080, "v2")},
					}},
				},
				{
					Name:   "admin",
					Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/admin"}},
					Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 403}},
				},
				{
					Name:  "default",
					Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}, CaseSensitive: wrapperspb.Bool(true)},
					Action: &routev3.Route_Route{Route: &routev3.RouteAction{
						ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
							Clusters: []*routev3.WeightedCluster_ClusterWeight{weighted("v1", v1), weighted("v2", v2)},
						}},
						RequestMirrorPolicies: []*routev3.RouteAction_RequestMirrorPolicy{{
							Cluster: OutboundCluster(reviews, 9080, "v3"),
							RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{
								Numerator: 250_000, Denominator: typev3.FractionalPercent_MILLION}},
						}},
					}},
				},
			},
		}},
	}
}

func dial(t *testing.T, s *adsServer, p Proxy, opts Options) *Client {
	t.Helper()
	opts.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.addr, p, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClientReturnsTheRoutesEnvoyWouldApply(t *testing.T) {
	s := startADSServer(t)
	s.serve(t, productpage, "1", reviewsRoutes(90, 10))
	c := dial(t, s, productpage, Options{})

	rc, err := c.WaitFor(waitCtx(t), "9080", func(RouteConfig) bool { return true })
	require.NoError(t, err)

	want := RouteConfig{
		Name: "9080",
		VirtualHosts: []VirtualHost{{
			Name:    reviews + ":9080",
			Domains: []string{reviews, "reviews", "reviews.default"},
			Routes: []Route{
				{
					Name: "jason",
					Match: Match{
						Prefix:        "/",
						CaseSensitive: true,
						Headers: []HeaderMatch{
							{Name: "end-user", Kind: MatchExact, Value: "jason"},
							{Name: "x-canary", Kind: MatchRegex, Value: "on|yes"},
							{Name: "x-legacy", Kind: MatchPresent, Invert: true},
						},
						QueryParams: []QueryParamMatch{
							{Name: "debug", Kind: MatchPresent},
							{Name: "v", Kind: MatchPrefix, Value: "2"},
						},
					},
					Action:  ActionRoute,
					Cluster: "outbound|9080|v2|" + reviews,
				},
				{
					Name:                 "admin",
					Match:                Match{Path: "/admin", CaseSensitive: true},
					Action:               ActionDirectResponse,
					DirectResponseStatus: 403,
				},
				{
					Name:   "default",
					Match:  Match{Prefix: "/", CaseSensitive: true},
					Action: ActionRoute,
					WeightedClusters: []WeightedCluster{
						{Name: "outbound|9080|v1|" + reviews, Weight: 90},
						{Name: "outbound|9080|v2|" + reviews, Weight: 10},
					},
					Mirrors: []Mirror{{Cluster: "outbound|9080|v3|" + reviews, Percent: 25}},
				},
			},
		}},
	}
	assert.Equal(t, want, rc)

	vh, ok := rc.VirtualHostForDomain("reviews")
	require.True(t, ok)
	assert.Equal(t, map[string]uint32{"v1": 90, "v2": 10}, vh.Routes[2].SubsetWeights())
	assert.Equal(t, map[string]uint32{"outbound|9080|v2|" + reviews: 100}, vh.Routes[0].Weights())

	// The clusters and listeners came as wildcard subscriptions.
	assert.Len(t, c.Resources(ClusterType), 2)
	assert.Contains(t, c.Resources(ListenerType), "0.0.0.0_9080")
}

func TestClientSendsIstioNodeIdentity(t *testing.T) {
	s := startADSServer(t)
	s.serve(t, productpage, "1", reviewsRoutes(90, 10))
	c := dial(t, s, productpage, Options{Routes: []string{"9080"}})

	assert.Equal(t, "sidecar~10.1.2.3~productpage-v1-abc.default~default.svc.cluster.local", c.NodeID())
	assert.Equal(t, "productpage-v1-abc.default", c.ProxyID())
	reqs, _ := s.seen()
	require.NotEmpty(t, reqs)
	node := reqs[0].GetNode()
	require.NotNil(t, node, "the first request carries the node")
	assert.Equal(t, c.NodeID(), node.GetId())
	meta := node.GetMetadata().AsMap()
	assert.Equal(t, "default", meta["NAMESPACE"])
	assert.Equal(t, map[string]any{"app": "productpage", "version": "v1"}, meta["LABELS"])
	assert.Equal(t, DefaultIstioVersion, meta["ISTIO_VERSION"])
	assert.Equal(t, "Kubernetes", meta["CLUSTER_ID"])

	gw := IngressGateway("istio-system", "istio-ingressgateway-xyz", "10.1.2.4", map[string]string{"istio": "ingressgateway"})
	assert.Equal(t, "router~10.1.2.4~istio-ingressgateway-xyz.istio-system~istio-system.svc.cluster.local", gw.NodeID())
}

func TestClientAcksEveryResponse(t *testing.T) {
	s := startADSServer(t)
	s.serve(t, productpage, "1", reviewsRoutes(90, 10))
	c := dial(t, s, productpage, Options{Routes: []string{"9080"}})

	_, err := c.WaitFor(waitCtx(t), "9080", func(RouteConfig) bool { return true })
	require.NoError(t, err)
	for _, typeURL := range []string{ClusterType, ListenerType, RouteType} {
		assert.Eventually(t, func() bool { return s.acked(typeURL) }, 5*time.Second, 10*time.Millisecond, "ACK of %s", typeURL)
		st := c.Sync(typeURL)
		assert.Equal(t, "1", st.Version, typeURL)
		assert.Equal(t, st.Nonce, st.AckedNonce, typeURL)
	}

	// An update reaches WaitFor, and is acknowledged too.
	s.serve(t, productpage, "2", reviewsRoutes(50, 50))
	rc, err := c.WaitFor(waitCtx(t), "9080", func(rc RouteConfig) bool {
		vh, ok := rc.VirtualHost(reviews + ":9080")
		return ok && vh.Routes[2].SubsetWeights()["v2"] == 50
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]uint32{"v1": 50, "v2": 50}, rc.VirtualHosts[0].Routes[2].SubsetWeights())
	assert.Eventually(t, func() bool { return s.acked(RouteType) }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, "2", c.Sync(RouteType).Version)
}

func TestClientWithNoAckNeverAcknowledges(t *testing.T) {
	s := startADSServer(t)
	s.serve(t, productpage, "1", reviewsRoutes(90, 10))
	c := dial(t, s, productpage, Options{NoAck: true})

	_, err := c.WaitFor(waitCtx(t), "9080", func(RouteConfig) bool { return true })
	require.NoError(t, err)
	// A later subscription on the same ordered stream is a barrier: once the server has it, it
	// has every request the client sent before.
	require.NoError(t, c.WatchRoutes("barrier"))
	require.Eventually(t, func() bool {
		reqs, _ := s.seen()
		return slices.ContainsFunc(reqs, func(r *discoveryv3.DiscoveryRequest) bool { return slices.Contains(r.GetResourceNames(), "barrier") })
	}, 5*time.Second, 10*time.Millisecond)

	reqs, resps := s.seen()
	assert.NotEmpty(t, resps)
	for _, r := range reqs {
		assert.Empty(t, r.GetResponseNonce(), "request %v", r)
		assert.Empty(t, r.GetVersionInfo(), "request %v", r)
	}
	for _, typeURL := range []string{ClusterType, ListenerType, RouteType} {
		assert.False(t, s.acked(typeURL), typeURL)
		assert.Empty(t, c.Sync(typeURL).AckedNonce, typeURL)
		assert.Positive(t, c.Sync(typeURL).Responses, typeURL)
	}
}

func TestWaitForReportsTheLastConfigSeen(t *testing.T) {
	s := startADSServer(t)
	s.serve(t, productpage, "1", reviewsRoutes(90, 10))
	c := dial(t, s, productpage, Options{})

	// Long enough for the route to arrive on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.WaitFor(ctx, "9080", func(RouteConfig) bool { return false })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, `route config "9080" never matched`)
	assert.ErrorContains(t, err, "outbound|9080|v1|"+reviews+"=90")

	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.WaitFor(ctx, "http.80", func(RouteConfig) bool { return true })
	assert.ErrorContains(t, err, `route config "http.80" never arrived`)
}

func TestDialFailsWhenNobodyAnswers(t *testing.T) {
	s := startADSServer(t) // no snapshot for this node: the server never answers
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, s.addr, productpage, Options{})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestParseClusterName(t *testing.T) {
	c, err := ParseClusterName("outbound|9080|v1|reviews.default.svc.cluster.local")
	require.NoError(t, err)
	assert.Equal(t, ClusterName{Direction: "outbound", Port: 9080, Subset: "v1", Host: reviews}, c)
	assert.Equal(t, "outbound|9080|v1|"+reviews, c.String())

	c, err = ParseClusterName("outbound|9080||reviews.default.svc.cluster.local")
	require.NoError(t, err)
	assert.Empty(t, c.Subset)

	_, err = ParseClusterName("PassthroughCluster")
	assert.Error(t, err)
	_, err = ParseClusterName("outbound|http|v1|reviews")
	assert.Error(t, err)
}

func TestClientFollowsEDSClustersWhenAsked(t *testing.T) {
	s := startADSServer(t)
	eds := func(name string) *clusterv3.Cluster {
		return &clusterv3.Cluster{
			Name:                 name,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{ServiceName: name},
		}
	}
	v1 := OutboundCluster(reviews, 9080, "v1")
	snap, err := cachev3.NewSnapshot("1", map[resourcev3.Type][]types.Resource{
		resourcev3.ClusterType:  {eds(v1), &clusterv3.Cluster{Name: "PassthroughCluster"}},
		resourcev3.EndpointType: {&endpointv3.ClusterLoadAssignment{ClusterName: v1}},
	})
	require.NoError(t, err)
	require.NoError(t, s.cache.SetSnapshot(context.Background(), productpage.NodeID(), snap))

	c := dial(t, s, productpage, Options{Endpoints: true})
	require.Eventually(t, func() bool { return len(c.Resources(EndpointType)) == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, c.Resources(EndpointType), v1)
	assert.Eventually(t, func() bool { return s.acked(EndpointType) }, 5*time.Second, 10*time.Millisecond)
}
