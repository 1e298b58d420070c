package canary

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// Cluster is the live cluster: the Store of the live mode, and the source of
// the read-only views (status, completion) and of istiod's sync status.
type Cluster struct {
	clients *kube.Clients
}

var _ Store = (*Cluster)(nil)

// Read reads the Service, its Deployments and the routing objects.
func (c *Cluster) Read(ctx context.Context, q Query) (*routing.Snapshot, error) {
	return c.clients.ReadSnapshot(ctx, q.Namespace, q.Service, kube.SnapshotOptions{
		Gateways:         q.Gateways,
		OtherNamespaces:  q.OtherNamespaces,
		WarnIfNotAllowed: q.WarnIfNotAllowed,
		ClusterDomain:    q.ClusterDomain,
		Services:         q.Services,
		GatewayAPIRoutes: q.GatewayAPIRoutes,
		// Every command may act on a Gateway API canary; when an Istio
		// object records the canary in progress, no route is read.
		GatewayAPIRoutesUnlessIstio: true,
	})
}

// Authorise asks the API server about every write at once.
func (c *Cluster) Authorise(ctx context.Context, changes []routing.Change) error {
	return c.clients.CheckPermissions(ctx, changes)
}

// Write sends one write to the API server.
func (c *Cluster) Write(ctx context.Context, change routing.Change, dryRun bool) (*unstructured.Unstructured, error) {
	return c.clients.Write(ctx, change, dryRun)
}

// Reachable asks the API server for its version: an error says it cannot
// be reached (or refuses the request).
func (c *Cluster) Reachable(ctx context.Context) error {
	return c.clients.Core.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error()
}

// IstioClusterID is the cluster ID of the cluster's istiod in namespace,
// which Istio's metrics carry as destination_cluster.
func (c *Cluster) IstioClusterID(ctx context.Context, namespace string) (string, error) {
	return c.clients.IstioClusterID(ctx, namespace)
}

// Reread reads a routing object as the API server has it now.
func (c *Cluster) Reread(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	return c.clients.Reread(ctx, obj)
}
