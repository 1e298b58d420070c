package cmd

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"
)

// accessReviews counts the SelfSubjectAccessReviews sent so far.
func (f *fakeCluster) accessReviews() int {
	n := 0
	for _, a := range f.core.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "selfsubjectaccessreviews" {
			n++
		}
	}
	return n
}

// Commands that write two objects ask first, every time, whether both writes
// are allowed; start proves its permissions with its server dry run instead.
func TestEveryCommandThatWritesTwoObjectsAsksFirst(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	assert.Equal(t, 0, f.accessReviews(), "start asked although its dry run answers")

	_, _, err = f.run("abort", "reviews")
	require.NoError(t, err)
	assert.Equal(t, 2, f.accessReviews(), "abort updates two objects")
	for _, a := range f.core.Actions() {
		create, ok := a.(clienttesting.CreateAction)
		if !ok {
			continue
		}
		if review, ok := create.GetObject().(*authorizationv1.SelfSubjectAccessReview); ok {
			attrs := *review.Spec.ResourceAttributes
			assert.Equal(t, "reviews", attrs.Name, "updates are asked about by name (RBAC can grant them by name): %+v", attrs)
			assert.Equal(t, "update", attrs.Verb)
		}
	}

	for _, args := range [][]string{{"start", "reviews"}, {"abort", "reviews"}} {
		_, _, err := f.run(args...)
		require.NoError(t, err, "%v", args)
	}
	assert.Equal(t, 4, f.accessReviews(), "the second abort asks again")
}

// A permission revoked between the question and the write shows up as a
// refused second write: the error says what was written and to run the
// command again, which then stops before writing while the permission is
// missing, and finishes once it is back.
func TestPermissionRevokedAfterTheCheck(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)

	// The access review still says yes; the write is refused.
	revoked := true
	f.dynamic.PrependReactor("update", "destinationrules", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if revoked && !isDryRun(action) {
			return true, nil, apierrors.NewForbidden(drGVR.GroupResource(), "reviews", errors.New("RBAC: revoked"))
		}
		return false, nil, nil
	})
	writes := len(f.writes())
	_, _, err = f.run("abort", "reviews")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not allowed to update destinationrules.networking.istio.io in namespace shop, after VirtualService shop/reviews was written")
	assert.Contains(t, err.Error(), "run the same command again to finish")
	assert.Equal(t, []string{"update virtualservices", "update destinationrules"}, f.writes()[writes:], "the second write is tried, and refused")
	dests, _, _ := unstructured.NestedSlice(f.get(vsGVR, "reviews").Object, "spec", "http")
	assert.Equal(t, []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "reviews.shop.svc.cluster.local", "subset": "v1"}}},
		dests[0].(map[string]interface{})["route"], "traffic is back on stable")
	assert.Len(t, subsetsOf(t, f.get(drGVR, "reviews")), 2, "the canary subset is still there")

	// Still refused: the lone write left changes nothing.
	f.denied["update destinationrules"] = true
	_, _, err = f.run("abort", "reviews")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not allowed to update destinationrules.networking.istio.io in namespace shop; nothing was changed")

	delete(f.denied, "update destinationrules")
	revoked = false
	out, _, err := f.run("abort", "reviews")
	require.NoError(t, err, out)
	assert.Len(t, subsetsOf(t, f.get(drGVR, "reviews")), 1, "the rerun pruned the canary subset")
	out, _, err = f.run("abort", "reviews")
	require.NoError(t, err)
	assert.Contains(t, out, "unchanged")
}

func subsetsOf(t *testing.T, dr *unstructured.Unstructured) []interface{} {
	t.Helper()
	subsets, _, err := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	require.NoError(t, err)
	return subsets
}

// A write refused after a conflict made the command read and plan again
// still names what the first attempt wrote.
func TestRefusedWriteAfterARetryNamesWhatWasWritten(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	drUpdates := 0
	f.dynamic.PrependReactor("update", "destinationrules", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if isDryRun(action) {
			return false, nil, nil
		}
		drUpdates++
		if drUpdates == 1 {
			return true, nil, apierrors.NewConflict(drGVR.GroupResource(), "reviews", errors.New("the object has been modified"))
		}
		return true, nil, apierrors.NewForbidden(drGVR.GroupResource(), "reviews", errors.New("RBAC: revoked"))
	})
	_, _, err = f.run("abort", "reviews")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not allowed to update destinationrules.networking.istio.io in namespace shop, after VirtualService shop/reviews was written")
}
