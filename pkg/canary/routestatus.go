package canary

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// routeStatusPoll is how often a written route's status is read again.
const routeStatusPoll = 100 * time.Millisecond

// RouteStatusReader is an Observer that reads back, after a write, what
// the controllers of the written Gateway API routes say of the written
// generation, and warns of routes not accepted or with references they
// cannot resolve (a missing Service: BackendNotFound). It waits only where
// a controller is expected to answer: routes that had a status before the
// write, or every route with RequireAccepted (--wait).
type RouteStatusReader struct {
	// Reread reads a route as the API server has it now.
	Reread func(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error)
	// Timeout bounds the wait for the controllers' answer.
	Timeout time.Duration
	// RequireAccepted makes a route not accepted within Timeout an error:
	// --wait waits for the routes to be accepted before the proxies.
	RequireAccepted bool
	Warn            func(message string)
}

func (r *RouteStatusReader) BeforeWrite(context.Context, *routing.Plan) error { return nil }

func (r *RouteStatusReader) AfterWrite(ctx context.Context, result *Result, err error) error {
	if err != nil || result == nil || result.Request.DryRun != NoDryRun {
		return nil
	}
	routes := r.awaited(result)
	if len(routes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	current := make([]*unstructured.Unstructured, len(routes))
	for {
		pending := 0
		for i, route := range routes {
			if got, err := r.Reread(ctx, route); err == nil && got.GetGeneration() >= route.GetGeneration() {
				current[i] = got
			}
			if current[i] == nil {
				pending++
			} else if _, observed := routing.RouteAccepted(current[i]); !observed {
				pending++
			}
		}
		if pending == 0 || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(routeStatusPoll):
		}
	}
	return r.report(routes, current)
}

// awaited are the written routes whose controllers are expected to answer.
func (r *RouteStatusReader) awaited(result *Result) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, oc := range result.Outcomes {
		c := oc.Change
		if !c.Changed() || c.Delete || oc.Object == nil || !slices.Contains(routing.GatewayAPIRouteKinds, oc.Object.GetKind()) {
			continue
		}
		hadStatus := c.Live != nil && len(asList(c.Live.Object["status"], "parents")) > 0
		if r.RequireAccepted || hadStatus {
			out = append(out, oc.Object)
		}
	}
	return out
}

// report warns of every problem the controllers reported, and with
// RequireAccepted fails for routes not accepted in time.
func (r *RouteStatusReader) report(written, current []*unstructured.Unstructured) error {
	var notAccepted []string
	for i, route := range written {
		ref := fmt.Sprintf("%s %s/%s", route.GetKind(), route.GetNamespace(), route.GetName())
		if current[i] == nil {
			notAccepted = append(notAccepted, ref+" (not read back)")
			continue
		}
		for _, p := range routing.RouteStatusProblems(current[i]) {
			if r.Warn != nil {
				r.Warn(ref + " " + p.String())
			}
		}
		if accepted, observed := routing.RouteAccepted(current[i]); !accepted {
			why := "no controller reported on it"
			if observed {
				why = "its controller refused it"
			}
			notAccepted = append(notAccepted, fmt.Sprintf("%s (generation %d: %s)", ref, route.GetGeneration(), why))
		}
	}
	if len(notAccepted) == 0 {
		return nil
	}
	message := fmt.Sprintf("not accepted within %s: %s. The change is written; `kubectl get %s -o yaml` shows the route's status.parents", r.Timeout, strings.Join(notAccepted, ", "), strings.ToLower(written[0].GetKind()))
	if !r.RequireAccepted {
		if r.Warn != nil {
			r.Warn("route(s) " + message)
		}
		return nil
	}
	return fmt.Errorf("--wait: route(s) %s; no proxy waited for", message)
}

func asList(v interface{}, key string) []interface{} {
	m, _ := v.(map[string]interface{})
	list, _ := m[key].([]interface{})
	return list
}
