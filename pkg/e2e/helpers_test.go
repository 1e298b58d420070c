//go:build e2e

// Package e2e drives `kubectl canary` the way users do, through the real
// kubectl binary and its plugin mechanism, against a real kube-apiserver with
// the Istio CRDs (hack/cluster.sh), and checks what the API server stores.
//
// Run it with hack/e2e.sh; it needs the variables that script exports.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// commandTimeout bounds every kubectl run, so a hung command fails its test
// instead of the whole suite's 30-minute timeout.
const commandTimeout = 2 * time.Minute

// cluster is one API server: the one hack/e2e.sh started, or one a test
// starts for itself with hack/cluster.sh up.
type cluster struct {
	env            map[string]string // the CANARY_E2E_* values of its DIR/env
	kubeconfig     string            // admin (canary-admin); contexts admin and user
	userKubeconfig string            // canary-user, no grants
	cacheDir       string            // kubectl's discovery cache, one per cluster
	dyn            dynamic.Interface
}

// shared is the cluster hack/e2e.sh started; every test may use it.
var shared *cluster

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	env := map[string]string{}
	for _, k := range []string{"CANARY_E2E_KUBECONFIG", "CANARY_E2E_USER_KUBECONFIG", "CANARY_E2E_KUBECTL", "CANARY_E2E_PLUGIN", "CANARY_E2E_CLUSTER_SH", "CANARY_E2E_DIR", "CANARY_E2E_AUDIT_LOG"} {
		if env[k] = os.Getenv(k); env[k] == "" {
			fmt.Fprintf(os.Stderr, "e2e: %s is not set; run these tests with hack/e2e.sh\n", k)
			return 2
		}
	}
	// The point of the suite: `kubectl` on PATH is the built kubectl, and it
	// finds the plugin under test by its name.
	for name, want := range map[string]string{"kubectl": env["CANARY_E2E_KUBECTL"], "kubectl-canary": env["CANARY_E2E_PLUGIN"]} {
		got, err := exec.LookPath(name)
		if err != nil || !sameFile(got, want) {
			fmt.Fprintf(os.Stderr, "e2e: %s on PATH is %q (%v), want %s\n", name, got, err, want)
			return 2
		}
	}
	c, err := newCluster(env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 2
	}
	defer os.RemoveAll(c.cacheDir)
	shared = c
	return m.Run()
}

func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

func newCluster(env map[string]string) (*cluster, error) {
	cacheDir, err := os.MkdirTemp("", "kubectl-cache-")
	if err != nil {
		return nil, err
	}
	config, err := clientcmd.BuildConfigFromFlags("", env["CANARY_E2E_KUBECONFIG"])
	if err != nil {
		return nil, err
	}
	config.QPS, config.Burst = 200, 400
	config.UserAgent = "canary-e2e"
	dyn, err := dynamic.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	return &cluster{
		env:            env,
		kubeconfig:     env["CANARY_E2E_KUBECONFIG"],
		userKubeconfig: env["CANARY_E2E_USER_KUBECONFIG"],
		cacheDir:       cacheDir,
		dyn:            dyn,
	}, nil
}

// startCluster starts a cluster of the test's own (hack/cluster.sh up DIR
// ARGS...), for changes that must not reach other tests, such as edited CRDs.
// It is stopped when the test ends.
func startCluster(t *testing.T, args ...string) *cluster {
	t.Helper()
	dir := t.TempDir()
	script := shared.env["CANARY_E2E_CLUSTER_SH"]
	up := exec.Command(script, append([]string{"up", dir}, args...)...)
	var stderr bytes.Buffer
	up.Stderr = &stderr
	out, err := up.Output()
	// Registered before checking err: a failed up may have left processes.
	t.Cleanup(func() {
		if out, err := exec.Command(script, "down", dir).CombinedOutput(); err != nil {
			t.Errorf("cluster.sh down %s: %v\n%s", dir, err, out)
		}
	})
	require.NoError(t, err, "cluster.sh up %s %v:\n%s", dir, args, stderr.String())
	envFile := strings.TrimSpace(string(out))
	env, err := readEnvFile(envFile)
	require.NoError(t, err)
	c, err := newCluster(env)
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(c.cacheDir) })
	return c
}

// readEnvFile parses the `export NAME=VALUE` lines cluster.sh writes
// (VALUE quoted by printf %q) without running a shell.
func readEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if len(value) >= 2 && value[0] == '\'' && value[len(value)-1] == '\'' {
			value = value[1 : len(value)-1]
		} else {
			value = regexp.MustCompile(`\\(.)`).ReplaceAllString(value, "$1")
		}
		env[name] = value
	}
	for _, k := range []string{"CANARY_E2E_KUBECONFIG", "CANARY_E2E_USER_KUBECONFIG", "CANARY_E2E_DIR"} {
		if env[k] == "" {
			return nil, fmt.Errorf("%s has no %s", path, k)
		}
	}
	env["CANARY_E2E_CLUSTER_SH"] = shared.env["CANARY_E2E_CLUSTER_SH"]
	return env, nil
}

// result is what a command printed and how it ended.
type result struct {
	cmd            string
	stdout, stderr string
	err            error
}

func (r result) String() string {
	return fmt.Sprintf("$ %s\n(exit: %v)\n--- stdout:\n%s--- stderr:\n%s", r.cmd, r.err, r.stdout, r.stderr)
}

// commandEnv is the process environment with KUBECONFIG and kubectl's
// discovery cache set for c and KUBECTL_EXTERNAL_DIFF unset; extra entries
// "NAME=VALUE" override, "NAME=" unsets.
func (c *cluster) commandEnv(extra ...string) []string {
	set := map[string]string{"KUBECONFIG": c.kubeconfig, "KUBECACHEDIR": c.cacheDir, "KUBECTL_EXTERNAL_DIFF": ""}
	for _, kv := range extra {
		name, value, _ := strings.Cut(kv, "=")
		set[name] = value
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := set[name]; !ok {
			env = append(env, kv)
		}
	}
	for name, value := range set {
		if value != "" {
			env = append(env, name+"="+value)
		}
	}
	return env
}

// run runs kubectl (found on PATH) with args in env.
func run(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{cmd: "kubectl " + strings.Join(args, " "), stdout: stdout.String(), stderr: stderr.String(), err: err}
	if err != nil {
		t.Logf("%s (exit: %v)\n%s", r.cmd, err, r.stderr)
	} else {
		t.Logf("%s", r.cmd)
	}
	return r
}

// kubectl runs a plain kubectl command as admin and requires it to succeed.
func (c *cluster) kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := run(t, c.commandEnv(), stdin, args...)
	require.NoError(t, r.err, "%s", r)
	return r.stdout
}

// canary runs `kubectl canary ARGS` as admin; extraEnv as for commandEnv.
func (c *cluster) canary(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	return run(t, c.commandEnv(extraEnv...), "", append([]string{"canary"}, args...)...)
}

// mustCanary runs `kubectl canary ARGS` as admin, requires success and
// returns its stdout.
func (c *cluster) mustCanary(t *testing.T, args ...string) string {
	t.Helper()
	r := c.canary(t, nil, args...)
	require.NoError(t, r.err, "%s", r)
	return r.stdout
}

// failCanary runs `kubectl canary ARGS` as admin and requires it to fail.
func (c *cluster) failCanary(t *testing.T, args ...string) result {
	t.Helper()
	r := c.canary(t, nil, args...)
	require.Error(t, r.err, "the command should have failed:\n%s", r)
	return r
}

// newNamespace creates a namespace of the test's own (namespaces cannot be
// deleted here: no namespace controller runs).
func (c *cluster) newNamespace(t *testing.T) string {
	t.Helper()
	base := strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(strings.TrimPrefix(t.Name(), "Test")), "-"), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	ns := fmt.Sprintf("%s-%05d", base, rand.Intn(100000))
	c.kubectl(t, "", "create", "namespace", ns)
	return ns
}

// create creates the objects of a YAML stream in namespace ns.
func (c *cluster) create(t *testing.T, ns, yaml string) {
	t.Helper()
	c.kubectl(t, yaml, "create", "-n", ns, "-f", "-")
}

// deployVersions creates Service svc (port 9080 named http, selector
// app=svc) and one Deployment per version, svc-VERSION with pod label
// version=VERSION, in that order, each with its replicas available as
// status says (no kubelet runs here).
func (c *cluster) deployVersions(t *testing.T, ns, svc string, versions ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  selector: {app: %[1]s}
  ports: [{name: http, port: 9080}]
`, svc)
	b.WriteString(deploymentsYAML(svc, 2, versions...))
	c.create(t, ns, b.String())
	for _, v := range versions {
		c.setAvailable(t, ns, svc+"-"+v, 2)
	}
}

// deploymentsYAML is one Deployment per version behind Service svc:
// svc-VERSION, pods labelled app=svc and version=VERSION, with replicas.
func deploymentsYAML(svc string, replicas int, versions ...string) string {
	var b strings.Builder
	for _, v := range versions {
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s-%[2]s, labels: {app: %[1]s}}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[1]s, version: %[2]s}}
  template:
    metadata: {labels: {app: %[1]s, version: %[2]s}}
    spec: {containers: [{name: %[1]s, image: "%[1]s:%[2]s"}]}
`, svc, v, replicas)
	}
	return b.String()
}

// setAvailable writes a Deployment's status as a controller would.
func (c *cluster) setAvailable(t *testing.T, ns, deployment string, n int) {
	t.Helper()
	c.kubectl(t, "", "patch", "deployment", deployment, "-n", ns, "--subresource=status", "--type=merge",
		"-p", fmt.Sprintf(`{"status":{"replicas":%d,"updatedReplicas":%d,"availableReplicas":%[1]d,"readyReplicas":%[1]d}}`, n, n))
}

// Resources, at the version every test reads them (v1 unless the cluster
// serves less, see TestIstioServedOnlyAtV1beta1).
func virtualServices(version string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "networking.istio.io", Version: version, Resource: "virtualservices"}
}

func destinationRules(version string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "networking.istio.io", Version: version, Resource: "destinationrules"}
}

var (
	vsV1 = virtualServices("v1")
	drV1 = destinationRules("v1")
	crds = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// get reads an object; it must exist.
func (c *cluster) get(t *testing.T, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	obj, err := c.dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err, "get %s %s/%s", gvr.Resource, ns, name)
	return obj
}

// requireAbsent checks that an object does not exist.
func (c *cluster) requireAbsent(t *testing.T, gvr schema.GroupVersionResource, ns, name string) {
	t.Helper()
	_, err := c.dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "%s %s/%s should not exist (err: %v)", gvr.Resource, ns, name, err)
}

// versionsOf lists resourceVersion and generation of every VirtualService
// and DestinationRule in ns, to show that nothing was written.
func (c *cluster) versionsOf(t *testing.T, ns string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, gvr := range []schema.GroupVersionResource{vsV1, drV1} {
		list, err := c.dyn.Resource(gvr).Namespace(ns).List(context.Background(), metav1.ListOptions{})
		require.NoError(t, err)
		for _, o := range list.Items {
			out[gvr.Resource+"/"+o.GetName()] = fmt.Sprintf("rv=%s gen=%d", o.GetResourceVersion(), o.GetGeneration())
		}
	}
	return out
}

// spec returns a deep copy of obj's spec.
func spec(obj *unstructured.Unstructured) map[string]interface{} {
	s, _, _ := unstructured.NestedMap(obj.Object, "spec")
	return s
}

// route returns route i of kind (http, tcp, tls) of a VirtualService.
func route(t *testing.T, vs *unstructured.Unstructured, kind string, i int) map[string]interface{} {
	t.Helper()
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", kind)
	require.Greater(t, len(routes), i, "%s has no %s route #%d", vs.GetName(), kind, i)
	return routes[i].(map[string]interface{})
}

// weights maps subset to weight for the destinations of route i of kind; a
// lone destination without weight gets 100, as Istio reads it.
func weights(t *testing.T, vs *unstructured.Unstructured, kind string, i int) map[string]int64 {
	t.Helper()
	dests, _, _ := unstructured.NestedSlice(route(t, vs, kind, i), "route")
	out := map[string]int64{}
	for _, raw := range dests {
		d := raw.(map[string]interface{})
		subset, _, _ := unstructured.NestedString(d, "destination", "subset")
		w, found, _ := unstructured.NestedInt64(d, "weight")
		if !found && len(dests) == 1 {
			w = 100
		}
		out[subset] += w
	}
	return out
}

// subsets maps subset name to its labels in a DestinationRule.
func subsets(dr *unstructured.Unstructured) map[string]map[string]string {
	list, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	out := map[string]map[string]string{}
	for _, raw := range list {
		s := raw.(map[string]interface{})
		labels, _, _ := unstructured.NestedStringMap(s, "labels")
		out[s["name"].(string)] = labels
	}
	return out
}

// canaryState is the part of the state annotation (kubectl-canary.io/SVC)
// that the tests read.
type canaryState struct {
	Service, VersionLabel, Stable, Canary string
	Weight                                int
	Phase                                 string
}

func stateOf(t *testing.T, obj *unstructured.Unstructured, svc string) canaryState {
	t.Helper()
	raw, ok := obj.GetAnnotations()["kubectl-canary.io/"+svc]
	require.True(t, ok, "%s %s has no state annotation for %s", obj.GetKind(), obj.GetName(), svc)
	var st canaryState
	require.NoError(t, json.Unmarshal([]byte(raw), &st))
	return st
}

// foreignMeta is an object's labels and annotations without the plugin's own.
func foreignMeta(obj *unstructured.Unstructured) (labels, annotations map[string]string) {
	labels, annotations = map[string]string{}, map[string]string{}
	for k, v := range obj.GetLabels() {
		labels[k] = v
	}
	for k, v := range obj.GetAnnotations() {
		if !strings.HasPrefix(k, "kubectl-canary.io/") && !strings.HasPrefix(k, "pre-start.kubectl-canary.io/") {
			annotations[k] = v
		}
	}
	return labels, annotations
}

// statusJSON is `kubectl canary status SVC -o json`, parsed.
type statusJSON struct {
	Namespace, Service, VersionLabel, Stable, Canary, PromotedFrom string
	Weight                                                         int
	Phase                                                          string
	StableReady                                                    struct{ Available, Desired int }
	CanaryReady                                                    *struct{ Available, Desired int }
	Objects                                                        []string
}

func (c *cluster) status(t *testing.T, ns, svc string) statusJSON {
	t.Helper()
	out := c.mustCanary(t, "status", svc, "-n", ns, "-o", "json")
	var st statusJSON
	require.NoError(t, json.Unmarshal([]byte(out), &st), "status -o json printed:\n%s", out)
	return st
}

// statusTable runs `kubectl canary status` and returns its rows, each keyed
// by column header. Columns are separated by at least two spaces (a header
// such as "STABLE READY" has one).
func (c *cluster) statusTable(t *testing.T, args ...string) []map[string]string {
	t.Helper()
	out := c.mustCanary(t, append([]string{"status"}, args...)...)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.NotEmpty(t, lines)
	sep := regexp.MustCompile(`\s{2,}`)
	header := sep.Split(strings.TrimSpace(lines[0]), -1)
	var rows []map[string]string
	for _, line := range lines[1:] {
		cells := sep.Split(strings.TrimSpace(line), -1)
		require.Len(t, cells, len(header), "row %q does not match header %q", line, lines[0])
		row := map[string]string{}
		for i, h := range header {
			row[h] = cells[i]
		}
		rows = append(rows, row)
	}
	return rows
}

// diffFile is one object's part of a unified diff as kubectl diff prints it.
type diffFile struct {
	Kind, Namespace, Name string
	Added, Removed        []string // lines without the leading +/-
}

// parseDiff splits `diff -u -N LIVE MERGED` output into files. kubectl diff
// names each file group.version.kind.namespace.name.
func parseDiff(t *testing.T, out string) []diffFile {
	t.Helper()
	var files []diffFile
	var cur *diffFile
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "diff "):
			files = append(files, diffFile{})
			cur = &files[len(files)-1]
		case strings.HasPrefix(line, "+++ "):
			require.NotNil(t, cur, "+++ before diff line in:\n%s", out)
			path := strings.Fields(strings.TrimPrefix(line, "+++ "))[0]
			rest, ok := strings.CutPrefix(filepath.Base(path), "networking.istio.io.")
			require.True(t, ok, "diff file %s is not an Istio networking object", path)
			parts := strings.SplitN(rest, ".", 4)
			require.Len(t, parts, 4, "diff file name %s", path)
			cur.Kind, cur.Namespace, cur.Name = parts[1], parts[2], parts[3]
		case strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "@@"):
		case strings.HasPrefix(line, "+") && cur != nil:
			cur.Added = append(cur.Added, line[1:])
		case strings.HasPrefix(line, "-") && cur != nil:
			cur.Removed = append(cur.Removed, line[1:])
		}
	}
	return files
}

// diffFor returns the diff of one object; it must be there.
func diffFor(t *testing.T, files []diffFile, kind, ns, name string) diffFile {
	t.Helper()
	for _, f := range files {
		if f.Kind == kind && f.Namespace == ns && f.Name == name {
			return f
		}
	}
	require.Failf(t, "no diff for object", "%s %s/%s not in %+v", kind, ns, name, files)
	return diffFile{}
}

// toJSON renders v canonically (sorted keys), for byte comparisons and
// readable failure messages.
func toJSON(t *testing.T, v interface{}) string {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	return string(data)
}

// auditEvent is the part of an audit log line (level Metadata) the tests read.
type auditEvent struct {
	Verb             string
	UserAgent        string
	User             struct{ Username string }
	ImpersonatedUser *struct{ Username string }
	RequestURI       string
	ObjectRef        *struct {
		Resource, Namespace, Name, APIGroup, APIVersion string
	}
	ResponseStatus struct{ Code int }
}

// audit returns the API server's audit events about namespace ns.
func (c *cluster) audit(t *testing.T, ns string) []auditEvent {
	t.Helper()
	return c.auditWhere(t, func(e auditEvent) bool { return e.ObjectRef != nil && e.ObjectRef.Namespace == ns })
}

// auditWhere returns the API server's audit events that keep says to keep.
func (c *cluster) auditWhere(t *testing.T, keep func(auditEvent) bool) []auditEvent {
	t.Helper()
	data, err := os.ReadFile(c.env["CANARY_E2E_AUDIT_LOG"])
	require.NoError(t, err)
	var out []auditEvent
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e auditEvent
		if len(line) == 0 || json.Unmarshal(line, &e) != nil {
			continue // the server may be writing the last line
		}
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// routeNames lists the names of the routes of kind (http, tcp, tls) of a
// VirtualService, in order; a route without a name is "".
func routeNames(vs *unstructured.Unstructured, kind string) []string {
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", kind)
	names := make([]string, 0, len(routes))
	for _, raw := range routes {
		name, _, _ := unstructured.NestedString(raw.(map[string]interface{}), "name")
		names = append(names, name)
	}
	return names
}

// routeNamed returns the index and a copy of the route of kind named name;
// it must be there.
func routeNamed(t *testing.T, vs *unstructured.Unstructured, kind, name string) (int, map[string]interface{}) {
	t.Helper()
	for i, n := range routeNames(vs, kind) {
		if n == name {
			return i, route(t, vs, kind, i)
		}
	}
	require.Failf(t, "no such route", "%s has no %s route named %q (routes: %q)", vs.GetName(), kind, name, routeNames(vs, kind))
	return -1, nil
}

// table parses a table printed by the plugin (status, check) into rows keyed
// by column header. Columns are separated by at least two spaces.
func table(t *testing.T, out string) []map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.NotEmpty(t, lines)
	sep := regexp.MustCompile(`\s{2,}`)
	header := sep.Split(strings.TrimSpace(lines[0]), -1)
	var rows []map[string]string
	for _, line := range lines[1:] {
		cells := sep.Split(strings.TrimSpace(line), -1)
		require.Len(t, cells, len(header), "row %q does not match header %q", line, lines[0])
		row := map[string]string{}
		for i, h := range header {
			row[h] = cells[i]
		}
		rows = append(rows, row)
	}
	return rows
}

// jsonAndYAML runs `kubectl canary ARGS -o json` and again with -o yaml
// (extraEnv as for canary), requires both to end alike and to print one
// document each, and returns the exit code of the YAML run and both
// documents, parsed.
func (c *cluster) jsonAndYAML(t *testing.T, extraEnv []string, args ...string) (code int, fromJSON, fromYAML map[string]any) {
	t.Helper()
	rJSON := c.canary(t, extraEnv, append(args, "-o", "json")...)
	rYAML := c.canary(t, extraEnv, append(args, "-o", "yaml")...)
	require.Equal(t, exitCode(rJSON), exitCode(rYAML), "-o json and -o yaml end differently:\n%s\n%s", rJSON, rYAML)
	require.NoError(t, json.Unmarshal([]byte(rJSON.stdout), &fromJSON), "-o json printed:\n%s", rJSON)
	require.NoError(t, yaml.UnmarshalStrict([]byte(rYAML.stdout), &fromYAML), "-o yaml printed:\n%s", rYAML)
	require.False(t, strings.HasPrefix(strings.TrimSpace(rYAML.stdout), "{"), "-o yaml printed JSON:\n%s", rYAML)
	return exitCode(rYAML), fromJSON, fromYAML
}

// decodeDocument turns a parsed document into out, as encoding/json would.
func decodeDocument(t *testing.T, doc map[string]any, out any) {
	t.Helper()
	data, err := json.Marshal(doc)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, out), "%s", data)
}
