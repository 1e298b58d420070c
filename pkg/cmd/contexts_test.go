package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
)

// runOnContexts runs `kubectl canary ARGS` with a context per fake cluster.
func runOnContexts(clusters map[string]*fakeCluster, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	g := &globalOptions{conn: canary.ConnectWith(clusters["east"]), syncReadTooSoon: fakeSyncReadTooSoon, IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}}
	g.contextConnections = func(contexts []string, all bool) ([]canary.ContextConnection, error) {
		var conns []canary.ContextConnection
		for _, name := range contexts {
			conns = append(conns, canary.ContextConnection{Context: name, Connection: canary.ConnectWith(clusters[name])})
		}
		return conns, nil
	}
	cmd := newCmdCanary(g)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestContextsReportEachClusterAndGroupObjects(t *testing.T) {
	clusters := map[string]*fakeCluster{"east": newFakeCluster(t, "no-istio", "shop"), "west": newFakeCluster(t, "no-istio", "shop")}
	out, stderr, err := runOnContexts(clusters, "start", "reviews", "--contexts", "east,west")
	require.NoError(t, err, stderr)
	for _, name := range []string{"east", "west"} {
		assert.Contains(t, out, "["+name+"] virtualservice.networking.istio.io/reviews created\n")
		assert.Contains(t, out, "["+name+"] canary shop/reviews started: canary version=v2 gets 10%")
		assert.Equal(t, []int64{90, 10}, weightsOf(t, clusters[name].get(vsGVR, "reviews"), "http", 0), name)
	}

	out, stderr, err = runOnContexts(clusters, "weight", "reviews", "30", "--contexts", "east,west", "-o", "json")
	require.NoError(t, err, stderr)
	var grouped struct {
		Clusters []struct {
			Context string
			Objects []map[string]any
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &grouped), out)
	require.Len(t, grouped.Clusters, 2)
	for _, c := range grouped.Clusters {
		assert.NotEmpty(t, c.Objects, c.Context)
	}

	out, _, err = runOnContexts(clusters, "status", "--contexts", "east,west")
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, rows, 3, out)
	assert.Regexp(t, `^CLUSTER\s+SERVICE`, rows[0])
	assert.Regexp(t, `^east\s+reviews\s+v1\s+v2\s+30%`, rows[1])
}
