package kube

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// InventoryWatch keeps the objects of an Inventory in informer caches: one
// initial LIST per resource fills them and a WATCH each keeps them current,
// so that following the canaries costs an event per change instead of
// listing everything again on a timer.
type InventoryWatch struct {
	clients   *Clients
	namespace string
	services, deployments,
	virtualServices, destinationRules watchedResource
	// gatewayAPIRoutes are the Gateway API route kinds served that the
	// user may watch: Gateway API canaries are recorded on them.
	gatewayAPIRoutes []watchedResource
	// everyVirtualService says the VirtualServices are watched in every
	// namespace, not just this one (see WatchInventory).
	everyVirtualService bool
	// readsElsewhere says the last Inventory read VirtualServices of other
	// namespaces with GETs, which no event announces.
	readsElsewhere atomic.Bool
	changes        chan struct{}
	stop           context.CancelFunc
	synced         atomic.Bool
	failedMu       sync.Mutex
	failed         error // the error that ended the watch
}

// watchedResource is one informer and what its errors call it.
type watchedResource struct {
	informer  cache.SharedIndexInformer
	resource  string
	namespace string
}

// WatchInventory starts watching the Services, Deployments,
// VirtualServices and DestinationRules of a namespace ("" for all), and
// returns once the first list of each is in; the watch lasts until ctx ends
// or Stop.
//
// Watching one namespace, the canary state of a DestinationRule may name
// VirtualServices of other namespaces that route the Service too, and may
// be the only ones whose state changes (weight writes no DestinationRule).
// ReadInventory GETs those few; a watch must see them change, so when the
// user may list and watch VirtualServices everywhere, they are watched in
// every namespace and taken from that cache (changes to the others wake
// the caller too, harmlessly). Otherwise they are read again with a GET on
// each change in the namespace and, while there are any, every
// recheckEvery: the only reads on a timer, and only where the user cannot
// watch.
func (c *Clients) WatchInventory(ctx context.Context, namespace string) (*InventoryWatch, error) {
	w := &InventoryWatch{clients: c, namespace: namespace, changes: make(chan struct{}, 1)}
	vsNamespace := namespace
	if namespace != "" && c.mayWatchEveryNamespace(ctx, c.VirtualServices().Resource) {
		vsNamespace, w.everyVirtualService = metav1.NamespaceAll, true
	}
	w.services = watchedResource{coreinformers.NewServiceInformer(c.Core, namespace, 0, cache.Indexers{}), "services", namespace}
	w.deployments = watchedResource{appsinformers.NewDeploymentInformer(c.Core, namespace, 0, cache.Indexers{}), "deployments", namespace}
	w.destinationRules = c.routingInformer(c.DestinationRules(), namespace)
	w.virtualServices = c.routingInformer(c.VirtualServices(), vsNamespace)
	served, _, err := c.servedGatewayAPI()
	if err != nil {
		return nil, err
	}
	for _, gvr := range served {
		if c.mayWatch(ctx, gvr, namespace) {
			w.gatewayAPIRoutes = append(w.gatewayAPIRoutes, c.routingInformer(gvr, namespace))
		}
	}
	if err := w.start(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// routingInformer watches VirtualServices or DestinationRules as
// unstructured data, which keeps every field, as listRouting does.
func (c *Clients) routingInformer(gvr schema.GroupVersionResource, namespace string) watchedResource {
	informer := dynamicinformer.NewFilteredDynamicInformer(c.Dynamic, gvr, namespace, 0, cache.Indexers{}, nil).Informer()
	return watchedResource{informer, gvr.GroupResource().String(), namespace}
}

// Changes signals, after an add, update or delete of any watched object,
// that Inventory has changed, or that the watch failed and Inventory says
// why. Signals do not queue up: one pending signal stands for every change
// since the last receive.
func (w *InventoryWatch) Changes() <-chan struct{} { return w.changes }

// Stop ends the watch before ctx does.
func (w *InventoryWatch) Stop() { w.stop() }

func (w *InventoryWatch) changed() {
	select {
	case w.changes <- struct{}{}:
	default:
	}
}

func (w *InventoryWatch) resources() []watchedResource {
	return append([]watchedResource{w.services, w.deployments, w.destinationRules, w.virtualServices}, w.gatewayAPIRoutes...)
}

// start runs the informers until ctx ends and waits until each has
// delivered its first list.
func (w *InventoryWatch) start(ctx context.Context) error {
	ctx, w.stop = context.WithCancel(ctx)
	var handlersSynced []cache.InformerSynced
	for _, r := range w.resources() {
		if err := r.informer.SetWatchErrorHandlerWithContext(w.onError(r)); err != nil {
			w.stop()
			return err
		}
		registration, err := r.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { w.changed() },
			UpdateFunc: func(any, any) { w.changed() },
			DeleteFunc: func(any) { w.changed() },
		})
		if err != nil {
			w.stop()
			return err
		}
		handlersSynced = append(handlersSynced, registration.HasSynced)
		go r.informer.RunWithContext(ctx)
	}
	if !cache.WaitForCacheSync(ctx.Done(), handlersSynced...) {
		w.stop()
		if err := w.failure(); err != nil {
			return err
		}
		return ctx.Err()
	}
	w.synced.Store(true)
	if w.namespace != "" && !w.everyVirtualService {
		go w.recheckElsewhere(ctx)
	}
	return nil
}

// recheckEvery is how often a watch that cannot watch the VirtualServices
// of other namespaces named by a canary reads them again (the old polling
// interval of status --watch).
const recheckEvery = 2 * time.Second

// recheckElsewhere signals a change every recheckEvery while Inventory reads
// VirtualServices of other namespaces with GETs, so a change to them alone
// shows too.
func (w *InventoryWatch) recheckElsewhere(ctx context.Context) {
	ticker := time.NewTicker(recheckEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if w.readsElsewhere.Load() {
				w.changed()
			}
		}
	}
}

// onError handles the list and watch errors of an informer. One before the
// first lists are in (a resource not served, a missing permission), or a
// refused permission at any time, ends the watch with that error:
// informers would retry it forever, leaving the command silent. Others are
// passing (a dropped connection), and the informer retries them.
func (w *InventoryWatch) onError(r watchedResource) cache.WatchErrorHandlerWithContext {
	return func(ctx context.Context, reflector *cache.Reflector, err error) {
		if w.synced.Load() && !apierrors.IsForbidden(err) {
			cache.DefaultWatchErrorHandler(ctx, reflector, err)
			return
		}
		w.failedMu.Lock()
		if w.failed == nil {
			w.failed = watchError(r.resource, r.namespace, err)
		}
		w.failedMu.Unlock()
		w.stop()
		w.changed()
	}
}

func (w *InventoryWatch) failure() error {
	w.failedMu.Lock()
	defer w.failedMu.Unlock()
	return w.failed
}

// watchError says which list or watch failed, and what to do about a
// missing permission.
func watchError(resource, namespace string, err error) error {
	where := namespaceScope(namespace)
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("not allowed to list and watch %s %s: %w; --watch needs both permissions (see the RBAC section of the README)", resource, where, err)
	}
	return fmt.Errorf("cannot watch %s %s: %w", resource, where, err)
}

// mayWatchEveryNamespace asks the API server whether the user may list and
// watch a resource of Istio's networking group in every namespace. An
// error counts as no: the watch then falls back to what one namespace gives.
func (c *Clients) mayWatchEveryNamespace(ctx context.Context, resource string) bool {
	return c.mayWatch(ctx, schema.GroupVersionResource{Group: IstioNetworkingGroup, Resource: resource}, metav1.NamespaceAll)
}

// mayWatch says whether the user may list and watch a resource in a
// namespace ("" for all): a watch refused would end the whole watch.
func (c *Clients) mayWatch(ctx context.Context, gvr schema.GroupVersionResource, namespace string) bool {
	for _, verb := range []string{"list", "watch"} {
		review, err := c.Core.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: verb, Group: gvr.Group, Resource: gvr.Resource, Namespace: namespace,
			}},
		}, metav1.CreateOptions{})
		if err != nil || !review.Status.Allowed {
			return false
		}
	}
	return true
}

// Inventory is what the caches hold now, the same objects ReadInventory
// would list, or the error that ended the watch. The objects are the
// caches' own: read them, never change them.
func (w *InventoryWatch) Inventory(ctx context.Context) (*Inventory, error) {
	if err := w.failure(); err != nil {
		return nil, err
	}
	inv := &Inventory{}
	for _, obj := range w.services.informer.GetStore().List() {
		inv.Services = append(inv.Services, *obj.(*corev1.Service))
	}
	for _, obj := range w.deployments.informer.GetStore().List() {
		inv.Deployments = append(inv.Deployments, *obj.(*appsv1.Deployment))
	}
	inv.DestinationRules = cachedRouting(w.destinationRules.informer.GetStore(), w.namespace)
	inv.VirtualServices = cachedRouting(w.virtualServices.informer.GetStore(), w.namespace)
	for _, r := range w.gatewayAPIRoutes {
		inv.GatewayAPIRoutes = append(inv.GatewayAPIRoutes, cachedRouting(r.informer.GetStore(), w.namespace)...)
	}
	if w.namespace == "" {
		return inv, nil
	}
	if !w.everyVirtualService {
		w.readsElsewhere.Store(len(recordedElsewhere(inv.DestinationRules, "")) > 0)
		var err error
		inv.VirtualServices, err = w.clients.withRecordedElsewhere(ctx, inv.VirtualServices, inv.DestinationRules, "")
		return inv, err
	}
	for _, ref := range recordedElsewhere(inv.DestinationRules, "") {
		// A ref is "namespace/name", the cache's own key.
		if obj, ok, _ := w.virtualServices.informer.GetStore().GetByKey(ref); ok {
			inv.VirtualServices = append(inv.VirtualServices, obj.(*unstructured.Unstructured))
		}
	}
	return inv, nil
}

// cachedRouting is the routing objects of a cache in a namespace ("" for
// all), in the order listRouting gives them.
func cachedRouting(store cache.Store, namespace string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, obj := range store.List() {
		u := obj.(*unstructured.Unstructured)
		if namespace == "" || u.GetNamespace() == namespace {
			out = append(out, u)
		}
	}
	sortByNamespaceAndName(out)
	return out
}
