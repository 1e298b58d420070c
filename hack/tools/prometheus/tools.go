//go:build tools

// Package tools pins the Prometheus server that the analysis e2e tests run
// (hack/build-tools.sh builds it; see hack/README.md).
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
