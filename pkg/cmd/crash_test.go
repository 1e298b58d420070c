package cmd

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"
)

// failWrite makes the n-th write (create or update) of routing objects fail,
// as if the plugin died right before it.
func (f *fakeCluster) failWrite(n int) {
	count := 0
	fail := func(action clienttesting.Action) (bool, runtime.Object, error) {
		if isDryRun(action) {
			return false, nil, nil
		}
		count++
		if count == n {
			return true, nil, errors.New("injected: the plugin died here")
		}
		return false, nil, nil
	}
	f.dynamic.PrependReactor("create", "*", fail)
	f.dynamic.PrependReactor("update", "*", fail)
}

// assertRoutesNameExistingSubsets is the crash-consistency invariant: every
// destination of every VirtualService names a subset some DestinationRule
// defines, so no request is routed to nothing.
func (f *fakeCluster) assertRoutesNameExistingSubsets(t *testing.T) {
	t.Helper()
	drs, err := f.dynamic.Resource(drGVR).Namespace(f.namespace).List(context.Background(), metav1ListOptions)
	require.NoError(t, err)
	defined := map[string]bool{}
	for _, dr := range drs.Items {
		subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
		for _, s := range subsets {
			defined[s.(map[string]interface{})["name"].(string)] = true
		}
	}
	vss, err := f.dynamic.Resource(vsGVR).Namespace(f.namespace).List(context.Background(), metav1ListOptions)
	require.NoError(t, err)
	for _, vs := range vss.Items {
		for _, kind := range []string{"http", "tcp", "tls"} {
			routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", kind)
			for _, r := range routes {
				for _, d := range r.(map[string]interface{})["route"].([]interface{}) {
					subset, _, _ := unstructured.NestedString(d.(map[string]interface{}), "destination", "subset")
					assert.True(t, subset == "" || defined[subset], "VirtualService %s routes to subset %q that does not exist", vs.GetName(), subset)
				}
			}
		}
	}
}

func (f *fakeCluster) specs(t *testing.T) map[string]interface{} {
	out := map[string]interface{}{}
	for _, gvr := range []schema.GroupVersionResource{vsGVR, drGVR} {
		list, err := f.dynamic.Resource(gvr).Namespace(f.namespace).List(context.Background(), metav1ListOptions)
		require.NoError(t, err)
		for _, obj := range list.Items {
			out[obj.GetKind()+"/"+obj.GetName()] = obj.Object["spec"]
		}
	}
	return out
}

// TestDyingBetweenWritesKeepsTrafficFlowingAndTheRerunConverges kills each
// write of start, promote and abort in turn: traffic never names a missing
// subset, and running the same command again ends where an undisturbed run does.
func TestDyingBetweenWritesKeepsTrafficFlowingAndTheRerunConverges(t *testing.T) {
	flows := []struct {
		fixture, namespace string
		before             [][]string
		command            []string
	}{
		{"no-istio", "shop", nil, []string{"start", "reviews"}},
		{"no-istio", "shop", [][]string{{"start", "reviews"}}, []string{"promote", "reviews"}},
		{"no-istio", "shop", [][]string{{"start", "reviews"}}, []string{"abort", "reviews"}},
		{"bookinfo-adopted", "bookinfo", nil, []string{"start", "reviews", "--canary", "v3"}},
		{"bookinfo-adopted", "bookinfo", [][]string{{"start", "reviews", "--canary", "v3"}}, []string{"promote", "reviews"}},
		{"bookinfo-adopted", "bookinfo", [][]string{{"start", "reviews", "--canary", "v3", "--header", "x-tester=yes"}}, []string{"abort", "reviews"}},
		{"hosts-and-gateway", "prod", nil, []string{"start", "web", "--gateway", "istio-system/public-gateway", "--host", "shop.example.com"}},
	}
	for _, flow := range flows {
		setup := func() *fakeCluster {
			f := newFakeCluster(t, flow.fixture, flow.namespace)
			for _, args := range flow.before {
				_, _, err := f.run(args...)
				require.NoError(t, err)
			}
			return f
		}
		reference := setup()
		_, _, err := reference.run(flow.command...)
		require.NoError(t, err)
		writes := len(reference.writes()) - len(setup().writes())
		require.Greater(t, writes, 0)
		want := reference.specs(t)
		for n := 1; n <= writes; n++ {
			f := setup()
			f.failWrite(n)
			_, _, err := f.run(flow.command...)
			require.Error(t, err, "%v: write %d fails", flow.command, n)
			f.assertRoutesNameExistingSubsets(t)

			f.dynamic.ReactionChain = f.dynamic.ReactionChain[2:] // the plugin is back
			_, _, err = f.run(flow.command...)
			require.NoError(t, err, "%v: rerun after dying at write %d", flow.command, n)
			f.assertRoutesNameExistingSubsets(t)
			assert.Equal(t, want, f.specs(t), "%v: rerun after dying at write %d converges", flow.command, n)
		}
	}
}
