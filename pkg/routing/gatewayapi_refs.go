package routing

// gatewayRules is the RouteRef.Kind of a Gateway API route's rule: the
// list the rule is in (spec.rules), as "http" is a VirtualService's.
const gatewayRules = "rules"

func rulesOf(spec map[string]interface{}) []interface{} {
	return asSlice(spec[gatewayRules])
}

func backendRefsOf(rule map[string]interface{}) []interface{} {
	return asSlice(rule["backendRefs"])
}

// backendWeight is a backendRef's weight; the API reads a missing one as 1.
func backendWeight(ref map[string]interface{}) int64 {
	w, ok := asInt(ref["weight"])
	if !ok {
		return 1
	}
	return w
}

// serviceRefNamespace is the namespace of the core Service a parentRef or
// backendRef in a route of routeNamespace names, "" when it names another
// kind. A backendRef's kind defaults to Service; callers check a
// parentRef's kind, which defaults to Gateway, themselves.
func serviceRefNamespace(ref map[string]interface{}, routeNamespace string) string {
	group, kind := asString(ref["group"]), asString(ref["kind"])
	if (group != "" && group != "core") || (kind != "" && kind != "Service") {
		return ""
	}
	if ns := asString(ref["namespace"]); ns != "" {
		return ns
	}
	return routeNamespace
}

// namedService is the name of the Service of the canary's namespace a
// backendRef of route names; ok is false for anything else.
func (b *gatewayAPIBackend) namedService(route *object, ref map[string]interface{}) (string, bool) {
	if serviceRefNamespace(ref, route.desired.GetNamespace()) != b.svc.namespace {
		return "", false
	}
	return asString(ref["name"]), true
}

// names reports whether a backendRef of route names the Service name of
// the canary's namespace.
func (b *gatewayAPIBackend) names(route *object, ref map[string]interface{}, name string) bool {
	got, ok := b.namedService(route, ref)
	return ok && got == name
}

// routesService reports whether a route carries the Service's traffic:
// gatewayAPIRouting says so, or a backendRef names one of the canary's
// per-version Services (which gatewayAPIRouting knows once they exist).
func (b *gatewayAPIBackend) routesService(route *object, targets splitTargets) bool {
	if gatewayAPIRouting(route.desired, b.snap.Service, b.snap.Services) != "" {
		return true
	}
	for _, raw := range rulesOf(route.spec()) {
		for _, ref := range backendRefsOf(asMap(raw)) {
			if name, ok := b.namedService(route, asMap(ref)); ok && name != "" && (name == targets.stable || name == targets.canary) {
				return true
			}
		}
	}
	return false
}

// meshRouted reports whether a route of the Service's namespace attaches
// to the Service itself (GAMMA): without one, in-mesh calls balance over
// every version's pods, so start creates one.
func (b *gatewayAPIBackend) meshRouted() bool {
	for _, route := range b.routes {
		// A route of another namespace applies to its own namespace's
		// calls only (a consumer route).
		if route.desired.GetNamespace() != b.svc.namespace {
			continue
		}
		if parentsService(route.spec(), route.desired.GetNamespace(), b.svc) {
			return true
		}
	}
	return false
}

// parentsService reports whether a route spec attaches to the Service.
func parentsService(spec map[string]interface{}, routeNamespace string, svc serviceRef) bool {
	for _, raw := range asSlice(spec["parentRefs"]) {
		ref := asMap(raw)
		if asString(ref["kind"]) == "Service" && serviceRefNamespace(ref, routeNamespace) == svc.namespace && asString(ref["name"]) == svc.name {
			return true
		}
	}
	return false
}

// servicesNamed lists the Services of the canary's namespace that any
// backendRef or request mirror of the routes names.
func (b *gatewayAPIBackend) servicesNamed() map[string]bool {
	out := map[string]bool{}
	add := func(route *object, ref map[string]interface{}) {
		if name, ok := b.namedService(route, ref); ok {
			out[name] = true
		}
	}
	mirrors := func(route *object, filters []interface{}) {
		for _, f := range filters {
			if mirror := asMap(asMap(f)["requestMirror"]); mirror != nil {
				add(route, asMap(mirror["backendRef"]))
			}
		}
	}
	for _, route := range b.routes {
		for _, raw := range rulesOf(route.spec()) {
			rule := asMap(raw)
			mirrors(route, asSlice(rule["filters"]))
			for _, ref := range backendRefsOf(rule) {
				add(route, asMap(ref))
				mirrors(route, asSlice(asMap(ref)["filters"]))
			}
		}
	}
	return out
}
