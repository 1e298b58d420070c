//go:build tools

// Package tools pins the kube-apiserver and kubectl that hack/cluster.sh and
// hack/e2e.sh run. The build tag keeps this file out of every normal build;
// the blank imports keep `go mod tidy` from dropping the requirements.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
