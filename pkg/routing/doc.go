// Package routing is the pure core of kubectl-canary: given a snapshot of a
// Service, the Deployments of its namespace and the live VirtualServices and
// DestinationRules, and an intent (start, weight, promote, abort), it returns
// the routing objects as they must become. It holds no client and does no I/O,
// so every decision it makes can be table-tested and fuzzed.
//
// Routing objects are handled as unstructured data on purpose: a typed
// read-modify-write through istio.io/client-go drops every field its Go structs
// do not know, and the plugin must give back everything it does not own.
package routing
