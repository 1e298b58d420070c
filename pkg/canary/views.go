package canary

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// Statuses reads the canaries of a namespace ("" for all) or, when service
// is given, of that Service alone.
func (c *Cluster) Statuses(ctx context.Context, namespace, service string) ([]routing.CanaryStatus, error) {
	inv, err := c.clients.ReadInventory(ctx, namespace)
	if err != nil {
		return nil, err
	}
	statuses := routing.Summarize(inv.Services, inv.Deployments, inv.VirtualServices, inv.DestinationRules)
	if namespace != "" {
		// VirtualServices of other namespaces may name canaries there.
		kept := statuses[:0]
		for _, st := range statuses {
			if st.Namespace == namespace {
				kept = append(kept, st)
			}
		}
		statuses = kept
	}
	if service == "" {
		return statuses, nil
	}
	for _, st := range statuses {
		if st.Service == service {
			return []routing.CanaryStatus{st}, nil
		}
	}
	for _, svc := range inv.Services {
		if svc.Name == service {
			return nil, fmt.Errorf("service %s/%s has no canary recorded; start one with kubectl canary start %s", namespace, service, service)
		}
	}
	return nil, fmt.Errorf("service %q not found in namespace %q; check the name, or pass -n with the namespace it lives in", service, namespace)
}

// CheckService reads a Service and everything that routes it, and checks
// it is ready for a canary.
func (c *Cluster) CheckService(ctx context.Context, namespace, service string, intent routing.Intent, opts routing.CheckOptions) ([]routing.Finding, error) {
	snap, err := c.Read(ctx, Query{Namespace: namespace, Service: service, OtherNamespaces: true, Services: true, ClusterDomain: intent.ClusterDomain})
	if err != nil {
		return nil, err
	}
	return routing.Check(*snap, intent, opts), nil
}

// ServiceNames lists the names of the Services of a namespace.
func (c *Cluster) ServiceNames(ctx context.Context, namespace string) ([]string, error) {
	list, err := c.clients.Core.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(list.Items))
	for _, svc := range list.Items {
		names = append(names, svc.Name)
	}
	return names, nil
}

// NamespaceNames lists the names of the cluster's namespaces.
func (c *Cluster) NamespaceNames(ctx context.Context) ([]string, error) {
	list, err := c.clients.Core.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(list.Items))
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	return names, nil
}
