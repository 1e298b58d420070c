package routing

import (
	"fmt"
)

// MatchRule is one request attribute that sends a request to the canary:
// a header (exact, regex or prefix) or a cookie (exact).
type MatchRule struct {
	Cookie bool   `json:"cookie,omitempty"`
	Name   string `json:"name"`
	// Op is exact, regex or prefix, Istio's StringMatch kinds.
	Op    string `json:"op"`
	Value string `json:"value"`
}

func (m MatchRule) String() string {
	if m.Cookie {
		return fmt.Sprintf("cookie %s=%s", m.Name, m.Value)
	}
	op := map[string]string{"exact": "=", "regex": "~", "prefix": "^"}[m.Op]
	return fmt.Sprintf("header %s%s%s", m.Name, op, m.Value)
}

// canaryMatchSets are the sets of match rules that each get a route (or
// rule) of their own, sending what they match 100% to the canary: the
// canary's match rules, then the sticky cookie's when st is sticky.
func canaryMatchSets(st *State, service string) [][]MatchRule {
	var sets [][]MatchRule
	if len(st.Matches) > 0 {
		sets = append(sets, st.Matches)
	}
	if st.Sticky {
		sets = append(sets, []MatchRule{{Cookie: true, Name: StickyCookie(service), Op: "exact", Value: st.Canary}})
	}
	return sets
}

// placeMatchItems rebuilds a list of routes (Istio) or rules (Gateway API)
// around the canary's match items: the ones st recorded as added by an
// earlier plan are dropped, and before each managed item (by index) come
// the items before makes for it, given the names the other items take. It
// returns the new list and where each old item went, -1 for those dropped;
// st's record of added items is left for before to fill again.
func placeMatchItems(items []interface{}, st *State, managed map[int]bool,
	before func(item map[string]interface{}, taken map[string]bool) ([]interface{}, error)) ([]interface{}, []int, error) {
	added := map[string]bool{}
	for _, name := range st.AddedRoutes {
		added[name] = true
	}
	st.AddedRoutes = nil
	taken := make(map[string]bool, len(items))
	for _, raw := range items {
		if name := asString(asMap(raw)["name"]); !added[name] {
			taken[name] = true
		}
	}
	movedTo := make([]int, len(items))
	var out []interface{}
	for j, raw := range items {
		item := asMap(raw)
		if added[asString(item["name"])] {
			movedTo[j] = -1
			continue
		}
		if managed[j] {
			extras, err := before(item, taken)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, extras...)
		}
		movedTo[j] = len(out)
		out = append(out, item)
	}
	return out, movedTo, nil
}

// nameMatchItem names a match item added before the managed item it was
// copied from (canary-match-NAME, canary-sticky-NAME for the sticky
// cookie's), apart from the taken names, and records it as added on st.
func nameMatchItem(extra, managed map[string]interface{}, st *State, sticky bool, taken map[string]bool) {
	base := "canary-match"
	if sticky {
		base = "canary-sticky"
	}
	if name := asString(managed["name"]); name != "" {
		base += "-" + name
	}
	name := base
	for n := 2; taken[name]; n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	taken[name] = true
	extra["name"] = name
	st.AddedRoutes = append(st.AddedRoutes, name)
}
