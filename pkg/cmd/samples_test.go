package cmd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// TestAbortOfAnAdoptedSplitSaysHowToReturn runs check, start and abort on
// Istio's tcp-echo sample at 80/20 (manifest files, no cluster): check
// refuses what start would, abort sends v2's pre-start 20% to v1 and says
// so, with the start that returns to that split. (The objects have no
// namespace: they are read in the connection's, shop.)
func TestAbortOfAnAdoptedSplitSaysHowToReturn(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"tcp-echo-services.yaml", "tcp-echo-20-v2.yaml"} {
		text, err := os.ReadFile(testutil.Testdata("routing", "samples", "istio", "samples", "tcp-echo", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), text, 0o644))
	}
	// The DestinationRule of the sample's tcp-echo-all-v1.yaml, whose
	// VirtualService tcp-echo-20-v2.yaml replaces.
	for _, obj := range testutil.ReadObjects(t, testutil.Testdata("routing", "samples", "istio", "samples", "tcp-echo", "tcp-echo-all-v1.yaml")) {
		if obj.GetKind() == "DestinationRule" {
			text, err := yaml.Marshal(obj.Object)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "destination-rule.yaml"), text, 0o644))
		}
	}
	local := func(args ...string) []string { return append(args, "-f", dir, "--local") }

	stdout, _, err := runLocal(local("check", "tcp-echo")...)
	require.Error(t, err, "start without --canary would refuse: the routes split between v1 and v2")
	assert.Contains(t, stdout, "already send traffic to several versions ([v1 v2]); pass --stable with the one that serves users today (or, where they split between two, --canary with the other one)")
	_, stderr, err := runLocal(local("start", "tcp-echo", "--dry-run")...)
	require.Error(t, err, stderr)
	assert.Contains(t, err.Error(), "pass --stable")

	stdout, stderr, err = runLocal(local("check", "tcp-echo", "--canary", "v2")...)
	require.NoError(t, err, stderr)
	assert.Contains(t, stdout, "no findings, ready for a canary")

	_, stderr, err = runLocal(local("start", "tcp-echo", "--canary", "v2", "--stable", "v1", "--weight", "10")...)
	require.NoError(t, err, stderr)
	stdout, stderr, err = runLocal(local("abort", "tcp-echo")...)
	require.NoError(t, err, stderr)
	assert.Contains(t, stdout, "canary shop/tcp-echo aborted: stable version=v1 gets 100% of the traffic again\n")
	assert.Contains(t, stdout, "Note: before the canary started, VirtualService shop/tcp-echo (tcp route #0) gave canary version=v2 20% of its traffic; abort sent that share to stable version=v1 too\n")
	assert.Contains(t, stdout, "To return to that split: kubectl canary start tcp-echo -f "+dir+" --local --canary v2 --stable v1 --weight 20 (a canary again, at that share), or kubectl apply the manifest that gave it\n")

	vs := testutil.ReadObjects(t, filepath.Join(dir, "tcp-echo-20-v2.yaml"))
	require.Len(t, vs, 1)
	route := vs[0].Object["spec"].(map[string]interface{})["tcp"].([]interface{})[0].(map[string]interface{})["route"].([]interface{})
	weights := map[string]int64{}
	for _, d := range route {
		d := d.(map[string]interface{})
		weights[d["destination"].(map[string]interface{})["subset"].(string)] = d["weight"].(int64)
	}
	assert.Equal(t, map[string]int64{"v1": 100, "v2": 0}, weights)
}
