package xds

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/kubectl-canary/kubectl-canary/pkg/meshsync"
)

// Syncz reads istiod's /debug/syncz from its HTTP debug address (--httpAddr,
// host:port) directly, parsed as the plugin's --wait reads it through the
// API server: per proxy (POD.NAMESPACE, see Client.ProxyID), the nonces
// istiod sent and the proxy acknowledged.
func Syncz(ctx context.Context, debugAddr string) ([]meshsync.Proxy, error) {
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
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("xds: syncz: %w", err)
	}
	return meshsync.Parse(body)
}
