package routing

import (
	"strings"
)

// shapeMirror sets or removes the RequestMirror filter of a managed rule
// that shadows its traffic to the canary's Service. Mirrors to anything
// else are someone else's and stay; the API allows several.
func (b *gatewayAPIBackend) shapeMirror(route *object, st *State, rule map[string]interface{}) {
	filters := b.withoutMirrorTo(route, asSlice(rule["filters"]), st.CanarySubset)
	if st.Mirror > 0 {
		stable, _ := b.backendTemplates(route, rule, targetsOf(st), false)
		mirror := map[string]interface{}{
			"backendRef": map[string]interface{}{"group": "", "kind": "Service", "name": st.CanarySubset, "port": stable["port"]},
		}
		// Without percent every request is mirrored; leaving it out then
		// keeps full mirrors working where the CRD predates the field.
		if st.Mirror < 100 {
			mirror["percent"] = int64(st.Mirror)
		}
		filters = append(filters, map[string]interface{}{"type": "RequestMirror", "requestMirror": mirror})
	}
	setFilters(rule, filters)
}

// withoutMirrorTo is filters without the RequestMirror to the Service
// canary, the one shapeMirror sets.
func (b *gatewayAPIBackend) withoutMirrorTo(route *object, filters []interface{}, canary string) []interface{} {
	out := make([]interface{}, 0, len(filters))
	for _, raw := range filters {
		f := asMap(raw)
		if asString(f["type"]) == "RequestMirror" && b.names(route, asMap(asMap(f["requestMirror"])["backendRef"]), canary) {
			continue
		}
		out = append(out, raw)
	}
	return out
}

// setFilters sets the filters of a rule or backendRef; when none is left
// of some, the field goes (an empty list someone wrote stays).
func setFilters(m map[string]interface{}, filters []interface{}) {
	if len(filters) > 0 {
		m["filters"] = filters
		return
	}
	if len(asSlice(m["filters"])) > 0 {
		delete(m, "filters")
	}
}

// setStickyFilter makes a backendRef add the sticky Set-Cookie header to
// responses: add, not set, so the application's own cookies stay. The API
// allows one ResponseHeaderModifier per backendRef, so an existing one
// gets the header added to it.
func setStickyFilter(ref map[string]interface{}, service, canary string) error {
	header := map[string]interface{}{"name": "Set-Cookie", "value": stickyHeaderValue(service, canary)}
	for _, raw := range asSlice(ref["filters"]) {
		f := asMap(raw)
		if asString(f["type"]) != "ResponseHeaderModifier" {
			continue
		}
		modifier := asMap(f["responseHeaderModifier"])
		if modifier == nil {
			modifier = map[string]interface{}{}
			f["responseHeaderModifier"] = modifier
		}
		for _, a := range asSlice(modifier["add"]) {
			if strings.EqualFold(asString(asMap(a)["name"]), "Set-Cookie") {
				return intentErrorf("the canary's backendRef already adds a Set-Cookie header of its own, and the Gateway API allows one per header; remove it, or run without sticky sessions")
			}
		}
		modifier["add"] = append(asSlice(modifier["add"]), header)
		return nil
	}
	ref["filters"] = append(asSlice(ref["filters"]), map[string]interface{}{
		"type":                   "ResponseHeaderModifier",
		"responseHeaderModifier": map[string]interface{}{"add": []interface{}{header}},
	})
	return nil
}

// clearStickyFilter removes what setStickyFilter added and nothing else.
func clearStickyFilter(ref map[string]interface{}, service string) {
	filters := asSlice(ref["filters"])
	if filters == nil {
		return
	}
	kept := make([]interface{}, 0, len(filters))
	for _, raw := range filters {
		f := asMap(raw)
		modifier := asMap(f["responseHeaderModifier"])
		if asString(f["type"]) != "ResponseHeaderModifier" || modifier == nil {
			kept = append(kept, raw)
			continue
		}
		var adds []interface{}
		for _, a := range asSlice(modifier["add"]) {
			h := asMap(a)
			if !strings.EqualFold(asString(h["name"]), "Set-Cookie") || !strings.HasPrefix(asString(h["value"]), StickyCookie(service)+"=") {
				adds = append(adds, a)
			}
		}
		if len(adds) == len(asSlice(modifier["add"])) {
			kept = append(kept, raw)
			continue
		}
		if len(adds) > 0 {
			modifier["add"] = adds
		} else {
			delete(modifier, "add")
		}
		if len(modifier) > 0 {
			kept = append(kept, raw)
		}
	}
	setFilters(ref, kept)
}
