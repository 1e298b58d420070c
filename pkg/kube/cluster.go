package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/pager"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// SnapshotOptions say what ReadSnapshot reads besides the Service's namespace.
type SnapshotOptions struct {
	// Gateways are Gateways the intent names; each costs one GET.
	Gateways []types.NamespacedName
	// OtherNamespaces also reads the VirtualServices of other namespaces
	// that route the Service's host, with one cluster-wide LIST, when the
	// user may list them; ClusterDomain resolves their host names.
	OtherNamespaces bool
	ClusterDomain   string
	// Services also lists the Services of the namespace.
	Services bool
	// GatewayAPIRoutes also lists the namespace's Gateway API routes of the
	// kinds the cluster serves (and then its Services, to know the
	// per-version Services they may name).
	GatewayAPIRoutes bool
	// WarnIfNotAllowed says so, with a warning on the plan, when the
	// cluster-wide list is forbidden (start does; the commands after it
	// would only repeat it).
	WarnIfNotAllowed bool
}

// ReadSnapshot reads everything the routing core needs about one Service:
// one GET and three LISTs, plus a GET for each Gateway named, and a LIST
// for each Gateway API route kind served when asked. The reads that
// do not depend on each other go out together: their round trips are most
// of a command's time.
func (c *Clients) ReadSnapshot(ctx context.Context, namespace, service string, opts SnapshotOptions) (*routing.Snapshot, error) {
	snap := &routing.Snapshot{APIVersion: c.APIVersion(), Now: time.Now()}
	var svcErr, deploymentsErr, servicesErr, routesErr error
	servedRoutes, err := c.gatewayAPIRoutesToRead(&opts)
	if err != nil {
		return nil, err
	}
	gateways := make([]*unstructured.Unstructured, len(opts.Gateways))
	gatewayErrs := make([]error, len(opts.Gateways))
	var routeWarnings []string
	var wg sync.WaitGroup
	if len(servedRoutes) > 0 {
		wg.Go(func() {
			snap.GatewayAPIRoutes, routeWarnings, routesErr = c.readGatewayAPIRoutes(ctx, namespace, servedRoutes)
		})
	}
	wg.Go(func() {
		snap.Service, svcErr = c.Core.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	})
	wg.Go(func() { snap.Deployments, deploymentsErr = c.listDeployments(ctx, namespace) })
	if opts.Services {
		wg.Go(func() { snap.Services, servicesErr = c.listServices(ctx, namespace) })
	}
	for i, g := range opts.Gateways {
		wg.Go(func() {
			gateways[i], gatewayErrs[i] = c.Dynamic.Resource(c.Gateways()).Namespace(g.Namespace).Get(ctx, g.Name, metav1.GetOptions{})
		})
	}
	// VirtualServices are read before DestinationRules: start writes subsets
	// before routes, so a start running meanwhile can never show routes to a
	// subset this snapshot lacks.
	var routingErr error
	var warnings []string
	snap.VirtualServices, warnings, routingErr = c.virtualServicesRouting(ctx, namespace, service, opts)
	if routingErr == nil {
		snap.DestinationRules, routingErr = c.listRouting(ctx, c.DestinationRules(), namespace)
	}
	wg.Wait()

	if err := firstReadError(namespace, service, svcErr, deploymentsErr, servicesErr, errors.Join(routingErr, routesErr)); err != nil {
		return nil, err
	}
	snap.Warnings = append(append(snap.Warnings, warnings...), routeWarnings...)
	if !opts.OtherNamespaces {
		if snap.VirtualServices, err = c.withRecordedElsewhere(ctx, snap.VirtualServices, snap.DestinationRules, service); err != nil {
			return nil, err
		}
	}
	if snap.Gateways, err = foundGateways(opts.Gateways, gateways, gatewayErrs); err != nil {
		return nil, err
	}
	objects := append(append([]*unstructured.Unstructured{}, snap.VirtualServices...), snap.DestinationRules...)
	snap.ArgoCDApplications = c.readArgoCDApplications(ctx, routingOfService(objects, namespace, service))
	return snap, nil
}

// listServices lists the Services of a namespace.
func (c *Clients) listServices(ctx context.Context, namespace string) ([]corev1.Service, error) {
	list, err := c.Core.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, listError("services", namespace, err)
	}
	return append([]corev1.Service{}, list.Items...), nil
}

// firstReadError is the error of a snapshot's reads that helps most: the
// Service the user named first.
func firstReadError(namespace, service string, svcErr, deploymentsErr, servicesErr, routingErr error) error {
	switch {
	case apierrors.IsNotFound(svcErr):
		return fmt.Errorf("service %q not found in namespace %q; check the name, or pass -n with the namespace it lives in", service, namespace)
	case svcErr != nil:
		return fmt.Errorf("cannot read service %s/%s: %w", namespace, service, svcErr)
	case deploymentsErr != nil:
		return deploymentsErr
	case servicesErr != nil:
		return servicesErr
	}
	return routingErr
}

// foundGateways keeps the Gateways that were read; a missing one is left
// for the core to explain.
func foundGateways(names []types.NamespacedName, gateways []*unstructured.Unstructured, errs []error) ([]*unstructured.Unstructured, error) {
	var found []*unstructured.Unstructured
	for i, g := range names {
		switch err := errs[i]; {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("cannot read gateway %s: %w", g, err)
		default:
			found = append(found, gateways[i])
		}
	}
	return found, nil
}

// virtualServicesRouting lists the VirtualServices of the Service's
// namespace and, when asked and allowed, those of other namespaces that
// route the Service: they carry its traffic too. Without the cluster-wide
// list permission it says what it could not see and goes on.
func (c *Clients) virtualServicesRouting(ctx context.Context, namespace, service string, opts SnapshotOptions) (vss []*unstructured.Unstructured, warnings []string, err error) {
	if !opts.OtherNamespaces {
		vss, err = c.listRouting(ctx, c.VirtualServices(), namespace)
		return vss, nil, err
	}
	all, err := c.listRouting(ctx, c.VirtualServices(), "")
	if err != nil {
		if !apierrors.IsForbidden(err) {
			return nil, nil, err
		}
		if opts.WarnIfNotAllowed {
			warnings = append(warnings, fmt.Sprintf("not allowed to list VirtualServices in all namespaces, so only those in namespace %s are split; VirtualServices elsewhere that route service %s keep their routes", namespace, service))
		}
		vss, err = c.listRouting(ctx, c.VirtualServices(), namespace)
		return vss, warnings, err
	}
	for _, vs := range all {
		if vs.GetNamespace() == namespace || routing.RoutesToService(vs, service, namespace, opts.ClusterDomain) {
			vss = append(vss, vs)
		}
	}
	return vss, nil, nil
}

// withRecordedElsewhere adds the VirtualServices of other namespaces that
// start found routing the Service: the DestinationRule's canary state names
// them, so the commands after start GET those few instead of listing every
// namespace.
func (c *Clients) withRecordedElsewhere(ctx context.Context, own, destinationRules []*unstructured.Unstructured, service string) ([]*unstructured.Unstructured, error) {
	for _, ref := range recordedElsewhere(destinationRules, service) {
		ns, name, _ := strings.Cut(ref, "/")
		vs, err := c.Dynamic.Resource(c.VirtualServices()).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err), apierrors.IsForbidden(err):
			// Gone, or out of reach: the namespace's own objects still tell the canary.
		case err != nil:
			return nil, fmt.Errorf("cannot read VirtualService %s: %w", ref, err)
		default:
			own = append(own, vs)
		}
	}
	return own, nil
}

// recordedElsewhere names (NAMESPACE/NAME) the VirtualServices of other
// namespaces that the canary states on the DestinationRules record, for
// one Service or, when service is "", for all.
func recordedElsewhere(destinationRules []*unstructured.Unstructured, service string) []string {
	var refs []string
	for _, dr := range destinationRules {
		for svc, st := range routing.StatesOn(dr) {
			if service != "" && svc != service {
				continue
			}
			for _, ref := range st.OtherNamespaces {
				if strings.Contains(ref, "/") && !slices.Contains(refs, ref) {
					refs = append(refs, ref)
				}
			}
		}
	}
	return refs
}

// Inventory is every object status needs, in one namespace or all.
type Inventory struct {
	Services         []corev1.Service
	Deployments      []appsv1.Deployment
	VirtualServices  []*unstructured.Unstructured
	DestinationRules []*unstructured.Unstructured
}

// ReadInventory lists Services, Deployments, VirtualServices and
// DestinationRules in a namespace ("" for all), page by page.
func (c *Clients) ReadInventory(ctx context.Context, namespace string) (*Inventory, error) {
	inv := &Inventory{}
	err := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return c.Core.CoreV1().Services(namespace).List(ctx, opts)
	}).EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		inv.Services = append(inv.Services, *obj.(*corev1.Service))
		return nil
	})
	if err != nil {
		return nil, listError("services", namespace, err)
	}
	if inv.Deployments, err = c.listDeployments(ctx, namespace); err != nil {
		return nil, err
	}
	if inv.DestinationRules, err = c.listRouting(ctx, c.DestinationRules(), namespace); err != nil {
		return nil, err
	}
	if inv.VirtualServices, err = c.listRouting(ctx, c.VirtualServices(), namespace); err != nil {
		return nil, err
	}
	if namespace != "" {
		// VirtualServices of other namespaces may carry a canary of this one.
		if inv.VirtualServices, err = c.withRecordedElsewhere(ctx, inv.VirtualServices, inv.DestinationRules, ""); err != nil {
			return nil, err
		}
	}
	return inv, nil
}

func (c *Clients) listDeployments(ctx context.Context, namespace string) ([]appsv1.Deployment, error) {
	var out []appsv1.Deployment
	err := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return c.Core.AppsV1().Deployments(namespace).List(ctx, opts)
	}).EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		out = append(out, *obj.(*appsv1.Deployment))
		return nil
	})
	if err != nil {
		return nil, listError("deployments", namespace, err)
	}
	return out, nil
}

// listRouting reads VirtualServices or DestinationRules as unstructured data,
// which keeps every field, including ones newer than our Istio API.
func (c *Clients) listRouting(ctx context.Context, gvr schema.GroupVersionResource, namespace string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	err := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return c.Dynamic.Resource(gvr).Namespace(namespace).List(ctx, opts)
	}).EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		u := obj.(*unstructured.Unstructured)
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, listError(gvr.GroupResource().String(), namespace, err)
	}
	sortByNamespaceAndName(out)
	return out, nil
}

// sortByNamespaceAndName puts routing objects in the one order every read
// gives them: the first VirtualService's state speaks for a canary, so the
// order must not depend on how they were read.
func sortByNamespaceAndName(objects []*unstructured.Unstructured) {
	slices.SortFunc(objects, func(a, b *unstructured.Unstructured) int {
		if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
			return c
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
}

// namespaceScope says where a list or watch looked, for messages.
func namespaceScope(namespace string) string {
	if namespace == "" {
		return "in all namespaces"
	}
	return "in namespace " + namespace
}

func listError(resource, namespace string, err error) error {
	where := namespaceScope(namespace)
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("not allowed to list %s %s: %w; ask for the list permission (see the RBAC section of the README)", resource, where, err)
	}
	return fmt.Errorf("cannot list %s %s: %w", resource, where, err)
}

// Write creates or updates one object of a plan. An update carries the
// resourceVersion that was read, so a concurrent change is a conflict, never
// a silent overwrite; the caller re-reads and plans again.
func (c *Clients) Write(ctx context.Context, change routing.Change, serverDryRun bool) (*unstructured.Unstructured, error) {
	gvr := c.VirtualServices()
	if change.Desired.GetKind() == "DestinationRule" {
		gvr = c.DestinationRules()
	}
	var dryRun []string
	if serverDryRun {
		dryRun = []string{metav1.DryRunAll}
	}
	client := c.Dynamic.Resource(gvr).Namespace(change.Desired.GetNamespace())
	desired := change.Desired.DeepCopy()
	desired.SetAPIVersion(c.APIVersion())
	if change.Live == nil {
		return client.Create(ctx, desired, metav1.CreateOptions{DryRun: dryRun, FieldManager: FieldManager})
	}
	return client.Update(ctx, desired, metav1.UpdateOptions{DryRun: dryRun, FieldManager: FieldManager})
}

// ResourceOf names an object's resource the way RBAC rules and errors do,
// for example virtualservices.networking.istio.io.
func ResourceOf(obj *unstructured.Unstructured) string {
	if obj.GetKind() == "DestinationRule" {
		return "destinationrules." + IstioNetworkingGroup
	}
	return "virtualservices." + IstioNetworkingGroup
}

// IsRetryable tells whether a write lost a race with another writer.
func IsRetryable(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
}

// CheckPermissions asks the API server, before the first write, whether
// every write of the plan is allowed, so a missing permission stops the
// command before it changes anything.
func (c *Clients) CheckPermissions(ctx context.Context, changes []routing.Change) error {
	// Updates are asked about by object name: RBAC can grant them on named
	// objects only.
	type need struct{ verb, resource, namespace, name string }
	var needs []need
	seen := map[need]bool{}
	for _, ch := range changes {
		if !ch.Changed() {
			continue
		}
		n := need{verb: "update", resource: c.VirtualServices().Resource, namespace: ch.Desired.GetNamespace(), name: ch.Desired.GetName()}
		if ch.Desired.GetKind() == "DestinationRule" {
			n.resource = c.DestinationRules().Resource
		}
		if ch.Live == nil {
			n.verb, n.name = "create", ""
		}
		if !seen[n] {
			seen[n] = true
			needs = append(needs, n)
		}
	}
	// The questions are independent: ask them all at once.
	allowed := make([]bool, len(needs))
	errs := make([]error, len(needs))
	var wg sync.WaitGroup
	for i, n := range needs {
		wg.Go(func() {
			review, err := c.Core.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: n.namespace, Verb: n.verb, Group: IstioNetworkingGroup, Resource: n.resource, Name: n.name,
				}},
			}, metav1.CreateOptions{})
			if err != nil {
				errs[i] = err
				return
			}
			allowed[i] = review.Status.Allowed
		})
	}
	wg.Wait()
	var denied []string
	for i, n := range needs {
		if errs[i] != nil {
			return fmt.Errorf("cannot check permissions with the API server: %w", errs[i])
		}
		if !allowed[i] {
			what := fmt.Sprintf("%s %s.%s", n.verb, n.resource, IstioNetworkingGroup)
			if n.name != "" {
				what += fmt.Sprintf(" %q", n.name)
			}
			denied = append(denied, what+" in namespace "+n.namespace)
		}
	}
	if len(denied) > 0 {
		return fmt.Errorf("not allowed to %s; nothing was changed. Ask for these permissions (see the RBAC section of the README)", strings.Join(denied, ", and to "))
	}
	return nil
}

// Workloads are what a namespace holds besides its routing: what manifest
// files leave out is read from here.
type Workloads struct {
	// Service is nil when the cluster has no such Service.
	Service     *corev1.Service
	Deployments []appsv1.Deployment
	Services    []corev1.Service
	// Gateways are those of the names asked for that exist.
	Gateways []*unstructured.Unstructured
}

// ReadWorkloads reads a Service, the Deployments of its namespace (and,
// with services, every Service there) and the named Istio Gateways.
func (c *Clients) ReadWorkloads(ctx context.Context, namespace, service string, services bool, gatewayNames []types.NamespacedName) (*Workloads, error) {
	w := &Workloads{}
	svc, err := c.Core.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("cannot read service %s/%s: %w", namespace, service, err)
	default:
		w.Service = svc
	}
	if w.Deployments, err = c.listDeployments(ctx, namespace); err != nil {
		return nil, err
	}
	if services {
		if w.Services, err = c.listServices(ctx, namespace); err != nil {
			return nil, err
		}
	}
	errs := make([]error, len(gatewayNames))
	gateways := make([]*unstructured.Unstructured, len(gatewayNames))
	for i, g := range gatewayNames {
		gateways[i], errs[i] = c.Dynamic.Resource(c.Gateways()).Namespace(g.Namespace).Get(ctx, g.Name, metav1.GetOptions{})
	}
	w.Gateways, err = foundGateways(gatewayNames, gateways, errs)
	return w, err
}
