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
	// per-version Services they may name), and reads the Namespace (Istio's
	// ambient mode and waypoint labels).
	GatewayAPIRoutes bool
	// GatewayAPIRoutesUnlessIstio lists the routes and Services only when
	// no VirtualService or DestinationRule records a canary of the Service
	// in progress: the commands after start, on either API.
	GatewayAPIRoutesUnlessIstio bool
	// WarnIfNotAllowed says so, with a warning on the plan, when the
	// cluster-wide list is forbidden (start does; the commands after it
	// would only repeat it).
	WarnIfNotAllowed bool
}

// ReadSnapshot reads everything the routing core needs about one Service:
// one GET and three LISTs, plus GETs for each Gateway named, and a LIST
// for each Gateway API route kind served when asked. The reads that
// do not depend on each other go out together: their round trips are most
// of a command's time.
func (c *Clients) ReadSnapshot(ctx context.Context, namespace, service string, opts SnapshotOptions) (*routing.Snapshot, error) {
	snap := &routing.Snapshot{APIVersion: c.APIVersion(), Now: time.Now(), IstioServed: true}
	gatewayAPI, err := c.gatewayAPIToRead(opts)
	if err != nil {
		return nil, err
	}
	var svcErr, deploymentsErr, servicesErr, routesErr, gatewaysErr, namespaceErr error
	var routeWarnings, namespaceWarnings []string
	var wg sync.WaitGroup
	if opts.GatewayAPIRoutes {
		opts.Services = opts.Services || len(gatewayAPI.routes) > 0
		snap.GatewayAPIServed = len(gatewayAPI.routes) > 0
		snap.GatewayAPIVersions = gatewayAPIVersions(gatewayAPI.routes)
		// Without the Gateway API, ambient mode leaves no choice to make.
		if len(gatewayAPI.routes) > 0 {
			wg.Go(func() {
				snap.GatewayAPIRoutes, routeWarnings, routesErr = c.readGatewayAPIRoutes(ctx, namespace, gatewayAPI.routes)
			})
			wg.Go(func() { snap.Namespace, namespaceWarnings, namespaceErr = c.readNamespace(ctx, namespace) })
		}
	}
	wg.Go(func() {
		snap.Service, svcErr = c.Core.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	})
	wg.Go(func() { snap.Deployments, deploymentsErr = c.listDeployments(ctx, namespace) })
	if opts.Services {
		wg.Go(func() { snap.Services, servicesErr = c.listServices(ctx, namespace) })
	}
	if len(opts.Gateways) > 0 {
		wg.Go(func() { snap.Gateways, gatewaysErr = c.readGateways(ctx, opts.Gateways, gatewayAPI.gateway) })
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

	if err := firstReadError(namespace, service, svcErr, deploymentsErr, servicesErr, errors.Join(routingErr, routesErr, gatewaysErr, namespaceErr)); err != nil {
		return nil, err
	}
	snap.Warnings = append(append(append(snap.Warnings, warnings...), routeWarnings...), namespaceWarnings...)
	if err := c.readDependentReads(ctx, snap, namespace, service, opts); err != nil {
		return nil, err
	}
	return snap, nil
}

// readDependentReads are the reads that depend on what the routing objects
// record: the Gateway API routes of a canary no Istio object records, the
// VirtualServices of other namespaces start recorded, and the Argo CD
// Applications that manage the routing objects.
func (c *Clients) readDependentReads(ctx context.Context, snap *routing.Snapshot, namespace, service string, opts SnapshotOptions) error {
	if opts.GatewayAPIRoutesUnlessIstio && !opts.GatewayAPIRoutes {
		if err := c.readGatewayAPIOfCanary(ctx, snap, namespace, service); err != nil {
			return err
		}
	}
	if !opts.OtherNamespaces {
		var err error
		if snap.VirtualServices, err = c.withRecordedElsewhere(ctx, snap.VirtualServices, snap.DestinationRules, service); err != nil {
			return err
		}
	}
	objects := append(append([]*unstructured.Unstructured{}, snap.VirtualServices...), snap.DestinationRules...)
	objects = append(routingOfService(objects, namespace, service), routing.GatewayAPIRoutesOf(*snap)...)
	snap.ArgoCDApplications = c.readArgoCDApplications(ctx, objects)
	return nil
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
	// GatewayAPIRoutes are the Gateway API routes of the kinds served that
	// the user may list (status of Gateway API canaries).
	GatewayAPIRoutes []*unstructured.Unstructured
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
	if inv.GatewayAPIRoutes, err = c.inventoryGatewayAPIRoutes(ctx, namespace); err != nil {
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

// Write creates, updates or deletes one object of a plan. An update or a
// delete carries the resourceVersion that was read, so a concurrent change
// is a conflict, never a silent overwrite; the caller re-reads and plans
// again. A deletion returns the object as it was.
func (c *Clients) Write(ctx context.Context, change routing.Change, serverDryRun bool) (*unstructured.Unstructured, error) {
	gvr, err := c.resourceFor(change.Desired)
	if err != nil {
		return nil, err
	}
	var dryRun []string
	if serverDryRun {
		dryRun = []string{metav1.DryRunAll}
	}
	if gvr.Group == "" {
		return c.writeService(ctx, change, dryRun)
	}
	client := c.Dynamic.Resource(gvr).Namespace(change.Desired.GetNamespace())
	if change.Delete {
		return deleteObject(ctx, change, dryRun, client.Delete)
	}
	desired := change.Desired.DeepCopy()
	desired.SetAPIVersion(gvr.GroupVersion().String())
	// Strict: a field the served CRD lacks (an older version of its API)
	// is an error, not silently dropped into a different routing.
	var written *unstructured.Unstructured
	if change.Live == nil {
		written, err = client.Create(ctx, desired, metav1.CreateOptions{DryRun: dryRun, FieldManager: FieldManager, FieldValidation: fieldValidationStrict})
	} else {
		written, err = client.Update(ctx, desired, metav1.UpdateOptions{DryRun: dryRun, FieldManager: FieldManager, FieldValidation: fieldValidationStrict})
	}
	if err != nil {
		return nil, explainUnknownFields(desired, err)
	}
	return written, nil
}

const fieldValidationStrict = "Strict"

// explainUnknownFields words a write the API server refused for fields
// its CRD does not have: the cluster serves an older version of the API.
func explainUnknownFields(obj *unstructured.Unstructured, err error) error {
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "unknown field") {
		return err
	}
	hint := ""
	if strings.Contains(err.Error(), "requestMirror.percent") {
		hint = "; mirroring a share of the requests needs Gateway API v1.2 or newer, mirroring all of them does not"
	}
	return fmt.Errorf("%s %s/%s needs fields that the cluster's %s CRD lacks, an older version of its API (%w)%s; upgrade the CRDs",
		obj.GetKind(), obj.GetNamespace(), obj.GetName(), obj.GroupVersionKind().GroupKind(), err, hint)
}

// deleteObject deletes the live object if it is still the one read; one
// already gone is what was asked.
func deleteObject(ctx context.Context, change routing.Change, dryRun []string, del func(context.Context, string, metav1.DeleteOptions, ...string) error) (*unstructured.Unstructured, error) {
	opts := metav1.DeleteOptions{DryRun: dryRun}
	if rv := change.Live.GetResourceVersion(); rv != "" {
		opts.Preconditions = &metav1.Preconditions{ResourceVersion: &rv}
	}
	if err := del(ctx, change.Live.GetName(), opts); err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	return change.Live.DeepCopy(), nil
}

// writeService writes a per-version Service through the typed client,
// which knows every field of a core Service and reads it back the same way.
func (c *Clients) writeService(ctx context.Context, change routing.Change, dryRun []string) (*unstructured.Unstructured, error) {
	client := c.Core.CoreV1().Services(change.Desired.GetNamespace())
	if change.Delete {
		return deleteObject(ctx, change, dryRun, func(ctx context.Context, name string, opts metav1.DeleteOptions, _ ...string) error {
			return client.Delete(ctx, name, opts)
		})
	}
	svc := &corev1.Service{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(change.Desired.Object, svc); err != nil {
		return nil, fmt.Errorf("cannot write Service %s/%s: %w", change.Desired.GetNamespace(), change.Desired.GetName(), err)
	}
	var err error
	if change.Live == nil {
		svc, err = client.Create(ctx, svc, metav1.CreateOptions{DryRun: dryRun, FieldManager: FieldManager})
	} else {
		svc, err = client.Update(ctx, svc, metav1.UpdateOptions{DryRun: dryRun, FieldManager: FieldManager})
	}
	if err != nil {
		return nil, err
	}
	data, err := runtime.DefaultUnstructuredConverter.ToUnstructured(svc)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: data}
	u.SetAPIVersion("v1")
	u.SetKind("Service")
	return u, nil
}

// resourceFor is the resource an object of a plan is written to: Istio's
// at the version in use, core Services, Gateway API routes at the version
// the plan gives them.
func (c *Clients) resourceFor(obj *unstructured.Unstructured) (schema.GroupVersionResource, error) {
	gvk := obj.GroupVersionKind()
	switch {
	case obj.GetKind() == "DestinationRule":
		return c.DestinationRules(), nil
	case obj.GetKind() == "VirtualService":
		return c.VirtualServices(), nil
	case obj.GetKind() == "Service" && gvk.Group == "":
		return corev1.SchemeGroupVersion.WithResource("services"), nil
	case gvk.Group == routing.GatewayAPIGroup && gvk.Version != "":
		return gvk.GroupVersion().WithResource(resourceOfKind(gvk.Kind)), nil
	}
	return schema.GroupVersionResource{}, fmt.Errorf("%s %s/%s (%s) is no routing object kubectl canary writes", obj.GetKind(), obj.GetNamespace(), obj.GetName(), obj.GetAPIVersion())
}

// ResourceOf names an object's resource the way RBAC rules and errors do,
// for example virtualservices.networking.istio.io, services or
// httproutes.gateway.networking.k8s.io.
func ResourceOf(obj *unstructured.Unstructured) string {
	switch group := obj.GroupVersionKind().Group; {
	case obj.GetKind() == "DestinationRule":
		return "destinationrules." + IstioNetworkingGroup
	case obj.GetKind() == "VirtualService":
		return "virtualservices." + IstioNetworkingGroup
	case group == "":
		return resourceOfKind(obj.GetKind())
	default:
		return resourceOfKind(obj.GetKind()) + "." + group
	}
}

// IsRetryable tells whether a write lost a race with another writer.
func IsRetryable(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
}

// permissionNeed is one question to the API server: may the user do verb
// on the resource (of group) in namespace, to the named object if any.
type permissionNeed struct{ verb, group, resource, namespace, name string }

func (n permissionNeed) String() string {
	what := n.verb + " " + n.resource
	if n.group != "" {
		what += "." + n.group
	}
	if n.name != "" {
		what += fmt.Sprintf(" %q", n.name)
	}
	return what + " in namespace " + n.namespace
}

// permissionNeeds are the questions a plan's writes raise. Updates and
// deletions are asked about by object name: RBAC can grant them on named
// objects only.
func (c *Clients) permissionNeeds(changes []routing.Change) ([]permissionNeed, error) {
	var needs []permissionNeed
	seen := map[permissionNeed]bool{}
	for _, ch := range changes {
		if !ch.Changed() {
			continue
		}
		gvr, err := c.resourceFor(ch.Desired)
		if err != nil {
			return nil, err
		}
		n := permissionNeed{verb: "update", group: gvr.Group, resource: gvr.Resource, namespace: ch.Desired.GetNamespace(), name: ch.Desired.GetName()}
		switch {
		case ch.Delete:
			n.verb = "delete"
		case ch.Live == nil:
			n.verb, n.name = "create", ""
		}
		if !seen[n] {
			seen[n] = true
			needs = append(needs, n)
		}
	}
	return needs, nil
}

// CheckPermissions asks the API server, before the first write, whether
// every write of the plan is allowed, so a missing permission stops the
// command before it changes anything.
func (c *Clients) CheckPermissions(ctx context.Context, changes []routing.Change) error {
	needs, err := c.permissionNeeds(changes)
	if err != nil {
		return err
	}
	// The questions are independent: ask them all at once.
	allowed := make([]bool, len(needs))
	errs := make([]error, len(needs))
	var wg sync.WaitGroup
	for i, n := range needs {
		wg.Go(func() {
			review, err := c.Core.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: n.namespace, Verb: n.verb, Group: n.group, Resource: n.resource, Name: n.name,
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
			denied = append(denied, n.String())
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
