package xds

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// SyncStatus is one proxy's entry in istiod's /debug/syncz: per type, the nonce istiod sent
// last and the one the proxy acknowledged last.
type SyncStatus struct {
	ProxyID       string `json:"proxy"` // POD.NAMESPACE, see Client.ProxyID
	ProxyType     string `json:"proxy_type"`
	IstioVersion  string `json:"istio_version"`
	ClusterSent   string `json:"cluster_sent"`
	ClusterAcked  string `json:"cluster_acked"`
	ListenerSent  string `json:"listener_sent"`
	ListenerAcked string `json:"listener_acked"`
	RouteSent     string `json:"route_sent"`
	RouteAcked    string `json:"route_acked"`
	EndpointSent  string `json:"endpoint_sent"`
	EndpointAcked string `json:"endpoint_acked"`
}

// Synced reports whether the proxy acknowledged the latest response of every type istiod sent
// it, which is what istioctl proxy-status calls SYNCED.
func (s SyncStatus) Synced() bool {
	return s.ClusterSent == s.ClusterAcked && s.ListenerSent == s.ListenerAcked &&
		s.RouteSent == s.RouteAcked && s.EndpointSent == s.EndpointAcked
}

// Syncz reads istiod's /debug/syncz from its HTTP debug address (--httpAddr, host:port).
func Syncz(ctx context.Context, debugAddr string) ([]SyncStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+debugAddr+"/debug/syncz", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("xds: syncz: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("xds: syncz: %s", resp.Status)
	}
	var out []SyncStatus
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("xds: syncz: %w", err)
	}
	return out, nil
}

// SyncStatusOf returns the syncz entry of one proxy (see Client.ProxyID); an error when istiod
// does not list it.
func SyncStatusOf(ctx context.Context, debugAddr, proxyID string) (SyncStatus, error) {
	all, err := Syncz(ctx, debugAddr)
	if err != nil {
		return SyncStatus{}, err
	}
	for _, s := range all {
		if s.ProxyID == proxyID {
			return s, nil
		}
	}
	return SyncStatus{}, fmt.Errorf("xds: istiod at %s lists no proxy %q in /debug/syncz", debugAddr, proxyID)
}
