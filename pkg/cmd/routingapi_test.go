package cmd

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

func TestRoutingAPIFlagIsValidatedBeforeTheClusterIsRead(t *testing.T) {
	for _, verb := range [][]string{{"start", "reviews"}, {"check", "reviews"}} {
		f := newFakeCluster(t, "no-istio", "shop")
		_, _, err := f.run(append(verb, "--routing-api", "gatewayapi")...)
		require.Error(t, err, "%v", verb)
		assert.Equal(t, `--routing-api "gatewayapi" is no routing API; pass auto, istio or gateway-api`, err.Error())
		assert.Empty(t, f.core.Actions(), "%v read the cluster", verb)
	}
}

// --routing-api istio on a Service without routing runs on Istio's API, as
// auto does without the Gateway API; the core's refusals name the flag.
func TestRoutingAPIReachesTheIntent(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews", "--routing-api", "istio")
	require.NoError(t, err)
	assert.Equal(t, "--routing-api", flagOf(routing.FieldRoutingAPI))
}

func TestRoutingAPICompletes(t *testing.T) {
	choices, directive := completions(t, &globalOptions{conn: canary.ConnectWith(servicesCluster(t))}, "start", "reviews", "--routing-api", "")
	assert.Equal(t, []string{"auto", "istio", "gateway-api"}, choices)
	assert.Equal(t, noFiles, directive)
}

func serviceToDelete() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]interface{}{"name": "reviews-v1", "namespace": "shop", "managedFields": []interface{}{map[string]interface{}{"manager": "x"}}},
		"spec":     map[string]interface{}{"selector": map[string]interface{}{"app": "reviews", "version": "v1"}},
	}}
}

// A deletion shows in the dry run's diff as the whole live object removed,
// named as kubectl diff names a core object, without managedFields.
func TestDryRunDiffShowsADeletionRemovedWhole(t *testing.T) {
	t.Setenv("KUBECTL_EXTERNAL_DIFF", "")
	live := serviceToDelete()
	var out bytes.Buffer
	err := printDiff(genericiooptions.IOStreams{Out: &out, ErrOut: &bytes.Buffer{}}, []canary.Outcome{{Change: routing.Change{Live: live, Desired: live.DeepCopy(), Delete: true}, Object: live}})
	require.NoError(t, err)
	assert.Contains(t, out.String(), "/v1.Service.shop.reviews-v1")
	assert.Contains(t, out.String(), "-  name: reviews-v1\n")
	assert.Contains(t, out.String(), "-    version: v1\n")
	assert.Contains(t, out.String(), "@@ -1,9 +0,0 @@", "nothing is added")
	assert.NotContains(t, out.String(), "managedFields")
}

func TestOutcomesOfCoreObjectsAreNamedAsKubectlDoes(t *testing.T) {
	live := serviceToDelete()
	assert.Equal(t, "service/reviews-v1", resourceName(live))
	assert.Equal(t, "deleted", outcomeVerb(canary.Outcome{Change: routing.Change{Live: live, Desired: live, Delete: true}}))
	route := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": map[string]interface{}{"name": "reviews"}}}
	assert.Equal(t, "httproute.gateway.networking.k8s.io/reviews", resourceName(route))
}
