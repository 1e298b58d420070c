//go:build e2e

package e2e

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// TestNamespaceContextKubeconfigFlags: two namespaces with a Service of the
// same name; kubectl's -n, --context, --as and --kubeconfig, and a context's
// default namespace, decide where each command acts.
func TestNamespaceContextKubeconfigFlags(t *testing.T) {
	t.Parallel()
	c := shared
	nsA, nsB := c.newNamespace(t), c.newNamespace(t)
	c.deployVersions(t, nsA, "reviews", "v1", "v2")
	c.deployVersions(t, nsB, "reviews", "v1", "v2")

	// -n picks one namespace and leaves the other alone.
	c.mustCanary(t, "start", "reviews", "-n", nsA)
	assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, c.get(t, vsV1, nsA, "reviews"), "http", 0))
	assert.Empty(t, c.versionsOf(t, nsB), "start -n %s wrote to %s", nsA, nsB)
	c.mustCanary(t, "weight", "reviews", "20", "--namespace", nsA)
	assert.Equal(t, 20, stateOf(t, c.get(t, vsV1, nsA, "reviews"), "reviews").Weight)

	// --context: the admin kubeconfig also has a context "user" (canary-user,
	// no grants); --as impersonates that user.
	before := c.versionsOf(t, nsA)
	for _, flags := range [][]string{{"--context", "user"}, {"--as", "canary-user"}} {
		r := c.failCanary(t, append([]string{"weight", "reviews", "30", "-n", nsA}, flags...)...)
		assert.Contains(t, r.stderr, `User "canary-user"`, "%v must act as canary-user", flags)
		assert.Contains(t, r.stderr, "forbidden")
		assert.Equal(t, before, c.versionsOf(t, nsA), "%v wrote", flags)
	}
	c.mustCanary(t, "weight", "reviews", "30", "-n", nsA, "--context", "admin")
	assert.Equal(t, 30, stateOf(t, c.get(t, vsV1, nsA, "reviews"), "reviews").Weight)

	// --kubeconfig wins over KUBECONFIG, and works without it.
	elsewhere := editKubeconfig(t, c.kubeconfig, func(cfg *clientcmdapi.Config) {
		for _, cl := range cfg.Clusters {
			cl.Server = "https://127.0.0.1:1" // nothing listens there
		}
	})
	r := c.canary(t, []string{"KUBECONFIG=" + elsewhere}, "status", "-n", nsA)
	require.Error(t, r.err, "KUBECONFIG pointing elsewhere must fail without --kubeconfig:\n%s", r)
	r = c.canary(t, []string{"KUBECONFIG=" + elsewhere}, "weight", "reviews", "40", "-n", nsA, "--kubeconfig", c.kubeconfig)
	require.NoError(t, r.err, "%s", r)
	r = c.canary(t, []string{"KUBECONFIG=", "HOME=" + t.TempDir()}, "weight", "reviews", "50", "-n", nsA, "--kubeconfig", c.kubeconfig)
	require.NoError(t, r.err, "%s", r)
	assert.Equal(t, 50, stateOf(t, c.get(t, vsV1, nsA, "reviews"), "reviews").Weight)

	// Without -n, the namespace of the kubeconfig's context.
	inB := editKubeconfig(t, c.kubeconfig, func(cfg *clientcmdapi.Config) {
		cfg.Contexts[cfg.CurrentContext].Namespace = nsB
	})
	before = c.versionsOf(t, nsA)
	r = c.canary(t, []string{"KUBECONFIG=" + inB}, "start", "reviews")
	require.NoError(t, r.err, "%s", r)
	assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, c.get(t, vsV1, nsB, "reviews"), "http", 0))
	assert.Equal(t, before, c.versionsOf(t, nsA), "start without -n wrote to %s", nsA)
	r = c.canary(t, []string{"KUBECONFIG=" + inB}, "status", "reviews", "-o", "json")
	require.NoError(t, r.err, "%s", r)
	var st statusJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), "%s", r)
	assert.Equal(t, nsB, st.Namespace)
	assert.Equal(t, 10, st.Weight)
	// -o yaml is the same document.
	code, fromJSON, fromYAML := c.jsonAndYAML(t, []string{"KUBECONFIG=" + inB}, "status", "reviews")
	require.Equal(t, 0, code)
	assert.Equal(t, fromJSON, fromYAML, "status -o json and -o yaml differ")
	var fromYAMLStatus statusJSON
	decodeDocument(t, fromYAML, &fromYAMLStatus)
	assert.Equal(t, st, fromYAMLStatus)
	// -n still wins over the context's namespace.
	r = c.canary(t, []string{"KUBECONFIG=" + inB}, "weight", "reviews", "60", "-n", nsA)
	require.NoError(t, r.err, "%s", r)
	assert.Equal(t, 60, stateOf(t, c.get(t, vsV1, nsA, "reviews"), "reviews").Weight)
	assert.Equal(t, 10, stateOf(t, c.get(t, vsV1, nsB, "reviews"), "reviews").Weight)

	// status -A shows both, each in its namespace.
	weightIn := map[string]string{}
	for _, row := range c.statusTable(t, "-A") {
		if row["NAMESPACE"] == nsA || row["NAMESPACE"] == nsB {
			weightIn[row["NAMESPACE"]] = row["WEIGHT"]
		}
	}
	assert.Equal(t, map[string]string{nsA: "60%", nsB: "10%"}, weightIn)
}

// TestOutputFormats: status -A and version print the same document with
// -o json and -o yaml (through kubectl's printers), and refuse a format
// kubectl has not alike (the other formats: output_test.go). (status SERVICE, check and analyze: next to their tests.)
func TestOutputFormats(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.mustCanary(t, "start", "reviews", "-n", ns, "--weight", "20")

	code, fromJSON, fromYAML := c.jsonAndYAML(t, nil, "status", "-n", ns)
	require.Equal(t, 0, code)
	assert.Equal(t, fromJSON, fromYAML, "status -o json and -o yaml differ")
	var list struct{ Items []statusJSON }
	decodeDocument(t, fromYAML, &list)
	require.Len(t, list.Items, 1)
	assert.Equal(t, "reviews", list.Items[0].Service)
	assert.Equal(t, 20, list.Items[0].Weight)

	code, fromJSON, fromYAML = c.jsonAndYAML(t, nil, "version")
	require.Equal(t, 0, code)
	assert.Equal(t, fromJSON, fromYAML, "version -o json and -o yaml differ")
	line := c.mustCanary(t, "version")
	for _, field := range []string{"version", "commit", "goVersion", "platform"} {
		value, _ := fromYAML[field].(string)
		require.NotEmpty(t, value, "version -o yaml has no %s:\n%v", field, fromYAML)
		assert.Contains(t, line, value, "the one line and -o yaml disagree on %s", field)
	}

	for _, args := range [][]string{{"status", "-n", ns}, {"status", "reviews", "-n", ns}, {"check", "reviews", "-n", ns}, {"analyze", "reviews", "-n", ns}, {"version"}} {
		r := c.canary(t, nil, append(args, "-o", "table")...)
		require.Error(t, r.err, "%s", r)
		assert.Contains(t, r.stderr, `--output "table" is not supported; use one of custom-columns, custom-columns-file, go-template, `, "%s", r)
		assert.Contains(t, r.stderr, `, or leave it out for`, "%s", r)
	}
	r := c.canary(t, nil, "version", "-o", "wide")
	require.Error(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, `--output "wide" is not supported`, "version prints no table: %s", r)
}

// editKubeconfig writes a copy of a kubeconfig, changed by edit, into the
// test's temporary folder.
func editKubeconfig(t *testing.T, path string, edit func(*clientcmdapi.Config)) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	require.NoError(t, err)
	edit(cfg)
	out := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, out))
	return out
}
