// Package routing is the pure core of kubectl-canary: given a snapshot of a
// Service, the Deployments of its namespace and the live VirtualServices and
// DestinationRules, and an intent (start, weight, promote, abort), it returns
// the routing objects as they must become. It holds no client and does no I/O,
// so every decision it makes can be table-tested and fuzzed.
//
// The planner (plan.go, start.go, running.go, finish.go) decides what does
// not depend on the routing API: the versions behind the Service, stable
// and canary, the weight, the canary's recorded state (state.go) and its
// phases. A backend (backend.go) reads and shapes the objects of one
// routing API; istio_*.go is Istio's, for VirtualServices and
// DestinationRules, gatewayapi_*.go the Kubernetes Gateway API's, for
// HTTPRoutes, GRPCRoutes, TCPRoutes and TLSRoutes with a Service per
// version.
//
// Routing objects are handled as unstructured data on purpose: a typed
// read-modify-write through istio.io/client-go drops every field its Go structs
// do not know, and the plugin must give back everything it does not own.
package routing
