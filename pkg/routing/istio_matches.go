package routing

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
)

// maxCookies bounds the cookies one rule may AND together: Istio matches the
// whole Cookie header with one RE2 expression, and RE2 has no lookahead, so
// every order of the cookies is spelled out.
const maxCookies = 3

// headerConditions turns rules into the headers map of an HTTPMatchRequest.
func headerConditions(rules []MatchRule) (map[string]interface{}, error) {
	headers := map[string]interface{}{}
	var cookies []string
	for _, r := range rules {
		if r.Cookie {
			cookies = append(cookies, regexp.QuoteMeta(r.Name+"="+r.Value))
			continue
		}
		if _, dup := headers[r.Name]; dup {
			return nil, fmt.Errorf("header %s is given twice; one request carries one value, so give it once (use ~ for a regular expression that allows several)", r.Name)
		}
		headers[r.Name] = map[string]interface{}{r.Op: r.Value}
	}
	if len(cookies) > maxCookies {
		return nil, intentErrorf("%d {CookieMatches} rules given; at most %d can be combined in one match", len(cookies), maxCookies)
	}
	if len(cookies) > 0 {
		if _, dup := headers["cookie"]; dup {
			return nil, intentErrorf("{HeaderMatches} cookie and {CookieMatches} cannot be combined; use {CookieMatches} for each cookie")
		}
		sort.Strings(cookies)
		var orders []string
		permute(cookies, 0, func(order []string) {
			orders = append(orders, `^(.*;\s*)?`+strings.Join(order, `;\s*(.*;\s*)?`)+`(;.*)?$`)
		})
		headers["cookie"] = map[string]interface{}{"regex": strings.Join(orders, "|")}
	}
	return headers, nil
}

// permute visits every order of items.
func permute(items []string, k int, visit func([]string)) {
	if k == len(items) {
		visit(append([]string(nil), items...))
		return
	}
	for i := k; i < len(items); i++ {
		items[k], items[i] = items[i], items[k]
		permute(items, k+1, visit)
		items[k], items[i] = items[i], items[k]
	}
}

// withConditions ANDs the extra header conditions into every entry of a
// route's match list (the entries themselves are ORed), so the canary route
// catches exactly the requests the original route catches that also match.
func withConditions(match []interface{}, headers map[string]interface{}) ([]interface{}, error) {
	if len(match) == 0 {
		match = []interface{}{map[string]interface{}{}}
	}
	out := make([]interface{}, 0, len(match))
	for _, raw := range match {
		entry := runtime.DeepCopyJSON(asMap(raw))
		existing := asMap(entry["headers"])
		merged := map[string]interface{}{}
		for name, cond := range existing {
			merged[name] = cond
		}
		for name, cond := range headers {
			if prev, ok := existing[name]; ok && !equality.Semantic.DeepEqual(prev, cond) {
				return nil, fmt.Errorf("the route already matches header %s differently", name)
			}
			merged[name] = cond
		}
		entry["headers"] = merged
		out = append(out, entry)
	}
	return out, nil
}

// StickyCookie is the cookie that keeps a client on the canary once it got there.
func StickyCookie(service string) string { return "kubectl-canary-" + service }

// stickyHeaderValue is the Set-Cookie value the canary destination adds.
func stickyHeaderValue(service, canary string) string {
	return fmt.Sprintf("%s=%s; Path=/; Max-Age=86400", StickyCookie(service), canary)
}

// setStickyCookie makes a destination add the sticky Set-Cookie header to responses.
func setStickyCookie(d map[string]interface{}, service, canary string) {
	headers := asMap(d["headers"])
	if headers == nil {
		headers = map[string]interface{}{}
		d["headers"] = headers
	}
	response := asMap(headers["response"])
	if response == nil {
		response = map[string]interface{}{}
		headers["response"] = response
	}
	add := asMap(response["add"])
	if add == nil {
		add = map[string]interface{}{}
		response["add"] = add
	}
	add["set-cookie"] = stickyHeaderValue(service, canary)
}

// clearStickyCookie removes what setStickyCookie added and nothing else.
func clearStickyCookie(d map[string]interface{}, service string) {
	headers := asMap(d["headers"])
	response := asMap(headers["response"])
	add := asMap(response["add"])
	if !strings.HasPrefix(asString(add["set-cookie"]), StickyCookie(service)+"=") {
		return
	}
	delete(add, "set-cookie")
	if len(add) == 0 {
		delete(response, "add")
	}
	if len(response) == 0 {
		delete(headers, "response")
	}
	if len(headers) == 0 {
		delete(d, "headers")
	}
}
