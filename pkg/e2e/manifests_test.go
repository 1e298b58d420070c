//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// reviewsRoutingManifest is reviews' routing as a person keeps it in Git:
// comments, blank lines, quoting, one file with several documents, and a
// document the canary has nothing to do with.
const reviewsRoutingManifest = `# Routing of the reviews service.
# Owned by the shop team; reviewed in every pull request.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  labels:
    team: "shop"   # who to call
spec:
  hosts:
  - reviews

  http:
  # Jason always sees the new reviews.
  - name: jason
    match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v1

  # Everyone else.
  - name: default
    timeout: 10s   # the page gives up after this
    route:
    - destination:
        host: reviews
        subset: v1
---
# Subsets: one per version.
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
  subsets:
  - name: v1
    labels:
      version: v1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: reviews-settings   # not routing: never touched
data:
  stars: "5"
`

// writeManifests writes files (name → text) into a new directory.
func writeManifests(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	return dir
}

func readManifest(t *testing.T, path string) string {
	t.Helper()
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(text)
}

// The GitOps mode gives exactly what the live mode writes: one namespace is
// driven live, its twin through manifest files and kubectl apply, and after
// every command their routing objects are the same. The files keep every
// comment and byte the commands did not need to change.
func TestManifestsGiveWhatLiveModeWrites(t *testing.T) {
	t.Parallel()
	c := shared
	live, twin := c.newNamespace(t), c.newNamespace(t)
	dir := writeManifests(t, map[string]string{"routing.yaml": reviewsRoutingManifest})
	for _, ns := range []string{live, twin} {
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		c.kubectl(t, "", "apply", "-n", ns, "-f", dir)
	}
	file := filepath.Join(dir, "routing.yaml")
	steps := [][]string{
		{"start", "reviews", "--weight", "10"},
		{"weight", "reviews", "50"},
		{"route", "reviews", "--header", "x-tester=yes"},
		{"promote", "reviews"},
		{"start", "reviews", "--canary", "v1", "--weight", "20"},
		{"abort", "reviews"},
	}
	for _, step := range steps {
		c.mustCanary(t, append(step, "-n", live)...)
		before := readManifest(t, file)
		out := c.mustCanary(t, append(step, "-n", twin, "-f", dir)...)
		assert.Contains(t, out, file+": virtualservice.networking.istio.io/reviews ")
		c.kubectl(t, "", "apply", "-n", twin, "-f", dir)
		for _, gvr := range []string{"virtualservices.networking.istio.io", "destinationrules.networking.istio.io"} {
			assert.Equal(t, comparable(t, c.get(t, resourceOf(gvr), live, "reviews"), live), comparable(t, c.get(t, resourceOf(gvr), twin, "reviews"), twin), "%s after %v", gvr, step)
		}
		after := readManifest(t, file)
		assertOnlyRoutingLinesChanged(t, before, after)
		// The same command again changes nothing.
		again := c.mustCanary(t, append(step, "-n", twin, "-f", dir)...)
		assert.Contains(t, again, "unchanged", "%v run twice", step)
		assert.Equal(t, after, readManifest(t, file), "%v run twice changed the file", step)
	}
}

// assertOnlyRoutingLinesChanged checks that the comments, the ConfigMap
// and the rules the canary does not manage came through untouched.
func assertOnlyRoutingLinesChanged(t *testing.T, before, after string) {
	t.Helper()
	for _, kept := range []string{
		"# Routing of the reviews service.\n# Owned by the shop team; reviewed in every pull request.\n",
		"    team: \"shop\"   # who to call\n",
		"  hosts:\n  - reviews\n\n  http:\n",
		"  # Jason always sees the new reviews.\n  - name: jason\n",
		"\n  # Everyone else.\n  - name: default\n    timeout: 10s   # the page gives up after this\n",
		"---\n# Subsets: one per version.\n",
		"  trafficPolicy:\n    tls:\n      mode: ISTIO_MUTUAL\n",
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: reviews-settings   # not routing: never touched\ndata:\n  stars: \"5\"\n",
	} {
		if strings.Contains(before, kept) {
			assert.Contains(t, after, kept, "an untouched part of the manifest changed")
		}
	}
}

func resourceOf(gvr string) schema.GroupVersionResource {
	if strings.HasPrefix(gvr, "virtualservices") {
		return virtualServices("v1")
	}
	return destinationRules("v1")
}

// comparable is what must be the same between an object and its twin: the
// spec and the plugin's annotations, with the namespace's name and the
// times of the changes taken out.
func comparable(t *testing.T, obj *unstructured.Unstructured, ns string) string {
	t.Helper()
	annotations := map[string]interface{}{}
	for k, v := range obj.GetAnnotations() {
		if k == "kubectl.kubernetes.io/last-applied-configuration" {
			continue
		}
		var state interface{}
		if json.Unmarshal([]byte(v), &state) == nil {
			annotations[k] = withoutTimes(state)
			continue
		}
		annotations[k] = v
	}
	text := toJSON(t, map[string]interface{}{"spec": obj.Object["spec"], "annotations": annotations, "labels": obj.GetLabels()})
	return strings.ReplaceAll(text, ns, "NAMESPACE")
}

// withoutTimes drops the times a state records, at any depth.
func withoutTimes(v interface{}) interface{} {
	switch v := v.(type) {
	case map[string]interface{}:
		for _, at := range []string{"startedAt", "updatedAt", "stepStartedAt"} {
			delete(v, at)
		}
		for k, inner := range v {
			v[k] = withoutTimes(inner)
		}
	case []interface{}:
		for i, inner := range v {
			v[i] = withoutTimes(inner)
		}
	}
	return v
}

// unreachableKubeconfig is a kubeconfig whose cluster nothing listens for,
// with ns as its context's namespace.
func unreachableKubeconfig(t *testing.T, ns string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: gone, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: gone, user: {token: nothing}}]
contexts: [{name: gone, context: {cluster: gone, user: gone, namespace: `+ns+`}}]
current-context: gone
`), 0o600))
	return path
}

// --local runs the canary on manifests alone, with no cluster to reach: a
// Service and its Deployments in the files, the routing created in a new
// file beside them, which a real API server then takes as it is.
func TestManifestsLocalWithNoCluster(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	app := `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
` + deploymentsYAML("reviews", 2, "v1", "v2")
	dir := writeManifests(t, map[string]string{"app.yaml": app})
	offline := []string{"KUBECONFIG=" + unreachableKubeconfig(t, ns)}
	newFile := filepath.Join(dir, "reviews-canary.yaml")

	r := c.canary(t, offline, "start", "reviews", "-f", dir, "--local")
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stdout, newFile+": destinationrule.networking.istio.io/reviews created")
	assert.Contains(t, r.stdout, newFile+": virtualservice.networking.istio.io/reviews created")
	assert.Contains(t, r.stderr, "readiness not checked")
	assert.Equal(t, app, readManifest(t, filepath.Join(dir, "app.yaml")), "the Service's manifest changed")

	r = c.canary(t, offline, "weight", "reviews", "30", "-f", dir, "--local", "--dry-run")
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stdout, "--- a/"+newFile+"\n+++ b/"+newFile+"\n")
	assert.Contains(t, r.stdout, "\n+      weight: 30\n")
	assert.NotContains(t, readManifest(t, newFile), "weight: 30", "--dry-run wrote")
	r = c.canary(t, offline, "weight", "reviews", "30", "-f", dir, "--local")
	require.NoError(t, r.err, "%s", r)

	r = c.canary(t, offline, "status", "reviews", "-f", dir, "--local", "-o", "json")
	require.NoError(t, r.err, "%s", r)
	var st statusJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	assert.Equal(t, 30, st.Weight)
	r = c.canary(t, offline, "check", "reviews", "-f", dir, "--local")
	require.NoError(t, r.err, "%s", r)

	// The files are what GitOps applies: the cluster takes them, and the
	// live canary is the one the files describe.
	c.kubectl(t, "", "apply", "-n", ns, "-f", dir)
	live := c.status(t, ns, "reviews")
	assert.Equal(t, 30, live.Weight)
	assert.Equal(t, map[string]int64{"v1": 70, "v2": 30}, weights(t, c.get(t, vsV1, ns, "reviews"), "http", 0))
}

// Manifests the plugin cannot edit faithfully are refused, naming the file
// and the object, and no file is written.
func TestManifestsRefusedWithNothingWritten(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	vsJSON := `{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "reviews"},
 "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}}`
	dr := reviewsDestinationRule("v1")
	cases := map[string]struct {
		files map[string]string
		want  []string
	}{
		"template": {
			files: map[string]string{"routing.yaml": dr, "vs.yaml": "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {{ .Release.Name }}\n"},
			want:  []string{"vs.yaml:4 is a template", "render it first"},
		},
		"JSON": {
			files: map[string]string{"routing.yaml": dr, "vs.json": vsJSON},
			want:  []string{"vs.json holds VirtualService " + ns + "/reviews as JSON", "convert the file to YAML"},
		},
		"defined twice": {
			files: map[string]string{"a.yaml": virtualService("reviews", httpRoutes(defaultRoute("v1"))), "b.yaml": virtualService("reviews", httpRoutes(defaultRoute("v1"))) + "---\n" + dr},
			want:  []string{"VirtualService " + ns + "/reviews is defined twice", "a.yaml", "b.yaml"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := writeManifests(t, tc.files)
			r := c.failCanary(t, "start", "reviews", "-n", ns, "-f", dir)
			for _, want := range tc.want {
				assert.Contains(t, r.stderr, want)
			}
			for file, text := range tc.files {
				assert.Equal(t, text, readManifest(t, filepath.Join(dir, file)), "%s was written", file)
			}
			_, err := os.Stat(filepath.Join(dir, "reviews-canary.yaml"))
			assert.True(t, os.IsNotExist(err), "a new file was written")
		})
	}
}
