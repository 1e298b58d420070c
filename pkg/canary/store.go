package canary

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// Store is where the objects of a canary live and are written: the live
// cluster today; manifest files and several clusters are other Stores, so
// the Engine never branches on where it writes.
//
// Errors follow the Kubernetes API's: a write that lost a race with another
// writer is a Conflict (or AlreadyExists), a refused one Forbidden; the
// Engine re-plans after the first and explains the second.
type Store interface {
	// Read reads everything the routing core plans against.
	Read(ctx context.Context, q Query) (*routing.Snapshot, error)
	// Authorise tells, before the first write, whether every changed object
	// of the plan may be written, naming each that may not.
	Authorise(ctx context.Context, changes []routing.Change) error
	// Write creates or updates one object of a plan, optimistically: an
	// update carries the version read. dryRun has it validated only.
	Write(ctx context.Context, change routing.Change, dryRun bool) (*unstructured.Unstructured, error)
}

// Query says what Read reads besides the Service, its Deployments and the
// routing objects of its namespace.
type Query struct {
	Namespace string
	Service   string
	// Gateways are the Istio Gateways the intent names.
	Gateways []types.NamespacedName
	// OtherNamespaces also reads the VirtualServices of other namespaces
	// that route the Service (start records them for the commands after it);
	// WarnIfNotAllowed warns when that is forbidden. ClusterDomain resolves
	// their host names.
	OtherNamespaces  bool
	WarnIfNotAllowed bool
	ClusterDomain    string
	// Services also reads every Service of the namespace (check).
	Services bool
	// GatewayAPIRoutes also reads the namespace's Gateway API routes, its
	// Services and the Namespace, which start and check choose the routing
	// API by. Commands on a running canary read the routes and Services
	// whenever no Istio object records the canary in progress.
	GatewayAPIRoutes bool
}
