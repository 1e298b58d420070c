package xds

import (
	"context"
	"fmt"
	"sort"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
)

// Listener is the part of an Envoy listener that decides where a connection goes: for each
// filter chain, the SNI names it matches and either the clusters TCP is proxied to or the
// route configuration HTTP is routed by. Plain values, like RouteConfig.
type Listener struct {
	Name string
	// Address and Port are where the listener listens: a sidecar has one per TCP service port
	// at the service's VIP ("10.0.0.7", 5432), a gateway one per server port at 0.0.0.0.
	Address      string
	Port         uint32
	FilterChains []FilterChain
}

// FilterChain is one filter chain of a listener.
type FilterChain struct {
	Name string
	// ServerNames is the chain's SNI match (TLS routes); empty matches any.
	ServerNames []string
	// TCP is set when the chain ends in a tcp_proxy.
	TCP *TCPProxy
	// RouteConfig is the RDS route configuration an HTTP chain uses.
	RouteConfig string
}

// TCPProxy is a tcp_proxy filter: one cluster, or a weighted split.
type TCPProxy struct {
	Cluster          string
	WeightedClusters []WeightedCluster
}

// Weights maps each cluster the proxy sends connections to onto its weight; a single cluster
// gets 100.
func (p TCPProxy) Weights() map[string]uint32 {
	return Route{Cluster: p.Cluster, WeightedClusters: p.WeightedClusters}.Weights()
}

// SubsetWeights maps each subset of the proxy's split onto its weight, like Route.SubsetWeights.
func (p TCPProxy) SubsetWeights() map[string]uint32 {
	return Route{Cluster: p.Cluster, WeightedClusters: p.WeightedClusters}.SubsetWeights()
}

// String renders the listener compactly, one line per filter chain, for error messages.
func (l Listener) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listener %q %s:%d", l.Name, l.Address, l.Port)
	for _, fc := range l.FilterChains {
		fmt.Fprintf(&b, "\n  chain %q", fc.Name)
		if len(fc.ServerNames) > 0 {
			fmt.Fprintf(&b, " sni=%v", fc.ServerNames)
		}
		switch {
		case fc.TCP != nil && fc.TCP.Cluster != "":
			fmt.Fprintf(&b, " -> tcp %s", fc.TCP.Cluster)
		case fc.TCP != nil:
			parts := make([]string, len(fc.TCP.WeightedClusters))
			for i, wc := range fc.TCP.WeightedClusters {
				parts[i] = fmt.Sprintf("%s=%d", wc.Name, wc.Weight)
			}
			fmt.Fprintf(&b, " -> tcp [%s]", strings.Join(parts, " "))
		case fc.RouteConfig != "":
			fmt.Fprintf(&b, " -> http rds %q", fc.RouteConfig)
		}
	}
	return b.String()
}

// TCPChains returns the chains of the listener that proxy TCP.
func (l Listener) TCPChains() []FilterChain {
	var out []FilterChain
	for _, fc := range l.FilterChains {
		if fc.TCP != nil {
			out = append(out, fc)
		}
	}
	return out
}

// ConvertListener turns Envoy's Listener into the plain form tests assert on. Filters other than
// tcp_proxy and the HTTP connection manager (Istio's telemetry, authorization...) are skipped.
func ConvertListener(in *listenerv3.Listener) Listener {
	out := Listener{Name: in.GetName()}
	if sa := in.GetAddress().GetSocketAddress(); sa != nil {
		out.Address, out.Port = sa.GetAddress(), sa.GetPortValue()
	}
	chains := append([]*listenerv3.FilterChain(nil), in.GetFilterChains()...)
	if in.GetDefaultFilterChain() != nil {
		chains = append(chains, in.GetDefaultFilterChain())
	}
	for _, fc := range chains {
		c := FilterChain{Name: fc.GetName(), ServerNames: append([]string(nil), fc.GetFilterChainMatch().GetServerNames()...)}
		for _, f := range fc.GetFilters() {
			cfg := f.GetTypedConfig()
			if cfg == nil {
				continue
			}
			switch {
			case cfg.MessageIs(&tcpproxyv3.TcpProxy{}):
				tp := &tcpproxyv3.TcpProxy{}
				if cfg.UnmarshalTo(tp) != nil {
					continue
				}
				c.TCP = &TCPProxy{Cluster: tp.GetCluster()}
				for _, wc := range tp.GetWeightedClusters().GetClusters() {
					c.TCP.WeightedClusters = append(c.TCP.WeightedClusters, WeightedCluster{Name: wc.GetName(), Weight: wc.GetWeight()})
				}
			case cfg.MessageIs(&hcmv3.HttpConnectionManager{}):
				hcm := &hcmv3.HttpConnectionManager{}
				if cfg.UnmarshalTo(hcm) == nil {
					c.RouteConfig = hcm.GetRds().GetRouteConfigName()
				}
			}
		}
		out.FilterChains = append(out.FilterChains, c)
	}
	return out
}

// Listeners returns the listeners the server last sent, by name.
func (c *Client) Listeners() map[string]Listener {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.listenersLocked()
}

func (c *Client) listenersLocked() map[string]Listener {
	out := map[string]Listener{}
	for name, m := range c.types[ListenerType].resources {
		out[name] = ConvertListener(m.(*listenerv3.Listener))
	}
	return out
}

// ListenerAt returns the listener at address:port, if the server sent one.
func (c *Client) ListenerAt(address string, port uint32) (Listener, bool) {
	for _, l := range c.Listeners() {
		if l.Address == address && l.Port == port {
			return l, true
		}
	}
	return Listener{}, false
}

// WaitForListener returns the listener at address:port as soon as ok holds for it. When ctx
// ends first, the error shows the listener as last seen, or the addresses the client has.
func (c *Client) WaitForListener(ctx context.Context, address string, port uint32, ok func(Listener) bool) (Listener, error) {
	for {
		c.mu.Lock()
		listeners := c.listenersLocked()
		wait := c.changed
		c.mu.Unlock()
		var found *Listener
		for _, l := range listeners {
			if l.Address == address && l.Port == port {
				found = &l
				break
			}
		}
		if found != nil && ok(*found) {
			return *found, nil
		}
		select {
		case <-wait:
		case <-c.done:
			return Listener{}, fmt.Errorf("xds: waiting for listener %s:%d: %w", address, port, c.Err())
		case <-ctx.Done():
			if found == nil {
				var at []string
				for _, l := range listeners {
					at = append(at, fmt.Sprintf("%s:%d", l.Address, l.Port))
				}
				sort.Strings(at)
				return Listener{}, fmt.Errorf("xds: no listener at %s:%d for %s: %w; listeners: %v", address, port, c.NodeID(), ctx.Err(), at)
			}
			return *found, fmt.Errorf("xds: listener at %s:%d never matched for %s: %w; last seen:\n%s", address, port, c.NodeID(), ctx.Err(), found)
		}
	}
}
