//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// status -o json is a List of CanaryStatus documents of the schema README
// documents, [] when there is no canary; kubectl's other formats and
// --no-headers work on it as they do on kubectl get.
func TestOutputFormatsOfStatus(t *testing.T) {
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.mustCanary(t, "start", "reviews", "-n", ns, "--canary", "v2", "--weight", "20")

	out := c.mustCanary(t, "status", "-n", ns, "-o", "json")
	var list struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Items      []struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct{ Name, Namespace string }
			Weight     int    `json:"weight"`
			Canary     string `json:"canary"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	assert.Equal(t, "v1", list.APIVersion)
	assert.Equal(t, "List", list.Kind)
	require.Len(t, list.Items, 1)
	assert.Equal(t, "kubectl-canary.io/v1alpha1", list.Items[0].APIVersion)
	assert.Equal(t, "CanaryStatus", list.Items[0].Kind)
	assert.Equal(t, "reviews", list.Items[0].Metadata.Name)
	assert.Equal(t, ns, list.Items[0].Metadata.Namespace)
	assert.Equal(t, 20, list.Items[0].Weight)
	assert.Equal(t, "v2", list.Items[0].Canary)

	empty := c.newNamespace(t)
	out = c.mustCanary(t, "status", "-n", empty, "-o", "json")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	assert.Equal(t, []any{}, doc["items"], "no canary is [], not null:\n%s", out)
	assert.NotContains(t, out, "null")

	assert.Equal(t, "20 v2", c.mustCanary(t, "status", "-n", ns, "-o", "jsonpath={.items[*].weight} {.items[0].canary}"))
	assert.Equal(t, "canarystatus.kubectl-canary.io/reviews\n", c.mustCanary(t, "status", "-n", ns, "-o", "name"))
	columns := c.mustCanary(t, "status", "-n", ns, "-o", "custom-columns=SERVICE:.metadata.name,WEIGHT:.weight")
	assert.Regexp(t, `^SERVICE\s+WEIGHT\nreviews\s+20\n$`, columns)
	columns = c.mustCanary(t, "status", "-n", ns, "-o", "custom-columns=SERVICE:.metadata.name,WEIGHT:.weight", "--no-headers")
	assert.Regexp(t, `^reviews\s+20\n$`, columns)
	assert.Regexp(t, `^reviews\s+v1\s+v2\s+20%\s+-\s+Progressing\s`, c.mustCanary(t, "status", "-n", ns, "--no-headers"))
	wide := table(t, c.mustCanary(t, "status", "-n", ns, "-o", "wide"))
	require.Len(t, wide, 1)
	assert.Equal(t, "version", wide[0]["VERSION LABEL"])
	assert.Equal(t, "DestinationRule/reviews,VirtualService/reviews", wide[0]["OBJECTS"])
	assert.Equal(t, "20 v1", c.mustCanary(t, "status", "reviews", "-n", ns, "-o", "go-template={{.weight}} {{.stable}}"), "one Service: the document itself")

	var check map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.mustCanary(t, "check", "reviews", "-n", ns, "-o", "json")), &check))
	assert.Equal(t, "kubectl-canary.io/v1alpha1", check["apiVersion"])
	assert.Equal(t, "CanaryCheck", check["kind"])
	assert.Equal(t, []any{}, check["findings"])
}

// -v 6 logs every request to the API server on standard error, as kubectl
// -v 6 does, and leaves standard output as it is; without -v nothing of
// client-go's shows.
func TestVerbosityLogsTheRequests(t *testing.T) {
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.mustCanary(t, "start", "reviews", "-n", ns)

	r := c.canary(t, nil, "status", "-n", ns, "-o", "name", "-v", "6")
	require.NoError(t, r.err, "%s", r)
	assert.Equal(t, "canarystatus.kubectl-canary.io/reviews\n", r.stdout)
	assert.Regexp(t, `round_trippers\.go:\d+\] "Response" verb="GET" url="https://[^"]+/api/v1/namespaces/`+ns+`/services[^"]*" status="200 OK" milliseconds=\d+`, r.stderr)
	assert.Regexp(t, `verb="GET" url="https://[^"]+/apis/networking\.istio\.io/v1[^/]*/namespaces/`+ns+`/virtualservices`, r.stderr)

	r = c.canary(t, nil, "status", "-n", ns, "-o", "name")
	require.NoError(t, r.err, "%s", r)
	assert.Empty(t, r.stderr)
}

// A hint names the flags that chose the Service: pasted, it acts on the
// same namespace, not the kubeconfig's.
func TestPastedHintActsOnTheSameNamespace(t *testing.T) {
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	r := c.failCanary(t, "weight", "reviews", "30", "-n", ns)
	hint := regexp.MustCompile(`start one with kubectl (canary start reviews[^\n;]*)`).FindStringSubmatch(r.stderr)
	require.NotNil(t, hint, "%s", r)
	assert.Equal(t, "canary start reviews -n "+ns, hint[1])

	pasted := run(t, c.commandEnv(), "", strings.Fields(hint[1])...)
	require.NoError(t, pasted.err, "%s", pasted)
	assert.Equal(t, "Progressing", stateOf(t, c.get(t, vsV1, ns, "reviews"), "reviews").Phase, "the pasted hint started the canary in %s", ns)
	c.mustCanary(t, "weight", "reviews", "30", "-n", ns)
}

// Completion through kubectl's plugin mechanism (kubectl canary __complete,
// what kubectl_complete-canary runs) offers the Service's versions for
// --canary and --stable, and kubectl's formats for -o.
func TestCompletionOffersTheVersions(t *testing.T) {
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2", "v3")
	choices := func(args ...string) []string {
		t.Helper()
		r := c.canary(t, nil, append([]string{"__complete"}, args...)...)
		require.NoError(t, r.err, "%s", r)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.NotEmpty(t, lines)
		assert.Equal(t, ":4", lines[len(lines)-1], "no file names: %s", r.stdout)
		var out []string
		for _, line := range lines[:len(lines)-1] {
			choice, _, _ := strings.Cut(line, "\t")
			out = append(out, choice)
		}
		return out
	}
	assert.Equal(t, []string{"v1", "v2", "v3"}, choices("start", "reviews", "-n", ns, "--canary", ""))
	assert.Equal(t, []string{"v2"}, choices("start", "reviews", "-n", ns, "--stable", "v2"))
	assert.Contains(t, choices("status", "-o", ""), "jsonpath")
	assert.Contains(t, choices("status", "-o", ""), "wide")
	assert.Equal(t, []string{"auto", "istio", "gateway-api"}, choices("start", "reviews", "--routing-api", ""))
}

// status --watch keeps every row aligned with the header: a row printed
// later for a short Service name keeps the columns the first part had for
// a long one.
func TestStatusWatchRowsStayAligned(t *testing.T) {
	c := shared
	ns := c.newNamespace(t)
	long := "reviews-with-a-much-longer-service-name"
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.deployVersions(t, ns, long, "v1", "v2")
	c.mustCanary(t, "start", "reviews", "-n", ns)
	c.mustCanary(t, "start", long, "-n", ns)

	cmd, out := startWatch(t, c.commandEnv(), "-n", ns)
	waitForOutput(t, out, "both rows", func(s string) bool { return strings.Count(s, "10%") == 2 })
	c.mustCanary(t, "weight", "reviews", "40", "-n", ns)
	waitForOutput(t, out, "the changed row", func(s string) bool { return strings.Contains(s, "40%") })
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	require.NoError(t, cmd.Wait(), "%s", out.String())

	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	require.Len(t, lines, 4, "header, two rows, the changed row:\n%s", out.String())
	header := lines[0]
	for _, column := range []string{"STABLE", "CANARY", "WEIGHT", "PHASE", "AGE", "ROUTING"} {
		at := regexp.MustCompile(`\b` + column + `\b`).FindStringIndex(header)
		require.NotNil(t, at, column)
		for _, row := range lines[1:] {
			require.Greater(t, len(row), at[0], row)
			assert.NotEqual(t, ' ', rune(row[at[0]]), "column %s of %q starts under its header:\n%s", column, row, out.String())
			assert.Equal(t, ' ', rune(row[at[0]-1]), "column %s of %q starts under its header:\n%s", column, row, out.String())
		}
	}
}
