package routing

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// check runs the preflight over the Service's Gateway API routes: owners
// and GitOps tools, routing mixed with VirtualServices, ambient mode
// without a waypoint, the routes' backendRefs, weights and status, then
// the versions and their readiness.
func (b *gatewayAPIBackend) check(c *checker, opts CheckOptions) {
	var t splitTargets
	if c.active != nil {
		t = targetsOf(c.active)
	}
	var routing []*unstructured.Unstructured
	for _, route := range b.routes {
		if b.routesService(route, t) {
			routing = append(routing, route.live)
		}
	}
	c.checkOwners(routing)
	c.checkGitOps(routing)
	b.checkMixedRouting(c)
	b.checkWaypoint(c)
	for _, route := range routing {
		b.checkBackends(c, route)
		checkRouteStatus(c, route)
	}
	if _, versions := c.versions(); versions != nil {
		c.checkReadiness(versions, opts)
	}
}

// checkMixedRouting refuses a Gateway API canary for a Service that
// VirtualServices route too: Istio leaves undefined which applies.
func (b *gatewayAPIBackend) checkMixedRouting(c *checker) {
	for _, ref := range istioRoutingObjects(b.snap, b.svc) {
		c.add(SeverityError, ref, "routes %s with Istio's API beside its Kubernetes Gateway API routes; Istio leaves undefined which of them applies, so the canary's split would not be the one written. Delete this VirtualService or the Gateway API routes so one API routes the Service, or pass {Override} to write all the same", c.svcRef)
	}
}

// checkWaypoint refuses a canary in an ambient namespace whose Service has
// no waypoint: ztunnel alone does not apply L7 routes, so the split would
// have no effect.
func (b *gatewayAPIBackend) checkWaypoint(c *checker) {
	if !inAmbientNamespace(b.snap) || hasWaypoint(b.snap) {
		return
	}
	ns := b.svc.namespace
	c.add(SeverityError, c.svcRef, "is in ambient namespace %s (label %s=%s) and has no waypoint, so its Gateway API routes take no effect and the canary's split would not apply. Add one with istioctl waypoint apply -n %s --enroll-namespace, or label the Service with %s=WAYPOINT; or pass {Override} to write all the same", ns, AmbientModeLabel, AmbientMode, ns, UseWaypointLabel)
}

// checkBackends reports backendRefs to Services of the namespace that do
// not exist (those requests fail), negative weights, and rules whose
// weights send nothing anywhere.
func (b *gatewayAPIBackend) checkBackends(c *checker, route *unstructured.Unstructured) {
	exists := map[string]bool{}
	for _, s := range b.snap.Services {
		exists[s.Name] = true
	}
	o := &object{live: route, desired: route}
	reported := map[string]bool{}
	for i, raw := range rulesOf(asMap(route.Object["spec"])) {
		rule := asMap(raw)
		where := describeRule(ruleRefFor(i, rule))
		refs := backendRefsOf(rule)
		var sum int64
		for _, r := range refs {
			ref := asMap(r)
			w := backendWeight(ref)
			sum += w
			if w < 0 {
				c.add(SeverityError, objectRef(route), "%s has a negative weight (%d); set it to 0 or more", where, w)
			}
			name, ok := b.namedService(o, ref)
			if ok && b.snap.Services != nil && !exists[name] && !reported[name] {
				reported[name] = true
				c.add(SeverityWarning, objectRef(route), "has a backendRef to Service %s/%s, which does not exist: those requests fail. Create the Service or fix the backendRef", b.svc.namespace, name)
			}
		}
		if len(refs) > 0 && sum <= 0 {
			c.add(SeverityWarning, objectRef(route), "%s gives all its backendRefs weight 0, so its requests fail; give one a weight", where)
		}
	}
}

// checkRouteStatus reports what the route's controllers said of its
// current generation: not Accepted (the route does nothing, an error) or
// refs not resolved (a backend is missing, a warning).
func checkRouteStatus(c *checker, route *unstructured.Unstructured) {
	for _, p := range RouteStatusProblems(route) {
		severity := SeverityWarning
		if p.Type == "Accepted" {
			severity = SeverityError
		}
		c.add(severity, objectRef(route), "%s", p.String())
	}
}

// RouteProblem is a condition Accepted or ResolvedRefs that a controller
// set False on a Gateway API route's current generation.
type RouteProblem struct {
	Type, Controller, Reason, Message string
}

func (p RouteProblem) String() string {
	if p.Type == "Accepted" {
		return fmt.Sprintf("is not accepted by %s (%s: %s), so its rules take no effect; fix what the message says first", p.Controller, p.Reason, p.Message)
	}
	return fmt.Sprintf("has references %s cannot resolve (%s: %s); requests to them fail", p.Controller, p.Reason, p.Message)
}

// RouteStatusProblems are the route's conditions Accepted and ResolvedRefs
// that are False for its current generation (conditions of an older
// generation say nothing of the spec as it is).
func RouteStatusProblems(route *unstructured.Unstructured) []RouteProblem {
	var out []RouteProblem
	for _, raw := range asSlice(asMap(route.Object["status"])["parents"]) {
		parent := asMap(raw)
		for _, cr := range asSlice(parent["conditions"]) {
			cond := asMap(cr)
			kind := asString(cond["type"])
			if asString(cond["status"]) != "False" || (kind != "Accepted" && kind != "ResolvedRefs") {
				continue
			}
			if gen, ok := asInt(cond["observedGeneration"]); ok && route.GetGeneration() != 0 && gen != route.GetGeneration() {
				continue
			}
			out = append(out, RouteProblem{Type: kind, Controller: asString(parent["controllerName"]), Reason: asString(cond["reason"]), Message: asString(cond["message"])})
		}
	}
	return out
}

// RouteAccepted says whether a controller has accepted the route's current
// generation for every parent it reports on, and whether any reported on
// that generation at all.
func RouteAccepted(route *unstructured.Unstructured) (accepted, observed bool) {
	accepted = true
	for _, raw := range asSlice(asMap(route.Object["status"])["parents"]) {
		for _, cr := range asSlice(asMap(raw)["conditions"]) {
			cond := asMap(cr)
			if asString(cond["type"]) != "Accepted" {
				continue
			}
			if gen, ok := asInt(cond["observedGeneration"]); ok && route.GetGeneration() != 0 && gen != route.GetGeneration() {
				continue
			}
			observed = true
			accepted = accepted && asString(cond["status"]) == "True"
		}
	}
	return accepted && observed, observed
}
