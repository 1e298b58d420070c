package cmd

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
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

// Commands that write two objects ask first whether both writes are
// allowed; an answer (or a write that went through) is remembered, so the
// next such command does not ask again.
func TestRememberedPermissionsAreNotAskedAgain(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	cacheDir := t.TempDir()
	f.permissions = kube.NewPermissionCache(cacheDir, &rest.Config{Host: "https://fake", BearerToken: "user-a"})

	// start proves its permissions with its server dry run: no question.
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	assert.Equal(t, 0, f.accessReviews(), "start asked although its dry run answers")

	// abort updates both objects; start only created them, so "update
	// destinationrules" is asked, "update virtualservices" is known from the
	// weight.
	_, _, err = f.run("weight", "reviews", "30")
	require.NoError(t, err)
	_, _, err = f.run("abort", "reviews")
	require.NoError(t, err)
	assert.Equal(t, 1, f.accessReviews(), "abort asks only what it does not know")
	for _, a := range f.core.Actions() {
		create, ok := a.(clienttesting.CreateAction)
		if !ok {
			continue
		}
		if review, ok := create.GetObject().(*authorizationv1.SelfSubjectAccessReview); ok {
			assert.Equal(t, authorizationv1.ResourceAttributes{Namespace: "shop", Verb: "update", Group: "networking.istio.io", Resource: "destinationrules", Name: "reviews"},
				*review.Spec.ResourceAttributes, "updates are asked about by name (RBAC can grant them by name)")
		}
	}

	_, _, err = f.run("start", "reviews")
	require.NoError(t, err)
	_, _, err = f.run("abort", "reviews")
	require.NoError(t, err)
	assert.Equal(t, 1, f.accessReviews(), "the second abort asked again")

	files, err := filepath.Glob(filepath.Join(cacheDir, "kubectl-canary", "permissions", "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	assert.NotContains(t, string(data), "user-a", "the cache holds a credential")
}

// A permission revoked while it is remembered shows up as a refused second
// write: the error says what was written and to run the command again, the
// cache is forgotten, and the rerun finishes once the permission is back.
func TestPermissionRevokedWhileRemembered(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	cacheDir := t.TempDir()
	f.permissions = kube.NewPermissionCache(cacheDir, &rest.Config{Host: "https://fake"})
	for _, args := range [][]string{{"start", "reviews"}, {"abort", "reviews"}, {"start", "reviews"}} {
		_, _, err := f.run(args...)
		require.NoError(t, err, "%v", args)
	}
	asked := f.accessReviews()

	f.denied["update destinationrules"] = true
	writes := len(f.writes())
	_, _, err := f.run("abort", "reviews")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not allowed to update destinationrules.networking.istio.io in namespace shop, after VirtualService shop/reviews was written")
	assert.Contains(t, err.Error(), "run the same command again to finish")
	assert.Equal(t, asked, f.accessReviews(), "the remembered answer was used")
	assert.Equal(t, []string{"update virtualservices", "update destinationrules"}, f.writes()[writes:], "the second write is tried, and refused")
	dests, _, _ := unstructured.NestedSlice(f.get(vsGVR, "reviews").Object, "spec", "http")
	assert.Equal(t, []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "reviews.shop.svc.cluster.local", "subset": "v1"}}},
		dests[0].(map[string]interface{})["route"], "traffic is back on stable")
	assert.Len(t, subsetsOf(t, f.get(drGVR, "reviews")), 2, "the canary subset is still there")
	files, _ := filepath.Glob(filepath.Join(cacheDir, "kubectl-canary", "permissions", "*.json"))
	require.Len(t, files, 1)
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	assert.Equal(t, "{}", string(data), "a refused write forgets what was remembered")

	// Still refused: the lone write left changes nothing.
	_, _, err = f.run("abort", "reviews")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not allowed to update destinationrules.networking.istio.io in namespace shop; nothing was changed")

	delete(f.denied, "update destinationrules")
	out, _, err := f.run("abort", "reviews")
	require.NoError(t, err, out)
	assert.Len(t, subsetsOf(t, f.get(drGVR, "reviews")), 1, "the rerun pruned the canary subset")
	out, _, err = f.run("abort", "reviews")
	require.NoError(t, err)
	assert.Contains(t, out, "unchanged")
}

// Without a cache, every command that writes two objects asks.
func TestWithoutPermissionCacheEveryAbortAsks(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	for _, args := range [][]string{{"start", "reviews"}, {"abort", "reviews"}, {"start", "reviews"}, {"abort", "reviews"}} {
		_, _, err := f.run(args...)
		require.NoError(t, err, "%v", args)
	}
	assert.Equal(t, 4, f.accessReviews())
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
	assert.Equal(t, 2, drUpdates, "the conflict is retried")
	assert.Contains(t, err.Error(), "not allowed to update destinationrules.networking.istio.io in namespace shop, after VirtualService shop/reviews was written")
}
