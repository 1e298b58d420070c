//go:build tools

// Package tools pins krew and its manifest validator, which `make
// verify-krew` runs against plugins/canary.yaml. It is its own module so that
// krew's older Kubernetes libraries never meet the ones the plugin or the
// cluster tools use.
package tools

import (
	_ "sigs.k8s.io/krew/cmd/krew"
	_ "sigs.k8s.io/krew/cmd/validate-krew-manifest"
)
