package routing

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
)

// ruleRefFor records a rule of a Gateway API route so later commands find
// it again: by name, else by its matches.
func ruleRefFor(index int, rule map[string]interface{}) RouteRef {
	return RouteRef{Kind: gatewayRules, Index: index, Name: asString(rule["name"]), Match: routeFingerprint(gatewayRules, rule)}
}

// describeRule words a recorded rule for messages.
func describeRule(ref RouteRef) string {
	if ref.Name != "" {
		return fmt.Sprintf("rule %q", ref.Name)
	}
	return fmt.Sprintf("rule #%d", ref.Index)
}

// isSplittableRule is the managed rule: its backendRefs send
// traffic to the Service or the stable version's Service, and to nothing
// outside the stable and canary Services. A rule pinned to the canary, or
// to another version, is a deliberate rule and stays as it is.
func (b *gatewayAPIBackend) isSplittableRule(route *object, rule map[string]interface{}, t splitTargets) bool {
	toStable := false
	for _, raw := range backendRefsOf(rule) {
		ref := asMap(raw)
		name, ok := b.namedService(route, ref)
		switch {
		case ok && (name == b.svc.name || name == t.stable):
			toStable = toStable || backendWeight(ref) > 0
		case ok && name == t.canary:
		case backendWeight(ref) == 0:
			// A backend at weight 0 gets nothing (the conformance
			// tests' 70/30/0): the rule does not mix it in, and the
			// split keeps it as it is.
		default:
			return false
		}
	}
	return toStable
}

// idleBackends are the rule's backendRefs at weight 0 to other backends
// than the Service and the stable and canary Services: a split or a
// finish keeps them, after the canary's, as the rule had them.
func (b *gatewayAPIBackend) idleBackends(route *object, rule map[string]interface{}, t splitTargets) []interface{} {
	var out []interface{}
	for _, raw := range backendRefsOf(rule) {
		ref := asMap(raw)
		name, ok := b.namedService(route, ref)
		if backendWeight(ref) == 0 && !(ok && (name == b.svc.name || name == t.stable || name == t.canary)) {
			out = append(out, ref)
		}
	}
	return out
}

// chooseManagedRules are the splittable rules of a route, those named in
// wanted when it names any.
func (b *gatewayAPIBackend) chooseManagedRules(route *object, t splitTargets, wanted map[string]bool) []RouteRef {
	var refs []RouteRef
	for i, raw := range rulesOf(route.spec()) {
		rule := asMap(raw)
		if len(wanted) > 0 && !wanted[asString(rule["name"])] {
			continue
		}
		if b.isSplittableRule(route, rule, t) {
			refs = append(refs, ruleRefFor(i, rule))
		}
	}
	return refs
}

// backendTemplates returns the rule's backendRefs for the stable and the
// canary Service, one made from the other when the rule has just one, so
// that ports, per-backend filters and fields unknown to the plugin
// survive. They are the rule's own entries when reuse is set (the caller
// replaces the rule's list), copies otherwise.
func (b *gatewayAPIBackend) backendTemplates(route *object, rule map[string]interface{}, t splitTargets, reuse bool) (stable, canary map[string]interface{}) {
	own := func(ref map[string]interface{}) map[string]interface{} {
		if reuse {
			return ref
		}
		return runtime.DeepCopyJSON(ref)
	}
	for _, raw := range backendRefsOf(rule) {
		ref := asMap(raw)
		name, ok := b.namedService(route, ref)
		switch {
		case !ok:
		case (name == b.svc.name || name == t.stable) && stable == nil:
			stable = own(ref)
		case name == t.canary && canary == nil:
			canary = own(ref)
		}
	}
	if stable == nil && canary == nil {
		stable = map[string]interface{}{"group": "", "kind": "Service"}
	}
	if stable == nil {
		stable = runtime.DeepCopyJSON(canary)
	}
	if canary == nil {
		canary = runtime.DeepCopyJSON(stable)
	}
	stable["name"], canary["name"] = t.stable, t.canary
	for _, ref := range []map[string]interface{}{stable, canary} {
		if _, ok := ref["port"]; !ok {
			ref["port"] = b.defaultPort(route)
		}
	}
	return stable, canary
}

// defaultPort is the port of a backendRef that had none: the port the
// route attaches to, else the Service's first.
func (b *gatewayAPIBackend) defaultPort(route *object) int64 {
	for _, raw := range asSlice(route.spec()["parentRefs"]) {
		ref := asMap(raw)
		if port, ok := asInt(ref["port"]); ok && asString(ref["kind"]) == "Service" && asString(ref["name"]) == b.svc.name {
			return port
		}
	}
	if ports := b.snap.Service.Spec.Ports; len(ports) > 0 {
		return int64(ports[0].Port)
	}
	return 0
}

// splitBackends sets a rule's backendRefs to [stable: 100-w, canary: w].
func (b *gatewayAPIBackend) splitBackends(route *object, rule map[string]interface{}, t splitTargets, weight int64) {
	idle := b.idleBackends(route, rule, t)
	stable, canary := b.backendTemplates(route, rule, t, true)
	stable["weight"] = 100 - weight
	canary["weight"] = weight
	rule["backendRefs"] = append([]interface{}{stable, canary}, idle...)
}

// soleBackend returns the backendRefs that send everything to target, the
// shape a rule has before and after a canary; replacing as for
// soleDestination. The weight is the API's default, written out so that
// the spec recorded is the one the server keeps. Replacing, the rule's
// idle backends stay after it.
func (b *gatewayAPIBackend) soleBackend(route *object, rule map[string]interface{}, t splitTargets, target string, replacing bool) []interface{} {
	var idle []interface{}
	if replacing {
		idle = b.idleBackends(route, rule, t)
	}
	stable, canary := b.backendTemplates(route, rule, t, replacing)
	ref := stable
	if target == t.canary {
		ref = canary
	}
	ref["weight"] = int64(1)
	return append([]interface{}{ref}, idle...)
}

// splitRules splits the recorded rules of a route at weight.
func (b *gatewayAPIBackend) splitRules(route *object, refs []RouteRef, t splitTargets, weight int64) error {
	finder := newRouteFinder(route)
	for _, ref := range refs {
		_, rule, err := b.findManagedRule(finder, ref, t)
		if err != nil {
			return err
		}
		b.splitBackends(route, rule, t, weight)
	}
	return nil
}

// findManagedRule finds a recorded rule and checks that it still sends
// traffic to the canary's Services: a rule someone pointed elsewhere is
// theirs now.
func (b *gatewayAPIBackend) findManagedRule(finder *routeFinder, ref RouteRef, t splitTargets) (int, map[string]interface{}, error) {
	route := finder.o
	i, err := finder.index(ref)
	if err != nil {
		return 0, nil, b.ruleChangedByOthers(route, fmt.Sprintf("managed %s is gone", describeRule(ref)))
	}
	rule := asMap(rulesOf(route.spec())[i])
	for _, raw := range backendRefsOf(rule) {
		if name, ok := b.namedService(route, asMap(raw)); ok && (name == b.svc.name || name == t.stable || name == t.canary) {
			return i, rule, nil
		}
	}
	return 0, nil, b.ruleChangedByOthers(route, fmt.Sprintf("managed %s sends no traffic to Service %s or %s any more", describeRule(ref), t.stable, t.canary))
}

func (b *gatewayAPIBackend) ruleChangedByOthers(route *object, what string) error {
	r := route.desired
	return fmt.Errorf("%s in %s: someone changed it; set its backendRefs back to the canary's Services by hand (kubectl edit %s %s -n %s), then run the command again", what, route.ref(), strings.ToLower(r.GetKind()), r.GetName(), r.GetNamespace())
}
