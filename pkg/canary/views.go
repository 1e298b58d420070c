package canary

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// CheckService reads a Service and everything that routes it, and checks
// it is ready for a canary.
func (c *Cluster) CheckService(ctx context.Context, namespace, service string, intent routing.Intent, opts routing.CheckOptions) ([]routing.Finding, error) {
	snap, err := c.Read(ctx, Query{Namespace: namespace, Service: service, OtherNamespaces: true, Services: true, GatewayAPIRoutes: true, ClusterDomain: intent.ClusterDomain})
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

// VersionNames lists the versions behind a Service, as start tells them
// apart (by versionLabel, or the label it infers).
func (c *Cluster) VersionNames(ctx context.Context, namespace, service, versionLabel string) ([]string, error) {
	snap, err := c.Read(ctx, Query{Namespace: namespace, Service: service})
	if err != nil {
		return nil, err
	}
	return routing.VersionNames(*snap, versionLabel)
}
