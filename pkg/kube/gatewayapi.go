package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// gatewayAPIGatewayKind is the Gateway API's Gateway, which --gateway may
// name instead of an Istio Gateway.
const gatewayAPIGatewayKind = "Gateway"

// servedGatewayAPI are the Gateway API route kinds the cluster serves, and
// its Gateway kind (nil when not served), each at the newest version that
// serves it, read from kubectl's discovery cache (no request when it is
// warm, none for the routes when the cluster has no Gateway API).
func (c *Clients) servedGatewayAPI() (routes []schema.GroupVersionResource, gateway *schema.GroupVersionResource, err error) {
	if c.Discovery == nil {
		return nil, nil, nil
	}
	groups, err := c.Discovery.ServerGroups()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot discover the API groups of the cluster: %w", err)
	}
	found := map[string]bool{}
	for _, g := range groups.Groups {
		if g.Name != routing.GatewayAPIGroup {
			continue
		}
		// The preferred version first, then the others as the server lists them.
		versions := []string{g.PreferredVersion.Version}
		for _, v := range g.Versions {
			versions = append(versions, v.Version)
		}
		for _, v := range versions {
			resources, err := c.Discovery.ServerResourcesForGroupVersion(g.Name + "/" + v)
			if err != nil {
				return nil, nil, fmt.Errorf("cannot discover %s/%s: %w", g.Name, v, err)
			}
			for _, r := range resources.APIResources {
				if strings.Contains(r.Name, "/") || found[r.Kind] {
					continue
				}
				gvr := schema.GroupVersionResource{Group: g.Name, Version: v, Resource: r.Name}
				switch {
				case slices.Contains(routing.GatewayAPIRouteKinds, r.Kind):
					found[r.Kind] = true
					routes = append(routes, gvr)
				case r.Kind == gatewayAPIGatewayKind:
					found[r.Kind] = true
					gateway = &gvr
				}
			}
		}
	}
	return routes, gateway, nil
}

// gatewayAPIVersions are the apiVersions served for the route kinds, for
// the routes a plan creates.
func gatewayAPIVersions(served []schema.GroupVersionResource) map[string]string {
	out := map[string]string{}
	for _, gvr := range served {
		out[kindOfResource(gvr.Resource)] = gvr.GroupVersion().String()
	}
	return out
}

// kindOfResource is the Gateway API kind of a route resource (httproutes).
func kindOfResource(resource string) string {
	for _, kind := range append([]string{gatewayAPIGatewayKind}, routing.GatewayAPIRouteKinds...) {
		if strings.ToLower(kind)+"s" == resource {
			return kind
		}
	}
	return resource
}

// resourceOfKind is the resource of a Gateway API kind (HTTPRoute: httproutes).
func resourceOfKind(kind string) string { return strings.ToLower(kind) + "s" }

// readGatewayAPIRoutes lists the namespace's Gateway API routes of every
// served kind, all at once. A kind the user may not list is left out with
// a warning: the check then cannot see those routes.
func (c *Clients) readGatewayAPIRoutes(ctx context.Context, namespace string, served []schema.GroupVersionResource) ([]*unstructured.Unstructured, []string, error) {
	lists := make([][]*unstructured.Unstructured, len(served))
	errs := make([]error, len(served))
	var wg sync.WaitGroup
	for i, gvr := range served {
		wg.Go(func() { lists[i], errs[i] = c.listRouting(ctx, gvr, namespace) })
	}
	wg.Wait()
	var routes []*unstructured.Unstructured
	var warnings []string
	for i, err := range errs {
		switch {
		case apierrors.IsForbidden(err):
			warnings = append(warnings, fmt.Sprintf("not allowed to list %s.%s in namespace %s, so routes of the Kubernetes Gateway API that also carry the Service cannot be seen; ask for list on them to be warned", served[i].Resource, served[i].Group, namespace))
		case apierrors.IsNotFound(err):
			// Removed since the discovery cache was filled.
		case err != nil:
			return nil, nil, err
		default:
			routes = append(routes, lists[i]...)
		}
	}
	return routes, warnings, nil
}

// gatewayAPIReads is what a snapshot reads of the Gateway API: the routes
// of the served kinds (with the namespace's Services they may name), and
// the kind of Gateway --gateway may name.
type gatewayAPIReads struct {
	routes  []schema.GroupVersionResource
	gateway *schema.GroupVersionResource
}

// gatewayAPIToRead asks discovery what start, check and --gateway read of
// the Gateway API; the commands after start ask later, and only when no
// Istio object records the canary (readGatewayAPIOfCanary).
func (c *Clients) gatewayAPIToRead(opts SnapshotOptions) (gatewayAPIReads, error) {
	if !opts.GatewayAPIRoutes && len(opts.Gateways) == 0 {
		return gatewayAPIReads{}, nil
	}
	routes, gateway, err := c.servedGatewayAPI()
	return gatewayAPIReads{routes: routes, gateway: gateway}, err
}

// readGatewayAPIOfCanary reads, after the Istio objects, the routes and
// Services of a command on a running canary when no Istio object records
// one in progress: the canary runs on the Gateway API, or on none. An Istio
// canary's commands so cost no more reads than before.
func (c *Clients) readGatewayAPIOfCanary(ctx context.Context, snap *routing.Snapshot, namespace, service string) error {
	if istioRecordsProgressing(snap, service) {
		return nil
	}
	var reads gatewayAPIReads
	var err error
	if reads.routes, _, err = c.servedGatewayAPI(); err != nil || len(reads.routes) == 0 {
		return err
	}
	var routesErr, servicesErr error
	var warnings []string
	var wg sync.WaitGroup
	wg.Go(func() {
		snap.GatewayAPIRoutes, warnings, routesErr = c.readGatewayAPIRoutes(ctx, namespace, reads.routes)
	})
	if snap.Services == nil {
		wg.Go(func() { snap.Services, servicesErr = c.listServices(ctx, namespace) })
	}
	wg.Wait()
	snap.Warnings = append(snap.Warnings, warnings...)
	snap.GatewayAPIServed = true
	snap.GatewayAPIVersions = gatewayAPIVersions(reads.routes)
	if routesErr != nil {
		return routesErr
	}
	return servicesErr
}

// istioRecordsProgressing says whether a VirtualService or DestinationRule
// of the snapshot records a canary of the Service in progress.
func istioRecordsProgressing(snap *routing.Snapshot, service string) bool {
	for _, obj := range append(append([]*unstructured.Unstructured{}, snap.VirtualServices...), snap.DestinationRules...) {
		if st, err := routing.ReadState(obj, service); err != nil || (st != nil && st.Phase == routing.PhaseProgressing) {
			return true
		}
	}
	return false
}

// readGateways reads the Gateways --gateway names: the Istio Gateway and,
// where the cluster serves it, the Gateway API's of that name; those that
// exist are returned, a missing one is left for the core to explain.
func (c *Clients) readGateways(ctx context.Context, names []types.NamespacedName, gatewayAPI *schema.GroupVersionResource) ([]*unstructured.Unstructured, error) {
	istio := make([]*unstructured.Unstructured, len(names))
	istioErrs := make([]error, len(names))
	others := make([]*unstructured.Unstructured, len(names))
	otherErrs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, g := range names {
		wg.Go(func() {
			istio[i], istioErrs[i] = c.Dynamic.Resource(c.Gateways()).Namespace(g.Namespace).Get(ctx, g.Name, metav1.GetOptions{})
		})
		wg.Go(func() { others[i], otherErrs[i] = c.readGatewayAPIGateway(ctx, gatewayAPI, g.Namespace, g.Name) })
	}
	wg.Wait()
	found, err := foundGateways(names, istio, istioErrs)
	if err != nil {
		return nil, err
	}
	for i := range names {
		if otherErrs[i] != nil {
			return nil, otherErrs[i]
		}
		if others[i] != nil {
			found = append(found, others[i])
		}
	}
	return found, nil
}

// readNamespace reads the Namespace object; a user who may not read it
// gets a warning, and the plan goes on as if it had no labels.
func (c *Clients) readNamespace(ctx context.Context, namespace string) (*corev1.Namespace, []string, error) {
	ns, err := c.Core.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return nil, []string{fmt.Sprintf("not allowed to get namespace %s, so whether it runs in Istio's ambient mode (label %s) is not known; ask for get on namespaces to be warned", namespace, routing.AmbientModeLabel)}, nil
	case apierrors.IsNotFound(err):
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("cannot read namespace %s: %w", namespace, err)
	}
	return ns, nil, nil
}

// readGatewayAPIGateway reads the Gateway API Gateway --gateway names,
// when the cluster serves the kind; a missing one is left for the core.
func (c *Clients) readGatewayAPIGateway(ctx context.Context, gvr *schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	if gvr == nil {
		return nil, nil
	}
	gw, err := c.Dynamic.Resource(*gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read Gateway %s/%s of the Gateway API: %w", namespace, name, err)
	}
	return gw, nil
}

// inventoryGatewayAPIRoutes lists the Gateway API routes of the served
// kinds for status; kinds the user may not list are left out, as a
// cluster without the Gateway API has none.
func (c *Clients) inventoryGatewayAPIRoutes(ctx context.Context, namespace string) ([]*unstructured.Unstructured, error) {
	served, _, err := c.servedGatewayAPI()
	if err != nil || len(served) == 0 {
		return nil, err
	}
	routes, _, err := c.readGatewayAPIRoutes(ctx, namespace, served)
	return routes, err
}

// Reread reads a routing object again, as the API server has it now: a
// route's status after its controller saw a write.
func (c *Clients) Reread(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvr, err := c.resourceFor(obj)
	if err != nil {
		return nil, err
	}
	return c.Dynamic.Resource(gvr).Namespace(obj.GetNamespace()).Get(ctx, obj.GetName(), metav1.GetOptions{})
}
