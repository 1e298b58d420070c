// Package xds is a small xDS client for end-to-end tests: it connects to istiod the way an
// Envoy sidecar or ingress gateway does and reports the routes Envoy would apply, so a test
// can check what a canary release really does to traffic rather than what it wrote to the
// API server.
//
// It speaks state-of-the-world ADS over plaintext gRPC (istiod's --grpcAddr), subscribes like
// Envoy (clusters and listeners as wildcards, the route configurations asked for, endpoints
// optionally) and acknowledges every response, so istiod's /debug/syncz lists it as synced.
package xds

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	// Responses are decoded by type URL, which finds only linked-in types:
	// the package's own tests linked these, a test using it may not.
	_ "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Type URLs of the resources the client subscribes to.
const (
	ClusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	ListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	RouteType    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

// DefaultIstioVersion is the ISTIO_VERSION the client reports unless told otherwise. istiod
// gates some generated config on the proxy's version; the pinned istio module is 1.31.
const DefaultIstioVersion = "1.31.0"

// NodeType is the first field of an Istio node ID.
type NodeType string

const (
	SidecarNode NodeType = "sidecar"
	RouterNode  NodeType = "router" // gateways
)

// Proxy is the workload the client pretends to be. istiod finds no such pod (a test cluster
// has no kubelet), so it takes the namespace and labels from the node metadata built here.
type Proxy struct {
	Type      NodeType
	Namespace string
	Name      string // the pod name
	IP        string
	Labels    map[string]string
}

// Sidecar is the sidecar of pod name in namespace, e.g.
// Sidecar("default", "productpage-abc", "10.1.2.3", map[string]string{"app": "productpage"}).
func Sidecar(namespace, name, ip string, labels map[string]string) Proxy {
	return Proxy{Type: SidecarNode, Namespace: namespace, Name: name, IP: ip, Labels: labels}
}

// IngressGateway is a gateway pod; labels must match the Gateway's selector (for example
// istio=ingressgateway). Without a Service selecting a real pod, istiod cannot translate
// Gateway ports to target ports, so a Gateway server on port 80 yields route config "http.80".
func IngressGateway(namespace, name, ip string, labels map[string]string) Proxy {
	return Proxy{Type: RouterNode, Namespace: namespace, Name: name, IP: ip, Labels: labels}
}

// NodeID is the Envoy node ID istiod parses: TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local.
func (p Proxy) NodeID() string {
	return fmt.Sprintf("%s~%s~%s~%s.svc.cluster.local", p.Type, p.IP, p.ProxyID(), p.Namespace)
}

// ProxyID is how istiod names the proxy in /debug/syncz ("proxy"): POD.NAMESPACE.
func (p Proxy) ProxyID() string {
	return p.Name + "." + p.Namespace
}

// Options tune a client. The zero value subscribes to no route configuration up front (WaitFor
// subscribes on demand) and acknowledges everything.
type Options struct {
	// Routes are route configuration names to subscribe to from the start, e.g. "9080" for a
	// sidecar's port 9080 or "http.80" for a gateway.
	Routes []string
	// Endpoints subscribes to the endpoints of every EDS cluster, as Envoy does.
	Endpoints bool
	// NoAck never acknowledges a response, like a proxy stuck applying config. Subscriptions
	// are still sent, as initial requests without a nonce, which istiod does not count as ACKs.
	NoAck bool
	// IstioVersion defaults to DefaultIstioVersion; ClusterID to "Kubernetes".
	IstioVersion string
	ClusterID    string
	// Logf, when set, gets one line per request sent and response received (pass t.Logf).
	Logf func(format string, args ...any)
}

// SyncState is what the client knows of one resource type's exchange with the server.
type SyncState struct {
	Version    string // version_info of the latest response
	Nonce      string // nonce of the latest response
	AckedNonce string // nonce of the latest response acknowledged; empty with Options.NoAck
	Responses  int
}

// Client is one ADS stream. It is safe for concurrent use.
type Client struct {
	proxy  Proxy
	opts   Options
	node   *corev3.Node
	conn   *grpc.ClientConn
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	cancel context.CancelFunc
	done   chan struct{} // closed when the receive loop ends

	// sendMu orders sends: gRPC streams allow one sender at a time, and an ACK must carry the
	// latest nonce, so recording a nonce and sending the request that uses it happen together.
	sendMu sync.Mutex

	mu        sync.Mutex
	types     map[string]*typeState
	changed   chan struct{} // closed and replaced whenever resources change
	streamErr error         // why the stream ended
}

type typeState struct {
	names     []string // subscribed names; nil for the wildcard types
	sync      SyncState
	resources map[string]proto.Message
}

// Dial opens an ADS stream to addr (host:port of istiod's plaintext gRPC server) as proxy p and
// waits, within ctx, for the first response, so that a refused identity fails here. The stream
// outlives ctx; end it with Close.
func Dial(ctx context.Context, addr string, p Proxy, opts Options) (*Client, error) {
	if opts.IstioVersion == "" {
		opts.IstioVersion = DefaultIstioVersion
	}
	if opts.ClusterID == "" {
		opts.ClusterID = "Kubernetes"
	}
	node, err := buildNode(p, opts)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("xds: dial %s: %w", addr, err)
	}
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(streamCtx)
	if err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("xds: open ADS stream to %s: %w", addr, err)
	}
	c := &Client{
		proxy: p, opts: opts, node: node, conn: conn, stream: stream, cancel: cancel,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		types: map[string]*typeState{
			ClusterType:  {},
			ListenerType: {},
			RouteType:    {names: slices.Clone(opts.Routes)},
			EndpointType: {},
		},
	}
	firstResponse := c.changed // taken before any response can replace it
	go c.receive()
	if err := c.subscribe(); err != nil {
		c.Close()
		return nil, err
	}
	return c.awaitFirstResponse(ctx, firstResponse, addr)
}

// subscribe asks for clusters, listeners and the routes of opts.Routes.
// Envoy sends the node only on the first request of a stream; istiod reads
// it from there.
func (c *Client) subscribe() error {
	first := true
	for _, typeURL := range []string{ClusterType, ListenerType, RouteType} {
		if typeURL == RouteType && len(c.opts.Routes) == 0 {
			continue // an empty RDS request would mean "unsubscribe"
		}
		c.sendMu.Lock()
		err := c.sendLocked(typeURL, first)
		c.sendMu.Unlock()
		if err != nil {
			return err
		}
		first = false
	}
	return nil
}

// awaitFirstResponse waits for istiod's first answer, closing the client
// when none comes.
func (c *Client) awaitFirstResponse(ctx context.Context, firstResponse chan struct{}, addr string) (*Client, error) {
	select {
	case <-firstResponse:
		if err := c.Err(); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	case <-c.done:
		err := c.Err()
		c.Close()
		return nil, err
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("xds: no response from %s as %s: %w", addr, c.proxy.NodeID(), ctx.Err())
	}
}

// buildNode fills in the metadata istiod reads (pkg/model NodeMetadata) for a pod it does not
// know: the namespace, the labels (used to pick Sidecars, Gateways and subsets), the IP.
func buildNode(p Proxy, opts Options) (*corev3.Node, error) {
	labels := map[string]any{}
	for k, v := range p.Labels {
		labels[k] = v
	}
	meta, err := structpb.NewStruct(map[string]any{
		"NAMESPACE":     p.Namespace,
		"LABELS":        labels,
		"ISTIO_VERSION": opts.IstioVersion,
		"CLUSTER_ID":    opts.ClusterID,
		"INSTANCE_IPS":  p.IP,
		"WORKLOAD_NAME": p.Name,
	})
	if err != nil {
		return nil, fmt.Errorf("xds: node metadata: %w", err)
	}
	return &corev3.Node{
		Id:            p.NodeID(),
		Cluster:       p.Name + "." + p.Namespace,
		Metadata:      meta,
		UserAgentName: "envoy",
	}, nil
}

// NodeID is the node ID the client sent.
func (c *Client) NodeID() string { return c.proxy.NodeID() }

// ProxyID is the client's name in istiod's /debug/syncz.
func (c *Client) ProxyID() string { return c.proxy.ProxyID() }

// Sync reports the exchange so far for one type URL.
func (c *Client) Sync(typeURL string) SyncState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts, ok := c.types[typeURL]; ok {
		return ts.sync
	}
	return SyncState{}
}

// Resources returns the latest resources of one type URL by name, decoded. The messages are
// shared: do not modify them.
func (c *Client) Resources(typeURL string) map[string]proto.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]proto.Message{}
	if ts, ok := c.types[typeURL]; ok {
		for name, m := range ts.resources {
			out[name] = m
		}
	}
	return out
}

// Route returns the latest route configuration called name, if the server sent one.
func (c *Client) Route(name string) (RouteConfig, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.routeLocked(name)
}

func (c *Client) routeLocked(name string) (RouteConfig, bool) {
	m, ok := c.types[RouteType].resources[name]
	if !ok {
		return RouteConfig{}, false
	}
	return ConvertRouteConfig(m.(*routev3.RouteConfiguration)), true
}

// WatchRoutes adds route configuration names to the subscription, as Envoy does when a new
// listener refers to them.
func (c *Client) WatchRoutes(names ...string) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.mu.Lock()
	ts := c.types[RouteType]
	before := len(ts.names)
	for _, n := range names {
		if !slices.Contains(ts.names, n) {
			ts.names = append(ts.names, n)
		}
	}
	added := len(ts.names) > before
	c.mu.Unlock()
	if !added {
		return nil
	}
	return c.sendLocked(RouteType, false)
}

// WaitFor subscribes to the route configuration called name if needed and returns it as soon
// as ok holds for it. When ctx ends first, the error shows the last configuration seen.
func (c *Client) WaitFor(ctx context.Context, name string, ok func(RouteConfig) bool) (RouteConfig, error) {
	if err := c.WatchRoutes(name); err != nil {
		return RouteConfig{}, err
	}
	for {
		c.mu.Lock()
		rc, found := c.routeLocked(name)
		wait := c.changed
		c.mu.Unlock()
		if found && ok(rc) {
			return rc, nil
		}
		select {
		case <-wait:
		case <-c.done:
			return rc, fmt.Errorf("xds: waiting for route config %q: %w", name, c.Err())
		case <-ctx.Done():
			if !found {
				return rc, fmt.Errorf("xds: route config %q never arrived for %s: %w", name, c.NodeID(), ctx.Err())
			}
			return rc, fmt.Errorf("xds: route config %q never matched for %s: %w; last seen:\n%s", name, c.NodeID(), ctx.Err(), rc)
		}
	}
}

// Err is why the stream ended, or nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streamErr
}

// Close ends the stream and waits for the client's goroutine.
func (c *Client) Close() error {
	c.cancel()
	err := c.conn.Close()
	<-c.done
	return err
}

// sendLocked sends the current subscription for typeURL with the latest version and nonce,
// which acknowledges the latest response. With NoAck it sends neither, so istiod takes it for
// an initial request. Callers hold sendMu.
func (c *Client) sendLocked(typeURL string, withNode bool) error {
	c.mu.Lock()
	ts := c.types[typeURL]
	req := &discoveryv3.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: slices.Clone(ts.names)}
	if !c.opts.NoAck {
		req.VersionInfo, req.ResponseNonce = ts.sync.Version, ts.sync.Nonce
		ts.sync.AckedNonce = ts.sync.Nonce
	}
	c.mu.Unlock()
	if withNode {
		req.Node = c.node
	}
	c.logf("xds %s: send %s names=%v version=%q nonce=%q", c.proxy.ProxyID(), shortType(typeURL), req.ResourceNames, req.VersionInfo, req.ResponseNonce)
	if err := c.stream.Send(req); err != nil {
		return fmt.Errorf("xds: send %s request: %w", shortType(typeURL), err)
	}
	return nil
}

// receive stores every response and acknowledges it, until the stream ends.
func (c *Client) receive() {
	defer close(c.done)
	for {
		resp, err := c.stream.Recv()
		if err != nil {
			c.mu.Lock()
			c.streamErr = fmt.Errorf("xds: stream of %s ended: %w", c.NodeID(), err)
			c.notifyLocked()
			c.mu.Unlock()
			return
		}
		c.logf("xds %s: recv %s resources=%d version=%q nonce=%q", c.proxy.ProxyID(), shortType(resp.GetTypeUrl()), len(resp.GetResources()), resp.GetVersionInfo(), resp.GetNonce())
		c.sendMu.Lock()
		edsChanged, err := c.store(resp)
		if err == nil && !c.opts.NoAck {
			err = c.sendLocked(resp.GetTypeUrl(), false)
		}
		if err == nil && edsChanged {
			err = c.sendLocked(EndpointType, false)
		}
		c.sendMu.Unlock()
		if err != nil {
			c.mu.Lock()
			c.streamErr = err
			c.notifyLocked()
			c.mu.Unlock()
			c.cancel()
			return
		}
	}
}

// store records a response. State-of-the-world responses for clusters and listeners hold every
// resource, so they replace what was there; those for routes and endpoints may hold only some
// of the subscribed names, so they add to it, as in Envoy. It reports whether the set of EDS
// clusters to watch changed.
func (c *Client) store(resp *discoveryv3.DiscoveryResponse) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts, ok := c.types[resp.GetTypeUrl()]
	if !ok {
		ts = &typeState{}
		c.types[resp.GetTypeUrl()] = ts
	}
	wildcard := resp.GetTypeUrl() == ClusterType || resp.GetTypeUrl() == ListenerType
	if wildcard || ts.resources == nil {
		ts.resources = map[string]proto.Message{}
	}
	for _, a := range resp.GetResources() {
		m, err := a.UnmarshalNew()
		if err != nil {
			return false, fmt.Errorf("xds: decode %s: %w", a.GetTypeUrl(), err)
		}
		name := resourceName(m)
		if name == "" {
			return false, fmt.Errorf("xds: a %s without a name", a.GetTypeUrl())
		}
		ts.resources[name] = m
	}
	ts.sync.Version, ts.sync.Nonce = resp.GetVersionInfo(), resp.GetNonce()
	ts.sync.Responses++
	c.notifyLocked()

	if resp.GetTypeUrl() != ClusterType || !c.opts.Endpoints {
		return false, nil
	}
	var eds []string
	for _, m := range ts.resources {
		cl := m.(*clusterv3.Cluster)
		if cl.GetType() == clusterv3.Cluster_EDS {
			eds = append(eds, cmp.Or(cl.GetEdsClusterConfig().GetServiceName(), cl.GetName()))
		}
	}
	sort.Strings(eds)
	ep := c.types[EndpointType]
	if slices.Equal(eds, ep.names) || len(eds) == 0 {
		return false, nil
	}
	ep.names = eds
	return true, nil
}

func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Client) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// resourceName reads the name xDS keys a resource by: "name" for most types, "cluster_name"
// for endpoints.
func resourceName(m proto.Message) string {
	if n, ok := m.(interface{ GetName() string }); ok {
		return n.GetName()
	}
	if n, ok := m.(interface{ GetClusterName() string }); ok {
		return n.GetClusterName()
	}
	return ""
}

func shortType(typeURL string) string {
	return typeURL[strings.LastIndex(typeURL, ".")+1:]
}
