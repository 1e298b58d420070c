//go:build e2e

package e2e

import (
	"fmt"
	"strings"
)

// Builders of the routing objects that many tests create for Bookinfo's
// reviews. A route is a YAML mapping, as it reads under a VirtualService's
// http or tcp list without its leading "- ": jasonRoute, defaultRoute("v1"),
// or one a test writes itself. Blank lines are dropped, so that appending
// lines to a route (defaultRoute("v1") + "\nretries: ...") adds fields to it.

// jasonRoute is Bookinfo's "jason goes to v2": a deliberate rule that a
// canary of another version must leave alone.
const jasonRoute = `
name: jason
match:
- headers:
    end-user: {exact: jason}
route:
- destination: {host: reviews, subset: v2}
`

// defaultRoute sends all the traffic no route before it matched to a subset
// of reviews.
func defaultRoute(subset string) string {
	return fmt.Sprintf(`
name: default
route:
- destination: {host: reviews, subset: %s}
`, subset)
}

// routeList is the http or the tcp routes of a VirtualService.
type routeList struct {
	kind   string
	routes []string
}

func httpRoutes(routes ...string) routeList { return routeList{"http", routes} }
func tcpRoutes(routes ...string) routeList  { return routeList{"tcp", routes} }

// virtualService is VirtualService name (hosts: [name]) with the given
// route lists, in that order.
func virtualService(name string, lists ...routeList) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %[1]s}
spec:
  hosts: [%[1]s]
`, name)
	for _, l := range lists {
		fmt.Fprintf(&b, "  %s:\n", l.kind)
		for _, r := range l.routes {
			indent := "  - "
			for _, line := range strings.Split(r, "\n") {
				if strings.TrimSpace(line) == "" {
					continue
				}
				b.WriteString(indent + line + "\n")
				indent = "    "
			}
		}
	}
	return b.String()
}

// reviewsDestinationRule is DestinationRule reviews with one subset per
// version, named after it and selecting the pods labelled version=VERSION.
func reviewsDestinationRule(versions ...string) string {
	var b strings.Builder
	b.WriteString(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
`)
	for _, v := range versions {
		fmt.Fprintf(&b, "  - {name: %[1]s, labels: {version: %[1]s}}\n", v)
	}
	return b.String()
}

// bookinfoReviews is Bookinfo's routing of reviews: jason pinned to v2,
// everyone else on v1.
func bookinfoReviews() string {
	return yamlStream(
		virtualService("reviews", httpRoutes(jasonRoute, defaultRoute("v1"))),
		reviewsDestinationRule("v1", "v2"),
	)
}

// yamlStream joins YAML documents into one stream, for cluster.create.
func yamlStream(docs ...string) string {
	trimmed := make([]string, len(docs))
	for i, d := range docs {
		trimmed[i] = strings.Trim(d, "\n")
	}
	return strings.Join(trimmed, "\n---\n") + "\n"
}

// fillNamespace replaces NAMESPACE in a fixture.
func fillNamespace(fixture, ns string) string {
	return strings.ReplaceAll(fixture, "NAMESPACE", ns)
}
