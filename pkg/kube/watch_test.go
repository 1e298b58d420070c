package kube

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

// watchedShop is namespace shop with a canary of reviews whose
// DestinationRule records a VirtualService of namespace web that routes it
// too, and web's own VirtualService besides.
func watchedShop(mayWatchEverywhere bool) (*Clients, *fake.Clientset, *dynamicfake.FakeDynamicClient) {
	core := fake.NewSimpleClientset(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "shop"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "reviews-v1", Namespace: "shop"}},
	)
	core.PrependReactor("create", "selfsubjectaccessreviews", func(action clienttesting.Action) (bool, runtime.Object, error) {
		review := action.(clienttesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		review.Status.Allowed = mayWatchEverywhere
		return true, review, nil
	})
	c := &Clients{Core: core, IstioVersion: "v1"}
	state := `{"service":"reviews","stable":"v1","canary":"v2","weight":10,"phase":"Progressing","otherNamespaces":["web/shop-reviews"]}`
	c.Dynamic = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{c.VirtualServices(): "VirtualServiceList", c.DestinationRules(): "DestinationRuleList"},
		routingObject("VirtualService", "shop", "reviews", state),
		routingObject("DestinationRule", "shop", "reviews", state),
		routingObject("VirtualService", "web", "shop-reviews", state),
		routingObject("VirtualService", "web", "web", ""),
	)
	return c, core, c.Dynamic.(*dynamicfake.FakeDynamicClient)
}

func routingObject(kind, namespace, name, state string) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion(IstioNetworkingGroup + "/v1")
	obj.SetKind(kind)
	obj.SetNamespace(namespace)
	obj.SetName(name)
	if state != "" {
		obj.SetAnnotations(map[string]string{"kubectl-canary.io/reviews": state})
	}
	return obj
}

// requests lists the calls of the fakes as "verb resource namespace",
// sorted, leaving out access reviews.
func requests(fakes ...*clienttesting.Fake) []string {
	var out []string
	for _, f := range fakes {
		for _, a := range f.Actions() {
			if a.GetResource().Resource != "selfsubjectaccessreviews" {
				out = append(out, fmt.Sprintf("%s %s %s", a.GetVerb(), a.GetResource().Resource, a.GetNamespace()))
			}
		}
	}
	sort.Strings(out)
	return out
}

func names(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetNamespace()+"/"+o.GetName())
	}
	return out
}

// awaitChange fails the test unless the watch signals a change soon.
func awaitChange(t *testing.T, w *InventoryWatch) {
	t.Helper()
	select {
	case <-w.Changes():
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the watch saw no change")
	}
}

// drainChanges drops the signal the first lists left, if any.
func drainChanges(w *InventoryWatch) {
	select {
	case <-w.Changes():
	default:
	}
}

func setWeight(t *testing.T, c *Clients, namespace, name string, weight int) {
	t.Helper()
	vs := routingObject("VirtualService", namespace, name, fmt.Sprintf(`{"service":"reviews","stable":"v1","canary":"v2","weight":%d,"phase":"Progressing"}`, weight))
	_, err := c.Dynamic.Resource(c.VirtualServices()).Namespace(namespace).Update(context.Background(), vs, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// Without the right to watch VirtualServices everywhere, the watch covers
// the namespace, and re-reads the recorded VirtualService of web with a
// GET each time; nothing is ever listed twice.
func TestWatchInventoryListsOnceThenFollowsEvents(t *testing.T) {
	c, core, dyn := watchedShop(false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := c.WatchInventory(ctx, "shop")
	require.NoError(t, err)
	inv, err := w.Inventory(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"shop/reviews", "web/shop-reviews"}, names(inv.VirtualServices))
	assert.Equal(t, []string{"shop/reviews"}, names(inv.DestinationRules))
	require.Len(t, inv.Services, 1)
	require.Len(t, inv.Deployments, 1)

	drainChanges(w)
	setWeight(t, c, "shop", "reviews", 40)
	awaitChange(t, w)
	inv, err = w.Inventory(ctx)
	require.NoError(t, err)
	assert.Contains(t, inv.VirtualServices[0].GetAnnotations()["kubectl-canary.io/reviews"], `"weight":40`)

	assert.Equal(t, []string{
		"get virtualservices web", "get virtualservices web",
		"list destinationrules shop", "list virtualservices shop",
		"update virtualservices shop",
		"watch destinationrules shop", "watch virtualservices shop",
	}, requests(&dyn.Fake))
	assert.Equal(t, []string{"list deployments shop", "list services shop", "watch deployments shop", "watch services shop"}, requests(&core.Fake))
}

// Without the right to watch VirtualServices everywhere, a change to the
// recorded VirtualService of web alone (weight writes just the
// VirtualServices) is announced by the recheck, as no event does.
func TestWatchInventoryRechecksVirtualServicesElsewhere(t *testing.T) {
	c, _, _ := watchedShop(false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := c.WatchInventory(ctx, "shop")
	require.NoError(t, err)
	_, err = w.Inventory(ctx)
	require.NoError(t, err)
	drainChanges(w)
	setWeight(t, c, "web", "shop-reviews", 40)
	awaitChange(t, w)
	inv, err := w.Inventory(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"shop/reviews", "web/shop-reviews"}, names(inv.VirtualServices))
	assert.Contains(t, inv.VirtualServices[1].GetAnnotations()["kubectl-canary.io/reviews"], `"weight":40`)
}

// With the right to watch VirtualServices everywhere, the recorded one of
// web comes from the cache, and a change to it alone is seen too; web's
// unrelated VirtualService stays out.
func TestWatchInventoryFollowsRecordedVirtualServicesElsewhere(t *testing.T) {
	c, _, dyn := watchedShop(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := c.WatchInventory(ctx, "shop")
	require.NoError(t, err)
	drainChanges(w)
	setWeight(t, c, "web", "shop-reviews", 40)
	awaitChange(t, w)
	inv, err := w.Inventory(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"shop/reviews", "web/shop-reviews"}, names(inv.VirtualServices))
	assert.Contains(t, inv.VirtualServices[1].GetAnnotations()["kubectl-canary.io/reviews"], `"weight":40`)
	assert.Equal(t, []string{
		"list destinationrules shop", "list virtualservices ",
		"update virtualservices web",
		"watch destinationrules shop", "watch virtualservices ",
	}, requests(&dyn.Fake))
}

// A first list that fails ends the watch with the error, instead of the
// informers retrying it forever.
func TestWatchInventoryFirstListErrorEndsIt(t *testing.T) {
	c, core, _ := watchedShop(false)
	core.PrependReactor("list", "deployments", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "", fmt.Errorf("RBAC"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.WatchInventory(ctx, "shop")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not allowed to list and watch deployments in namespace shop")
	assert.NoError(t, ctx.Err(), "the error ends the wait, not the timeout")
}
