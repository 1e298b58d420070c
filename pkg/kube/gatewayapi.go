package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// servedGatewayAPIRoutes are the Gateway API route kinds the cluster
// serves, each at the newest version that serves it, read from kubectl's
// discovery cache (no request when it is warm, none for the routes when
// the cluster has no Gateway API).
func (c *Clients) servedGatewayAPIRoutes() ([]schema.GroupVersionResource, error) {
	if c.Discovery == nil {
		return nil, nil
	}
	groups, err := c.Discovery.ServerGroups()
	if err != nil {
		return nil, fmt.Errorf("cannot discover the API groups of the cluster: %w", err)
	}
	var out []schema.GroupVersionResource
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
				return nil, fmt.Errorf("cannot discover %s/%s: %w", g.Name, v, err)
			}
			for _, r := range resources.APIResources {
				if !strings.Contains(r.Name, "/") && slices.Contains(routing.GatewayAPIRouteKinds, r.Kind) && !found[r.Kind] {
					found[r.Kind] = true
					out = append(out, schema.GroupVersionResource{Group: g.Name, Version: v, Resource: r.Name})
				}
			}
		}
	}
	return out, nil
}

// gatewayAPIRoutesToRead are the route kinds to list when opts asks for
// them; the Services are then read too, for the per-version Services the
// routes may name.
func (c *Clients) gatewayAPIRoutesToRead(opts *SnapshotOptions) ([]schema.GroupVersionResource, error) {
	if !opts.GatewayAPIRoutes {
		return nil, nil
	}
	served, err := c.servedGatewayAPIRoutes()
	opts.Services = opts.Services || len(served) > 0
	return served, err
}

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
