//go:build tools

// Package tools pins Istio's control plane (pilot-discovery, run as istiod by
// `hack/cluster.sh up DIR --istiod`) and istioctl (Istio's offline validator
// and analyzers). It is its own module so that Istio's Kubernetes libraries
// never meet the ones the plugin or the cluster tools use.
package tools

import (
	_ "istio.io/istio/istioctl/cmd/istioctl"
	_ "istio.io/istio/pilot/cmd/pilot-discovery"
)
