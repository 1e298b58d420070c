//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ruleNamed returns the rule of an HTTPRoute with that name.
func ruleNamed(t *testing.T, route *unstructured.Unstructured, name string) (int, map[string]interface{}) {
	t.Helper()
	rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
	var names []string
	for i, r := range rules {
		rule := r.(map[string]interface{})
		if rule["name"] == name {
			return i, rule
		}
		names = append(names, fmt.Sprint(rule["name"]))
	}
	require.Failf(t, "no rule", "HTTPRoute %s has no rule %q (rules %v)", route.GetName(), name, names)
	return -1, nil
}

// compactJSON is v as one line of JSON, to look for a field in it.
func compactJSON(t *testing.T, v interface{}) string {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return string(data)
}

// getTCPRoute reads a TCPRoute at whichever version the cluster prefers
// (the experimental channel moves it from v1alpha2 on).
func (c *cluster) getTCPRoute(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	require.NoError(t, json.Unmarshal([]byte(c.kubectl(t, "", "get", "tcproutes.gateway.networking.k8s.io", name, "-n", ns, "-o", "json")), &u.Object))
	return u
}

// gatewayAPIObjectsOf names the VirtualServices, DestinationRules, Services and Gateway API routes of ns
// with their resourceVersions, to show that nothing was written.
func (c *cluster) gatewayAPIObjectsOf(t *testing.T, ns string) map[string]string {
	t.Helper()
	out := c.versionsOf(t, ns)
	for _, kind := range []string{"services", "httproutes.gateway.networking.k8s.io", "tcproutes.gateway.networking.k8s.io"} {
		for _, line := range strings.Split(c.kubectl(t, "", "get", kind, "-n", ns, "-o", `jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion}{"\n"}{end}`), "\n") {
			if line != "" {
				out[kind+"/"+line] = "present" // the line holds the resourceVersion
			}
		}
	}
	return out
}

// TestGatewayAPIHeaderMirrorStickyThenAbort: testers (a header), a shadow
// copy of 20 % and sticky users on an adopted HTTPRoute, each as the
// Gateway API says it; abort gives the spec back byte for byte.
func TestGatewayAPIHeaderMirrorStickyThenAbort(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.create(t, ns, versionService("reviews", "v1")+bookinfoHTTPRoute)
	original := c.get(t, httpRoutesV1, ns, "reviews")

	c.mustCanary(t, "start", "reviews", "-n", ns, "--header", "x-tester=yes", "--mirror", "20", "--sticky", "--weight", "10")
	route := c.get(t, httpRoutesV1, ns, "reviews")
	i, testers := ruleNamed(t, route, "canary-match-default")
	j, _ := ruleNamed(t, route, "default")
	assert.Less(t, i, j, "the testers' rule comes before the rule it narrows")
	assert.Equal(t, map[string]int64{"reviews-v2": 1}, backendWeights(t, route, i))
	assert.Contains(t, compactJSON(t, testers["matches"]), `"name":"x-tester","type":"Exact","value":"yes"`)
	k, _ := ruleNamed(t, route, "canary-sticky-default")
	assert.Contains(t, compactJSON(t, route.Object["spec"].(map[string]interface{})["rules"].([]interface{})[k]), "kubectl-canary-reviews=v2")
	_, main := ruleNamed(t, route, "default")
	filters := compactJSON(t, main["filters"])
	assert.Contains(t, filters, `"type":"RequestMirror"`)
	assert.Contains(t, filters, `"percent":20`)
	assert.Contains(t, filters, `"name":"reviews-v2"`)
	assert.Contains(t, filters, `"type":"RequestHeaderModifier"`, "the user's filter stays")
	assert.Contains(t, compactJSON(t, main["backendRefs"]), "Set-Cookie", "the canary's responses set the sticky cookie")
	assert.Equal(t, map[string]int64{"reviews-v1": 90, "reviews-v2": 10}, backendWeights(t, route, j))

	c.mustCanary(t, "abort", "reviews", "-n", ns)
	assert.Equal(t, specJSON(t, original), specJSON(t, c.get(t, httpRoutesV1, ns, "reviews")))
	c.requireAbsent(t, coreServices, ns, "reviews-v2")
}

// TestGatewayAPIBindsToAGatewayAPIGateway: --gateway names a Gateway API
// Gateway: a host its listeners do not admit is refused with nothing
// written; one they admit gets an HTTPRoute attached to the Gateway with
// the mesh's split.
func TestGatewayAPIBindsToAGatewayAPIGateway(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.create(t, ns, `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: public}
spec:
  gatewayClassName: istio
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    hostname: "*.example.com"
    allowedRoutes: {namespaces: {from: Same}}
`)
	before := c.gatewayAPIObjectsOf(t, ns)
	r := c.failCanary(t, "start", "reviews", "-n", ns, "--routing-api", "gateway-api", "--gateway", ns+"/public", "--host", "www.example.org")
	assert.Contains(t, r.stderr, fmt.Sprintf("Gateway %s/public does not accept an HTTPRoute of namespace %s for host \"www.example.org\"", ns, ns))
	assert.Equal(t, before, c.gatewayAPIObjectsOf(t, ns), "a refused start wrote")

	c.mustCanary(t, "start", "reviews", "-n", ns, "--routing-api", "gateway-api", "--gateway", ns+"/public", "--host", "www.example.com", "--weight", "30")
	ingress := c.get(t, httpRoutesV1, ns, "reviews-gateway")
	hostnames, _, _ := unstructured.NestedStringSlice(ingress.Object, "spec", "hostnames")
	assert.Equal(t, []string{"www.example.com"}, hostnames)
	parents, _, _ := unstructured.NestedSlice(ingress.Object, "spec", "parentRefs")
	require.Len(t, parents, 1)
	assert.Equal(t, "public", parents[0].(map[string]interface{})["name"])
	assert.Equal(t, map[string]int64{"reviews-v1": 70, "reviews-v2": 30}, backendWeights(t, ingress, 0))
	assert.Equal(t, map[string]int64{"reviews-v1": 70, "reviews-v2": 30}, backendWeights(t, c.get(t, httpRoutesV1, ns, "reviews"), 0))

	c.mustCanary(t, "weight", "reviews", "60", "-n", ns)
	assert.Equal(t, map[string]int64{"reviews-v1": 40, "reviews-v2": 60}, backendWeights(t, c.get(t, httpRoutesV1, ns, "reviews-gateway"), 0))
}

// TestGatewayAPISplitsATCPService: a Service with a TCP port gets a
// TCPRoute (the experimental channel's v1alpha2), split, then aborted.
func TestGatewayAPISplitsATCPService(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.create(t, ns, `apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  selector: {app: db}
  ports: [{name: tcp-postgres, port: 5432}]
`+deploymentsYAML("db", 1, "v1", "v2"))
	c.setAvailable(t, ns, "db-v1", 1)
	c.setAvailable(t, ns, "db-v2", 1)

	out := c.mustCanary(t, "start", "db", "-n", ns, "--routing-api", "gateway-api", "--weight", "20")
	assert.Contains(t, out, "tcproute.gateway.networking.k8s.io/db created")
	route := c.getTCPRoute(t, ns, "db")
	assert.Equal(t, map[string]int64{"db-v1": 80, "db-v2": 20}, backendWeights(t, route, 0))
	c.mustCanary(t, "weight", "db", "50", "-n", ns)
	assert.Equal(t, map[string]int64{"db-v1": 50, "db-v2": 50}, backendWeights(t, c.getTCPRoute(t, ns, "db"), 0))
	c.mustCanary(t, "abort", "db", "-n", ns)
	assert.Equal(t, map[string]int64{"db-v1": 1}, backendWeights(t, c.getTCPRoute(t, ns, "db"), 0), "a created route stays, all to stable")
	c.get(t, coreServices, ns, "db-v1")
}

// TestGatewayAPIDryRunDiffsNewServices: --dry-run prints the diff of every
// object, the per-version Services it would create included, and writes
// nothing; a promote's dry run shows a pruned Service as removed whole.
func TestGatewayAPIDryRunDiffsNewServices(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	before := c.gatewayAPIObjectsOf(t, ns)

	out := c.mustCanary(t, "start", "reviews", "-n", ns, "--routing-api", "gateway-api", "--dry-run")
	for _, file := range []string{"v1.Service." + ns + ".reviews-v1", "v1.Service." + ns + ".reviews-v2", "gateway.networking.k8s.io.v1.HTTPRoute." + ns + ".reviews"} {
		assert.Contains(t, out, file, "the diff names %s", file)
	}
	assert.Contains(t, out, "+  name: reviews-v2")
	assert.Contains(t, out, "(dry run)")
	assert.Equal(t, before, c.gatewayAPIObjectsOf(t, ns), "a dry run wrote")

	c.mustCanary(t, "start", "reviews", "-n", ns, "--routing-api", "gateway-api")
	out = c.mustCanary(t, "promote", "reviews", "-n", ns, "--dry-run=server")
	assert.Contains(t, out, "v1.Service."+ns+".reviews-v1")
	assert.Contains(t, out, "-  name: reviews-v1", "the pruned Service is removed whole")
	c.get(t, coreServices, ns, "reviews-v1")
}

// TestGatewayAPIAmbientNeedsAWaypoint: in an ambient namespace the canary
// runs on the Gateway API, and without a waypoint start refuses (nothing
// written) and says how to add one; --force writes; a Service that names
// a waypoint starts.
func TestGatewayAPIAmbientNeedsAWaypoint(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.kubectl(t, "", "label", "namespace", ns, "istio.io/dataplane-mode=ambient")
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	before := c.gatewayAPIObjectsOf(t, ns)

	r := c.failCanary(t, "check", "reviews", "-n", ns)
	requireExitCode(t, r, 3)
	assertFindings(t, []checkFinding{{"error", "Service " + ns + "/reviews", "is in ambient namespace " + ns + " (label istio.io/dataplane-mode=ambient) and has no waypoint"}}, rowsOf(t, r.stdout))

	r = c.failCanary(t, "start", "reviews", "-n", ns)
	assert.Contains(t, r.stderr, "is in ambient namespace "+ns)
	assert.Contains(t, r.stderr, "istioctl waypoint apply -n "+ns)
	assert.Contains(t, r.stderr, "nothing was changed")
	assert.Equal(t, before, c.gatewayAPIObjectsOf(t, ns), "a refused start wrote")

	r = c.canary(t, nil, "start", "reviews", "-n", ns, "--force")
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "Warning: ")
	c.get(t, httpRoutesV1, ns, "reviews")
	c.mustCanary(t, "abort", "reviews", "-n", ns)

	ns2 := c.newNamespace(t)
	c.kubectl(t, "", "label", "namespace", ns2, "istio.io/dataplane-mode=ambient")
	c.deployVersions(t, ns2, "reviews", "v1", "v2")
	c.kubectl(t, "", "label", "service", "reviews", "-n", ns2, "istio.io/use-waypoint=waypoint")
	c.mustCanary(t, "start", "reviews", "-n", ns2)
	assert.Equal(t, "gateway-api", c.statusTable(t, "reviews", "-n", ns2)[0]["ROUTING"])

	// Istio's classic API, asked for, still runs there, with a warning.
	ns3 := c.newNamespace(t)
	c.kubectl(t, "", "label", "namespace", ns3, "istio.io/dataplane-mode=ambient")
	c.deployVersions(t, ns3, "reviews", "v1", "v2")
	r = c.canary(t, nil, "start", "reviews", "-n", ns3, "--routing-api", "istio")
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "only as an alpha feature; consider --routing-api gateway-api")
	c.get(t, vsV1, ns3, "reviews")
}

// TestGatewayAPIRefusesTheOtherAPI: asking for the Gateway API where a
// VirtualService routes the Service is refused, naming it; nothing written.
func TestGatewayAPIRefusesTheOtherAPI(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.create(t, ns, virtualService("reviews", httpRoutes(`
name: default
route:
- destination: {host: reviews}
`)))
	before := c.gatewayAPIObjectsOf(t, ns)
	r := c.failCanary(t, "start", "reviews", "-n", ns, "--routing-api", "gateway-api")
	assert.Contains(t, r.stderr, "--routing-api gateway-api: service "+ns+"/reviews is routed by Istio's API (VirtualService "+ns+"/reviews)")
	assert.Contains(t, r.stderr, "Run with --routing-api istio")
	assert.Equal(t, before, c.gatewayAPIObjectsOf(t, ns), "a refused start wrote")

	r = c.failCanary(t, "start", "reviews", "-n", ns, "--routing-api", "gatewayapi")
	assert.Contains(t, r.stderr, `--routing-api "gatewayapi" is no routing API; pass auto, istio or gateway-api`)
}

// TestGatewayAPIWeightCostsOneReadPerKind: a weight on a Gateway API canary
// reads each kind once (the Service, Deployments, VirtualServices,
// DestinationRules, each Gateway API route kind, the Services) and writes
// the one route that changes, as the audit log of the API server records.
func TestGatewayAPIWeightCostsOneReadPerKind(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.mustCanary(t, "start", "reviews", "-n", ns, "--routing-api", "gateway-api")
	plugin := func() []auditEvent {
		var out []auditEvent
		for _, e := range c.audit(t, ns) {
			if strings.HasPrefix(e.UserAgent, "kubectl-canary") {
				out = append(out, e)
			}
		}
		return out
	}
	before := len(plugin())
	c.mustCanary(t, "weight", "reviews", "40", "-n", ns)
	var requests []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		requests = nil
		updated := false
		for _, e := range plugin()[before:] {
			requests = append(requests, e.Verb+" "+e.ObjectRef.Resource)
			updated = updated || e.Verb == "update"
		}
		if updated || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var beforeWrite []string
	for _, r := range requests {
		if r == "update httproutes" {
			break
		}
		beforeWrite = append(beforeWrite, r)
	}
	assert.ElementsMatch(t, []string{
		"get services", "list deployments", "list virtualservices", "list destinationrules",
		"list httproutes", "list grpcroutes", "list tcproutes", "list tlsroutes", "list services",
	}, beforeWrite, "the reads of weight")
	writes := 0
	for _, r := range requests {
		if !strings.HasPrefix(r, "get ") && !strings.HasPrefix(r, "list ") {
			writes++
			assert.Equal(t, "update httproutes", r)
		}
	}
	assert.Equal(t, 1, writes, "one write: %v", requests)
	t.Logf("weight on a Gateway API canary: %v", requests)
}
