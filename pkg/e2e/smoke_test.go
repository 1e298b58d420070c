//go:build e2e

package e2e

import (
	"os"
	"testing"
)

func TestSmoke(t *testing.T) {
	for _, k := range []string{"KUBECONFIG", "CANARY_E2E_KUBECTL", "PATH", "CANARY_E2E_DIR"} {
		t.Log(k, os.Getenv(k))
	}
}
