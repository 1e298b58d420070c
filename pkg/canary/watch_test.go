package canary

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// fakeCluster loads a routing fixture into fake clients, which record
// every call and serve watches.
func fakeCluster(t *testing.T, fixture string) (*Cluster, *fake.Clientset, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	clients := &kube.Clients{IstioVersion: "v1"}
	var typed, routingObjects []runtime.Object
	for _, u := range testutil.ReadObjects(t, testutil.Testdata("routing", fixture, "cluster.yaml")) {
		var obj runtime.Object = u
		switch u.GetKind() {
		case "Service":
			obj = &corev1.Service{}
		case "Deployment":
			obj = &appsv1.Deployment{}
		}
		if obj != u {
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj))
			typed = append(typed, obj)
		} else {
			routingObjects = append(routingObjects, u)
		}
	}
	core := fake.NewSimpleClientset(typed...)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{clients.VirtualServices(): "VirtualServiceList", clients.DestinationRules(): "DestinationRuleList"}, routingObjects...)
	clients.Core, clients.Dynamic = core, dyn
	return &Cluster{clients: clients}, core, dyn
}

// recordWeight changes the weight in the canary state of the VirtualService,
// the way weight records it.
func recordWeight(t *testing.T, c *Cluster, namespace, name, service string, weight int) {
	t.Helper()
	vss := c.clients.Dynamic.Resource(c.clients.VirtualServices()).Namespace(namespace)
	vs, err := vss.Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	annotations := vs.GetAnnotations()
	var state map[string]any
	require.NoError(t, json.Unmarshal([]byte(annotations[routing.StateAnnotationPrefix+service]), &state))
	state["weight"] = weight
	data, err := json.Marshal(state)
	require.NoError(t, err)
	annotations[routing.StateAnnotationPrefix+service] = string(data)
	vs.SetAnnotations(annotations)
	_, err = vss.Update(context.Background(), vs, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// watchInBackground runs WatchStatuses until the test ends and hands over
// what each call gets.
func watchInBackground(t *testing.T, c *Cluster, namespace, service string) <-chan []routing.CanaryStatus {
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan []routing.CanaryStatus, 10)
	done := make(chan error, 1)
	go func() {
		done <- c.WatchStatuses(ctx, namespace, service, func(statuses []routing.CanaryStatus) error {
			seen <- statuses
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done, "the end of ctx ends the watch without an error")
	})
	return seen
}

func nextStatuses(t *testing.T, seen <-chan []routing.CanaryStatus) []routing.CanaryStatus {
	t.Helper()
	select {
	case statuses := <-seen:
		return statuses
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the watch reported nothing")
		return nil
	}
}

func countVerbs(actions []clienttesting.Action) map[string]int {
	out := map[string]int{}
	for _, a := range actions {
		out[a.GetVerb()+" "+a.GetResource().Resource]++
	}
	return out
}

// The watch reports the canaries once synced, then again after a burst of
// changes, summed up once; it lists each resource once and never again.
func TestWatchStatusesFollowsChangesWithoutListingAgain(t *testing.T) {
	c, core, dyn := fakeCluster(t, "recorded-state")
	seen := watchInBackground(t, c, "shop", "")
	first := nextStatuses(t, seen)
	require.Len(t, first, 1)
	assert.Equal(t, 30, first[0].Weight)

	recordWeight(t, c, "shop", "reviews", "reviews", 40)
	recordWeight(t, c, "shop", "reviews", "reviews", 50)
	after := nextStatuses(t, seen)
	require.Len(t, after, 1)
	assert.Equal(t, 50, after[0].Weight, "the two writes come out as one report")

	recordWeight(t, c, "shop", "reviews", "reviews", 60)
	assert.Equal(t, 60, nextStatuses(t, seen)[0].Weight)
	select {
	case extra := <-seen:
		assert.Fail(t, "a report without a change", "%+v", extra)
	case <-time.After(3 * burstWindow):
	}

	assert.Equal(t, map[string]int{"list services": 1, "watch services": 1, "list deployments": 1, "watch deployments": 1,
		"create selfsubjectaccessreviews": 1}, countVerbs(core.Actions()), "the review asks whether VirtualServices may be watched everywhere")
	assert.Equal(t, map[string]int{"list virtualservices": 1, "watch virtualservices": 1, "list destinationrules": 1, "watch destinationrules": 1,
		"get virtualservices": 3, "update virtualservices": 3}, countVerbs(dyn.Actions()), "the test's own writes, and nothing read twice")
}

// A Service that is missing, or has no canary, is the same error as
// Statuses gives, at once.
func TestWatchStatusesOfAServiceWithoutCanaryFails(t *testing.T) {
	c, _, _ := fakeCluster(t, "no-istio")
	each := func([]routing.CanaryStatus) error { return nil }
	err := c.WatchStatuses(context.Background(), "shop", "reviews", each)
	assert.EqualError(t, err, "service shop/reviews has no canary recorded; start one with kubectl canary start reviews")
	_, want := c.Statuses(context.Background(), "shop", "ratings")
	assert.EqualError(t, c.WatchStatuses(context.Background(), "shop", "ratings", each), want.Error())
}

// A user who may list but not watch gets an error that says so, whether
// the refusal comes before the first lists are in or after: informers would
// retry it forever and leave the table silent.
func TestWatchStatusesWithoutWatchPermissionFails(t *testing.T) {
	c, core, _ := fakeCluster(t, "recorded-state")
	core.PrependWatchReactor("deployments", func(clienttesting.Action) (bool, watch.Interface, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "", errors.New("RBAC: watch is not granted"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.WatchStatuses(ctx, "shop", "", func([]routing.CanaryStatus) error { return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not allowed to list and watch deployments in namespace shop")
}
