//go:build e2e

package e2e

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkFinding is one finding of `kubectl canary check -o json`.
type checkFinding struct {
	Severity, Object, Message string
}

// checkOutput is `kubectl canary check -o json`, parsed.
type checkOutput struct {
	Service  string
	Findings []checkFinding
}

// betaRouteToV9 routes /beta to a subset no DestinationRule defines.
const betaRouteToV9 = `
name: beta
match: [{uri: {prefix: /beta}}]
route:
- destination: {host: reviews, subset: v9}
`

// defaultRouteWeighted90 splits the default route 70/20: the weights sum to
// 90, not 100.
const defaultRouteWeighted90 = `
name: default
route:
- destination: {host: reviews, subset: v1}
  weight: 70
- destination: {host: reviews, subset: v2}
  weight: 20
`

// TestCheckCommand: `kubectl canary check SERVICE` reports each problem with
// its severity and object, as a table and as JSON, and exits non-zero on
// errors; it writes nothing.
func TestCheckCommand(t *testing.T) {
	t.Parallel()
	c := shared

	t.Run("clean", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		out := c.mustCanary(t, "check", "reviews", "-n", ns)
		assert.Contains(t, out, "no findings")
		assert.Contains(t, out, ns+"/reviews")
		got := runCheckJSON(t, c, ns, "reviews", 0)
		assert.Equal(t, ns+"/reviews", got.Service)
		assert.Empty(t, got.Findings)
		assert.Empty(t, c.versionsOf(t, ns), "check wrote")
	})

	// Each case: objects in a fresh namespace with reviews v1 and v2
	// available, a change to make, and the error finding expected.
	for _, tc := range []struct {
		name    string
		yaml    string
		prepare func(t *testing.T, ns string)
		object  string // kind and name, the namespace is added
		message []string
	}{
		{
			name:    "unready canary",
			prepare: func(t *testing.T, ns string) { c.setAvailable(t, ns, "reviews-v2", 0) },
			object:  "Deployment reviews-v2",
			message: []string{"0 available", "--force"},
		},
		{
			name:    "duplicate subset",
			yaml:    reviewsDestinationRule("v1", "v2", "v1"),
			object:  "DestinationRule reviews",
			message: []string{`"v1"`, "twice"},
		},
		{
			name: "route to an undefined subset",
			yaml: yamlStream(
				virtualService("reviews", httpRoutes(betaRouteToV9, defaultRoute("v1"))),
				reviewsDestinationRule("v1"),
			),
			object:  "VirtualService reviews",
			message: []string{`"beta"`, `"v9"`},
		},
		{
			name: "weights not summing to 100",
			yaml: yamlStream(
				virtualService("reviews", httpRoutes(defaultRouteWeighted90)),
				reviewsDestinationRule("v1", "v2"),
			),
			object:  "VirtualService reviews",
			message: []string{`"default"`, "90", "100"},
		},
		{
			name: "kiali wizard",
			yaml: yamlStream(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  labels: {kiali_wizard: request_routing}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`, reviewsDestinationRule("v1")),
			object:  "VirtualService reviews",
			message: []string{"Kiali", "--force"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := c.newNamespace(t)
			c.deployVersions(t, ns, "reviews", "v1", "v2")
			if tc.yaml != "" {
				c.create(t, ns, tc.yaml)
			}
			if tc.prepare != nil {
				tc.prepare(t, ns)
			}
			kind, name, _ := strings.Cut(tc.object, " ")
			object := kind + " " + ns + "/" + name
			before := c.versionsOf(t, ns)

			r := c.failCanary(t, "check", "reviews", "-n", ns)
			requireExitCode(t, r, 3)
			assert.Contains(t, r.stderr, "error(s)", "the error line says how many errors")
			found := false
			for _, row := range table(t, r.stdout) {
				if row["SEVERITY"] == "error" && row["OBJECT"] == object {
					found = true
					for _, m := range tc.message {
						assert.Contains(t, row["FINDING"], m, "finding about %s", object)
					}
				}
			}
			assert.True(t, found, "no error row for %s in:\n%s", object, r.stdout)

			got := runCheckJSON(t, c, ns, "reviews", 3)
			assert.Equal(t, ns+"/reviews", got.Service)
			found = false
			for _, f := range got.Findings {
				assert.Contains(t, []string{"error", "warning"}, f.Severity)
				assert.NotEmpty(t, f.Message)
				if f.Severity == "error" && f.Object == object {
					found = true
					for _, m := range tc.message {
						assert.Contains(t, f.Message, m, "finding about %s", object)
					}
				}
			}
			assert.True(t, found, "no error finding for %s in %+v", object, got.Findings)
			assert.Equal(t, before, c.versionsOf(t, ns), "check wrote")
		})
	}
}

// TestCheckReportsEveryFindingAtOnce: a Service with a single Deployment,
// so no versions to tell apart, whose VirtualService routes to a subset no
// DestinationRule defines with weights that do not sum to 100: check reports
// all three errors, not just the first, and exits non-zero.
func TestCheckReportsEveryFindingAtOnce(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1")
	c.create(t, ns, yamlStream(
		virtualService("reviews", httpRoutes(betaRouteToV9, defaultRouteWeighted90)),
		reviewsDestinationRule("v1", "v2"),
	))
	before := c.versionsOf(t, ns)
	want := []checkFinding{
		{"error", "Service " + ns + "/reviews", "only one version"},
		{"error", "VirtualService " + ns + "/reviews", `"beta" sends traffic to subset "v9"`},
		{"error", "VirtualService " + ns + "/reviews", `"default" has weights summing to 90, not 100`},
		{"warning", "DestinationRule " + ns + "/reviews", `subset "v2" selects no Deployment`},
	}

	r := c.failCanary(t, "check", "reviews", "-n", ns)
	requireExitCode(t, r, 3)
	assert.Contains(t, r.stderr, "service "+ns+"/reviews: 3 error(s) found")
	assertFindings(t, want, rowsOf(t, r.stdout))

	got := runCheckJSON(t, c, ns, "reviews", 3)
	assertFindings(t, want, got.Findings)
	assert.Len(t, got.Findings, len(want), "%+v", got.Findings)
	assert.Equal(t, before, c.versionsOf(t, ns), "check wrote")
}

// TestCheckFlaggersVirtualService: a VirtualService with the annotation in
// which Flagger keeps the spec it replaced is Flagger's: check reports it,
// start refuses and writes nothing, start --force goes ahead with a warning
// and keeps the annotation.
func TestCheckFlaggersVirtualService(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.create(t, ns, yamlStream(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  annotations:
    flagger.kubernetes.io/original-configuration: '{"hosts":["reviews"],"http":[{"route":[{"destination":{"host":"reviews"}}]}]}'
spec:
  hosts: [reviews]
  http:
  - name: default
    route:
    - destination: {host: reviews, subset: v1}
`, reviewsDestinationRule("v1")))
	before := c.versionsOf(t, ns)
	vsRef := "VirtualService " + ns + "/reviews"

	r := c.failCanary(t, "check", "reviews", "-n", ns)
	requireExitCode(t, r, 3)
	assertFindings(t, []checkFinding{{"error", vsRef, "is managed by Flagger (annotation flagger.kubernetes.io/original-configuration"}}, rowsOf(t, r.stdout))
	// -o json and -o yaml: the same findings, and the same exit code.
	code, fromJSON, fromYAML := c.jsonAndYAML(t, nil, "check", "reviews", "-n", ns)
	assert.Equal(t, 3, code)
	assert.Equal(t, fromJSON, fromYAML, "check -o json and -o yaml differ")
	var out checkOutput
	decodeDocument(t, fromYAML, &out)
	assert.Equal(t, ns+"/reviews", out.Service)
	assertFindings(t, []checkFinding{{"error", vsRef, "is managed by Flagger (annotation flagger.kubernetes.io/original-configuration"}}, out.Findings)

	r = c.failCanary(t, "start", "reviews", "-n", ns)
	assert.Contains(t, r.stderr, "preflight check of service "+ns+"/reviews failed, nothing was changed")
	assert.Contains(t, r.stderr, vsRef+": is managed by Flagger")
	assert.Contains(t, r.stderr, "--force")
	assert.Equal(t, before, c.versionsOf(t, ns), "a refused start wrote")

	r = c.canary(t, nil, "start", "reviews", "--force", "-n", ns)
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "Warning: "+vsRef+": is managed by Flagger")
	vs := c.get(t, vsV1, ns, "reviews")
	assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, vs, "http", 0))
	assert.Contains(t, vs.GetAnnotations(), "flagger.kubernetes.io/original-configuration", "Flagger's annotation was dropped")
}

// rowsOf parses check's table into findings.
func rowsOf(t *testing.T, out string) []checkFinding {
	t.Helper()
	var rows []checkFinding
	for _, row := range table(t, out) {
		rows = append(rows, checkFinding{row["SEVERITY"], row["OBJECT"], row["FINDING"]})
	}
	return rows
}

// assertFindings checks that every wanted finding (Message a part of the
// message) is among got.
func assertFindings(t *testing.T, want, got []checkFinding) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || (g.Severity == w.Severity && g.Object == w.Object && strings.Contains(g.Message, w.Message))
		}
		assert.True(t, found, "no %s finding about %s containing %q in %+v", w.Severity, w.Object, w.Message, got)
	}
}

// runCheckJSON runs `kubectl canary check SVC -o json`, requires the exit
// code and returns its parsed output.
func runCheckJSON(t *testing.T, c *cluster, ns, svc string, code int) checkOutput {
	t.Helper()
	r := c.canary(t, nil, "check", svc, "-n", ns, "-o", "json")
	requireExitCode(t, r, code)
	var got checkOutput
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), "check -o json printed:\n%s", r)
	return got
}

// requireExitCode checks how a command ended.
func requireExitCode(t *testing.T, r result, code int) {
	t.Helper()
	if code == 0 {
		require.NoError(t, r.err, "%s", r)
		return
	}
	var exit *exec.ExitError
	require.True(t, errors.As(r.err, &exit), "want exit code %d:\n%s", code, r)
	require.Equal(t, code, exit.ExitCode(), "%s", r)
}
