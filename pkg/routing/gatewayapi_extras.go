package routing

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
)

// Extras of a Gateway API canary, as the Istio backend's (istio_extras.go):
// rules that send matching requests (headers, cookies, the sticky cookie)
// to the canary, a RequestMirror filter on the managed rules, and the
// sticky cookie set by a ResponseHeaderModifier on the canary's backendRef.
//
// Precedence: the Gateway API does not take the first rule that matches
// but the most specific one (exact path, longest prefix, method, most
// headers, most query parameters; list order only among equals). A match
// rule copies the managed rule's matches and adds at least one header
// condition, so it is more specific than the managed rule and takes the
// requests it matches from it wherever it sits; it is put right before
// the managed rule so that among rules equally specific it comes first
// too, as the Istio backend's match routes do.

// extrasKinds are the route kinds whose rules match on headers.
var extrasKinds = map[string]bool{"HTTPRoute": true, "GRPCRoute": true}

// shapeExtras makes a route carry exactly the extras st asks for: rules it
// added before are dropped and added again, its mirror and sticky filters
// are set or removed, and nothing it did not add is touched. Added rules
// shift the rules, so each managed rule's index is recorded anew.
func (b *gatewayAPIBackend) shapeExtras(route *object, st *State) error {
	if !extrasKinds[route.desired.GetKind()] {
		return nil
	}
	t := targetsOf(st)
	managed := make([]map[string]interface{}, len(st.Routes))
	at := make([]int, len(st.Routes)) // index of managed[i] among the rules
	isManaged := map[int]bool{}
	finder := newRouteFinder(route)
	for i, ref := range st.Routes {
		j, rule, err := b.findManagedRule(finder, ref, t)
		if err != nil {
			return err
		}
		managed[i], at[i], isManaged[j] = rule, j, true
	}
	movedTo, err := b.shapeMatchRules(route, st, isManaged)
	if err != nil {
		return err
	}
	for i := range st.Routes {
		rule := managed[i]
		b.shapeMirror(route, st, rule)
		for _, raw := range backendRefsOf(rule) {
			ref := asMap(raw)
			clearStickyFilter(ref, b.svc.name)
			if st.Sticky && b.names(route, ref, t.canary) {
				if err := setStickyFilter(ref, b.svc.name, st.Canary); err != nil {
					return err
				}
			}
		}
		if j := movedTo[at[i]]; j >= 0 {
			st.Routes[i] = ruleRefFor(j, rule)
		}
	}
	return nil
}

// shapeMatchRules puts, before each managed rule (by index), a copy of it
// that sends the requests matching the canary's rules 100% to the canary.
// It returns where each rule went, -1 for the added rules it dropped.
func (b *gatewayAPIBackend) shapeMatchRules(route *object, st *State, managed map[int]bool) ([]int, error) {
	spec := route.spec()
	sets := canaryMatchSets(st, b.svc.name)
	out, movedTo, err := placeMatchItems(rulesOf(spec), st, managed, func(rule map[string]interface{}, taken map[string]bool) ([]interface{}, error) {
		return b.matchRulesBefore(route, rule, sets, st, taken)
	})
	if err != nil {
		return nil, err
	}
	if len(out) > 0 || spec[gatewayRules] != nil {
		spec[gatewayRules] = out
	}
	return movedTo, nil
}

// matchRulesBefore makes the rules to put before a managed rule, one for
// each set of match rules (the last one the sticky cookie's when st is
// sticky), named apart from the taken names and recorded as added on st.
func (b *gatewayAPIBackend) matchRulesBefore(route *object, rule map[string]interface{}, sets [][]MatchRule, st *State, taken map[string]bool) ([]interface{}, error) {
	var out []interface{}
	for i, set := range sets {
		headers, err := gatewayHeaderMatches(set)
		if err != nil {
			return nil, err
		}
		extra := runtime.DeepCopyJSON(rule)
		delete(extra, "name")
		setFilters(extra, b.withoutMirrorTo(route, asSlice(extra["filters"]), st.CanarySubset))
		if extra["matches"], err = withHeaderMatches(asSlice(rule["matches"]), headers, route.desired.GetKind()); err != nil {
			return nil, fmt.Errorf("cannot add the canary's match rules before %s in %s: %v", describeRule(ruleRefFor(0, rule)), route.ref(), err)
		}
		extra["backendRefs"] = b.soleBackend(route, rule, targetsOf(st), st.CanarySubset, false)
		for _, ref := range backendRefsOf(extra) {
			clearStickyFilter(asMap(ref), b.svc.name)
		}
		nameMatchItem(extra, rule, st, st.Sticky && i == len(sets)-1, taken)
		out = append(out, extra)
	}
	return out, nil
}

// gatewayHeaderMatches are the header matches of a set of match rules, in
// the Gateway API's form: exact stays Exact, a regex or prefix becomes a
// RegularExpression, cookies one RegularExpression on the Cookie header
// (headerConditions builds it as for Istio).
func gatewayHeaderMatches(rules []MatchRule) ([]interface{}, error) {
	conditions, err := headerConditions(rules)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(conditions))
	for name := range conditions {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]interface{}, 0, len(names))
	for _, name := range names {
		for op, raw := range asMap(conditions[name]) {
			value, kind := asString(raw), "Exact"
			switch op {
			case "regex":
				kind = "RegularExpression"
			case "prefix":
				value, kind = "^"+regexp.QuoteMeta(value), "RegularExpression"
			}
			out = append(out, map[string]interface{}{"type": kind, "name": name, "value": value})
		}
	}
	return out, nil
}

// withHeaderMatches ANDs header matches into every match of a rule (the
// matches themselves are ORed), so the canary rule catches exactly the
// requests of the managed rule that also match.
func withHeaderMatches(matches, headers []interface{}, kind string) ([]interface{}, error) {
	if len(matches) == 0 {
		entry := map[string]interface{}{}
		if kind == "HTTPRoute" {
			entry = defaultHTTPMatch()
		}
		matches = []interface{}{entry}
	}
	out := make([]interface{}, 0, len(matches))
	for _, raw := range matches {
		entry := runtime.DeepCopyJSON(asMap(raw))
		merged := asSlice(entry["headers"])
		for _, h := range headers {
			ours, same := asMap(h), false
			for _, e := range merged {
				theirs := asMap(e)
				if !strings.EqualFold(asString(theirs["name"]), asString(ours["name"])) {
					continue
				}
				if !sameHeaderMatch(theirs, ours) {
					return nil, fmt.Errorf("the rule already matches header %s differently", asString(ours["name"]))
				}
				same = true
			}
			if !same {
				merged = append(merged, runtime.DeepCopyJSON(ours))
			}
		}
		entry["headers"] = merged
		out = append(out, entry)
	}
	return out, nil
}

// sameHeaderMatch compares two matches of one header, a missing type
// being Exact as the API defaults it.
func sameHeaderMatch(a, b map[string]interface{}) bool {
	typeOf := func(m map[string]interface{}) string {
		if t := asString(m["type"]); t != "" {
			return t
		}
		return "Exact"
	}
	return typeOf(a) == typeOf(b) && asString(a["value"]) == asString(b["value"])
}
