//go:build tools

// Package tools pins the etcd server that hack/cluster.sh runs. It is its own
// module because k8s.io/kubernetes requires a newer etcd server, which would
// win over this pin under minimal version selection if both lived in one module.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
