package canary

import (
	"context"
	"fmt"
	"time"

	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// burstWindow is how long a watch waits, after a change, for the rest of
// its burst: a command writes a DestinationRule and then its
// VirtualServices, and the statuses are worth computing once, after the last.
const burstWindow = 100 * time.Millisecond

// Statuses reads the canaries of a namespace ("" for all) or, when service
// is given, of that Service alone.
func (c *Cluster) Statuses(ctx context.Context, namespace, service string) ([]routing.CanaryStatus, error) {
	inv, err := c.clients.ReadInventory(ctx, namespace)
	if err != nil {
		return nil, err
	}
	return statusesOf(inv, namespace, service)
}

// WatchStatuses follows the canaries Statuses would read: it calls each
// with all of them once the watch has its first lists, then again after
// every burst of changes (which may leave them as they were), until ctx
// ends (which is no error). It stops at the first error, from the cluster
// or from each.
func (c *Cluster) WatchStatuses(ctx context.Context, namespace, service string, each func([]routing.CanaryStatus) error) error {
	err := c.watchStatuses(ctx, namespace, service, each)
	if ctx.Err() != nil {
		// Ended by the caller (Ctrl-C): whatever failed meanwhile was cut short by it.
		return nil
	}
	return err
}

func (c *Cluster) watchStatuses(ctx context.Context, namespace, service string, each func([]routing.CanaryStatus) error) error {
	watch, err := c.clients.WatchInventory(ctx, namespace)
	if err != nil {
		return err
	}
	defer watch.Stop()
	for {
		inv, err := watch.Inventory(ctx)
		if err != nil {
			return err
		}
		statuses, err := statusesOf(inv, namespace, service)
		if err != nil {
			return err
		}
		if err := each(statuses); err != nil {
			return err
		}
		if !nextBurst(ctx, watch.Changes()) {
			return nil
		}
	}
}

// nextBurst waits for a change and then burstWindow more, and reports
// false if ctx ends first. A change signalled during the window is covered
// by the read that follows, so its signal is dropped.
func nextBurst(ctx context.Context, changes <-chan struct{}) bool {
	select {
	case <-ctx.Done():
		return false
	case <-changes:
	}
	window := time.NewTimer(burstWindow)
	defer window.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-window.C:
	}
	select {
	case <-changes:
	default:
	}
	return true
}

// statusesOf sums up the canaries of an inventory in a namespace ("" for
// all) or of one Service, with an error that says what to do when the
// Service is missing or has no canary.
func statusesOf(inv *kube.Inventory, namespace, service string) ([]routing.CanaryStatus, error) {
	statuses := routing.SummarizeRouting(inv.Services, inv.Deployments, inv.VirtualServices, inv.DestinationRules, inv.GatewayAPIRoutes)
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
			return nil, routing.Errorf("service %s/%s has no canary recorded; start one with kubectl canary start %s{Target}", namespace, service, service)
		}
	}
	return nil, fmt.Errorf("service %q not found in namespace %q; check the name, or pass -n with the namespace it lives in", service, namespace)
}
