//go:build e2e

package e2e

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubectl-canary/kubectl-canary/pkg/e2e/xds"
)

// meshClusters is several clusters of one multi-primary mesh, each with its own
// API server, and one kubeconfig with a context per cluster.
type meshClusters struct {
	clusters   map[string]*cluster
	kubeconfig string
}

// newMesh starts the clusters other than the shared one (which is "east")
// and writes a kubeconfig whose contexts are named after them; kubeconfigs
// overrides the kubeconfig a context uses (a proxy in front of a cluster).
func newMesh(t *testing.T, names ...string) *meshClusters {
	t.Helper()
	return newMeshWith(t, nil, names...)
}

// newMeshWith is newMesh with hack/cluster.sh up's arguments for each
// cluster it starts.
func newMeshWith(t *testing.T, args func(name string) []string, names ...string) *meshClusters {
	t.Helper()
	m := &meshClusters{clusters: map[string]*cluster{"east": shared}}
	for _, name := range names {
		if name == "east" {
			continue
		}
		var up []string
		if args != nil {
			up = args(name)
		}
		m.clusters[name] = startCluster(t, up...)
	}
	m.kubeconfig = m.writeKubeconfig(t, nil)
	return m
}

// writeKubeconfig writes a kubeconfig with one context per cluster, each
// the current context of the cluster's admin kubeconfig, or of the one
// overrides gives for it.
func (m *meshClusters) writeKubeconfig(t *testing.T, overrides map[string]string) string {
	t.Helper()
	merged := clientcmdapi.NewConfig()
	for name, c := range m.clusters {
		path := c.kubeconfig
		if o, ok := overrides[name]; ok {
			path = o
		}
		cfg, err := clientcmd.LoadFromFile(path)
		require.NoError(t, err)
		current := cfg.Contexts[cfg.CurrentContext]
		merged.Clusters[name] = cfg.Clusters[current.Cluster]
		merged.AuthInfos[name] = cfg.AuthInfos[current.AuthInfo]
		merged.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	}
	merged.CurrentContext = "east"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*merged, path))
	return path
}

// names are the contexts of the mesh, sorted.
func (m *meshClusters) names() []string {
	var out []string
	for name := range m.clusters {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// deploy creates namespace ns in every cluster with reviews v1 and v2 (v1
// alone where only says so) and bookinfo's routing of it.
func (m *meshClusters) deploy(t *testing.T, ns string, onlyV1 ...string) {
	t.Helper()
	for name, c := range m.clusters {
		if c != shared {
			c.kubectl(t, "", "create", "namespace", ns)
		}
		versions := []string{"v1", "v2"}
		for _, o := range onlyV1 {
			if o == name {
				versions = versions[:1]
			}
		}
		c.deployVersions(t, ns, "reviews", versions...)
		c.create(t, ns, bookinfoReviews())
	}
}

// canary runs kubectl canary with the mesh's kubeconfig.
func (m *meshClusters) canary(t *testing.T, kubeconfig string, args ...string) result {
	t.Helper()
	return shared.canary(t, []string{"KUBECONFIG=" + kubeconfig}, args...)
}

// weightsEverywhere are the default route's weights in each cluster.
func (m *meshClusters) weightsEverywhere(t *testing.T, ns string) map[string]map[string]int64 {
	t.Helper()
	out := map[string]map[string]int64{}
	for name, c := range m.clusters {
		out[name] = weights(t, c.get(t, vsV1, ns, "reviews"), "http", 1)
	}
	return out
}

func same(names []string, w map[string]int64) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, n := range names {
		out[n] = w
	}
	return out
}

// One command carries the canary into every cluster of the mesh; status
// shows a row per cluster and flags a cluster changed on its own.
func TestContextsCarryOneCanaryIntoEveryCluster(t *testing.T) {
	t.Parallel()
	m := newMesh(t, "east", "west", "north")
	ns := shared.newNamespace(t)
	m.deploy(t, ns)
	all := m.names()
	contexts := strings.Join(all, ",")

	r := m.canary(t, m.kubeconfig, "start", "reviews", "-n", ns, "--contexts", contexts)
	require.NoError(t, r.err, "%s", r)
	for _, name := range all {
		assert.Contains(t, r.stdout, "["+name+"] canary "+ns+"/reviews started: canary version=v2 gets 10%")
	}
	assert.Equal(t, same(all, map[string]int64{"v1": 90, "v2": 10}), m.weightsEverywhere(t, ns))

	// --dry-run: each cluster's diff on lines that name it, nothing written.
	r = m.canary(t, m.kubeconfig, "weight", "reviews", "50", "-n", ns, "--contexts", contexts, "--dry-run")
	require.NoError(t, r.err, "%s", r)
	for _, name := range all {
		assert.Regexp(t, `(?m)^\[`+name+`\] \+\s+weight: 50$`, r.stdout)
		assert.Contains(t, r.stdout, "["+name+"] canary "+ns+"/reviews reweighted: canary version=v2 gets 50%, stable version=v1 gets 50% (dry run)")
	}
	assert.Equal(t, same(all, map[string]int64{"v1": 90, "v2": 10}), m.weightsEverywhere(t, ns))

	r = m.canary(t, m.kubeconfig, "weight", "reviews", "50", "-n", ns, "--all-contexts")
	require.NoError(t, r.err, "%s", r)
	assert.Equal(t, same(all, map[string]int64{"v1": 50, "v2": 50}), m.weightsEverywhere(t, ns))

	// west changed on its own: status flags it.
	west := m.clusters["west"]
	west.canary(t, nil, "weight", "reviews", "20", "-n", ns)
	r = m.canary(t, m.kubeconfig, "status", "-n", ns, "--contexts", contexts)
	require.NoError(t, r.err, "%s", r)
	rows := table(t, r.stdout)
	require.Len(t, rows, 3, r.stdout)
	for _, row := range rows {
		want := map[string]string{"east": "50%", "north": "50%", "west": "20%"}[row["CLUSTER"]]
		assert.Equal(t, want, row["WEIGHT"], "%v", row)
		assert.Contains(t, row["ROUTING"], "differs from", "%v", row)
	}
	assert.Contains(t, r.stderr, "Warning: canary "+ns+"/reviews differs between clusters")

	// Run again, the same command brings them together.
	r = m.canary(t, m.kubeconfig, "weight", "reviews", "50", "-n", ns, "--contexts", contexts)
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stdout, "[east] canary "+ns+"/reviews unchanged")
	assert.Equal(t, same(all, map[string]int64{"v1": 50, "v2": 50}), m.weightsEverywhere(t, ns))

	r = m.canary(t, m.kubeconfig, "abort", "reviews", "-n", ns, "--contexts", contexts)
	require.NoError(t, r.err, "%s", r)
	assert.Equal(t, same(all, map[string]int64{"v1": 100}), m.weightsEverywhere(t, ns))

	// A new canary, promoted in every cluster.
	r = m.canary(t, m.kubeconfig, "start", "reviews", "-n", ns, "--contexts", contexts, "--weight", "30")
	require.NoError(t, r.err, "%s", r)
	r = m.canary(t, m.kubeconfig, "promote", "reviews", "-n", ns, "--contexts", contexts)
	require.NoError(t, r.err, "%s", r)
	for _, name := range all {
		assert.Contains(t, r.stdout, "["+name+"] canary "+ns+"/reviews promoted")
		assert.Equal(t, "Promoted", stateOf(t, m.clusters[name].get(t, vsV1, ns, "reviews"), "reviews").Phase, name)
	}
	assert.Equal(t, same(all, map[string]int64{"v2": 100}), m.weightsEverywhere(t, ns))
}

// A cluster whose API server was stopped before the command: an error
// naming it, and nothing written in the others; --skip-unreachable goes on
// without it and says so.
func TestContextsAClusterStoppedBeforeTheCommand(t *testing.T) {
	t.Parallel()
	m := newMesh(t, "east", "west")
	ns := shared.newNamespace(t)
	m.deploy(t, ns)
	west := m.clusters["west"]
	out, err := exec.Command(shared.env["CANARY_E2E_CLUSTER_SH"], "down", west.env["CANARY_E2E_DIR"]).CombinedOutput()
	require.NoError(t, err, "%s", out)

	r := m.canary(t, m.kubeconfig, "start", "reviews", "-n", ns, "--contexts", "east,west")
	require.Error(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "cluster west: ")
	assert.Contains(t, r.stderr, "nothing was changed in any cluster (pass --skip-unreachable to go on without it)")
	assert.Equal(t, map[string]int64{"v1": 100}, weights(t, shared.get(t, vsV1, ns, "reviews"), "http", 1), "east was not written")

	r = m.canary(t, m.kubeconfig, "start", "reviews", "-n", ns, "--contexts", "east,west", "--skip-unreachable")
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "Warning: skipped the clusters that cannot be reached: west (")
	assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, shared.get(t, vsV1, ns, "reviews"), "http", 1))
}

// A cluster that lacks the canary, or cannot be reached, stops the change
// before anything is written anywhere.
func TestContextsRefuseBeforeWritingAnywhere(t *testing.T) {
	t.Parallel()
	m := newMesh(t, "east", "west")
	ns := shared.newNamespace(t)
	m.deploy(t, ns, "west")
	before := map[string]map[string]string{}
	for name, c := range m.clusters {
		before[name] = c.versionsOf(t, ns)
	}
	r := m.canary(t, m.kubeconfig, "start", "reviews", "-n", ns, "--contexts", "east,west")
	require.Error(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "cluster west: ")
	assert.Contains(t, r.stderr, "nothing was changed in any cluster")
	for name, c := range m.clusters {
		assert.Equal(t, before[name], c.versionsOf(t, ns), "%s was written", name)
	}

	// A context whose cluster is gone.
	cfg, err := clientcmd.LoadFromFile(m.kubeconfig)
	require.NoError(t, err)
	cfg.Clusters["gone"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", InsecureSkipTLSVerify: true}
	cfg.AuthInfos["gone"] = &clientcmdapi.AuthInfo{Token: "nothing"}
	cfg.Contexts["gone"] = &clientcmdapi.Context{Cluster: "gone", AuthInfo: "gone"}
	withGone := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, withGone))
	ns2 := shared.newNamespace(t)
	m.deploy(t, ns2)
	r = m.canary(t, withGone, "start", "reviews", "-n", ns2, "--contexts", "east,west,gone")
	require.Error(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "cluster gone: ")
	assert.Contains(t, r.stderr, "--skip-unreachable")
	assert.Equal(t, same([]string{"east", "west"}, map[string]int64{"v1": 100}), m.weightsEverywhere(t, ns2))

	r = m.canary(t, withGone, "start", "reviews", "-n", ns2, "--contexts", "east,west,gone", "--skip-unreachable")
	require.NoError(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "Warning: skipped the clusters that cannot be reached: gone")
	assert.Equal(t, same([]string{"east", "west"}, map[string]int64{"v1": 90, "v2": 10}), m.weightsEverywhere(t, ns2))
}

// A cluster lost in the middle of the writes: the others are written, the
// error says which were and which were not, and the same command run
// again brings every cluster to the change.
func TestContextsReportAWriteLostMidwayAndConverge(t *testing.T) {
	t.Parallel()
	m := newMesh(t, "east", "west")
	ns := shared.newNamespace(t)
	m.deploy(t, ns)
	r := m.canary(t, m.kubeconfig, "start", "reviews", "-n", ns, "--contexts", "east,west")
	require.NoError(t, r.err, "%s", r)

	var dropping atomic.Bool
	dropping.Store(true)
	westProxy := startProxy(t, m.clusters["west"], func(w http.ResponseWriter, req *http.Request, forward http.Handler) {
		if dropping.Load() && req.Method == http.MethodPut && req.URL.Query().Get("dryRun") == "" && routingPath.MatchString(req.URL.Path) {
			panic(http.ErrAbortHandler) // the connection drops, as when the API server goes away
		}
		forward.ServeHTTP(w, req)
	})
	faulty := m.writeKubeconfig(t, map[string]string{"west": westProxy})
	r = m.canary(t, faulty, "weight", "reviews", "40", "-n", ns, "--contexts", "east,west")
	require.Error(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "cluster west: ")
	assert.Contains(t, r.stderr, "the change was written in east and not in west; run the same command again")
	assert.Equal(t, map[string]map[string]int64{"east": {"v1": 60, "v2": 40}, "west": {"v1": 90, "v2": 10}}, m.weightsEverywhere(t, ns))

	dropping.Store(false)
	r = m.canary(t, faulty, "weight", "reviews", "40", "-n", ns, "--contexts", "east,west")
	require.NoError(t, r.err, "%s", r)
	assert.Equal(t, same([]string{"east", "west"}, map[string]int64{"v1": 60, "v2": 40}), m.weightsEverywhere(t, ns))
}

// analyze --contexts judges the canary in every cluster, each through its
// own API server's Prometheus (a real one per cluster, behind a Service),
// and exits with the worst verdict, naming its cluster.
func TestContextsAnalyzeEveryClusterTheWorstWins(t *testing.T) {
	t.Parallel()
	m := newMesh(t, "east", "west")
	ns := shared.newNamespace(t)
	m.deploy(t, ns)
	r := m.canary(t, m.kubeconfig, "start", "reviews", "-n", ns, "--contexts", "east,west", "--weight", "50")
	require.NoError(t, r.err, "%s", r)
	errorShare := map[string]float64{"east": 0, "west": 0.5}
	for _, name := range []string{"east", "west"} {
		exporter := startIstioExporter(t)
		prom := startPrometheus(t, exporter.URL)
		exporter.set(workloadTraffic{Namespace: ns, Service: "reviews", Version: "v1", Workload: "reviews-v1", RPS: 20, LatencyMs: 20})
		exporter.set(workloadTraffic{Namespace: ns, Service: "reviews", Version: "v2", Workload: "reviews-v2", RPS: 20, ErrorShare: errorShare[name], LatencyMs: 20})
		servePrometheusAsService(t, m.clusters[name], ns, prom)
		waitForSeries(t, prom, ns)
	}
	args := []string{"analyze", "reviews", "-n", ns, "--contexts", "east,west", "--prometheus-namespace", ns, "--window", "5s", "--min-requests", "5"}
	m.analyzeUntilEastPassesWestFails(t, ns, args)
	r = m.canary(t, m.kubeconfig, append(args, "-o", "json")...)
	assert.Contains(t, r.stdout, `"worstCluster": "west"`)
}

// A permission missing in one cluster only stops the change everywhere
// before the first write.
func TestContextsPermissionMissingInOneCluster(t *testing.T) {
	t.Parallel()
	m := newMesh(t, "east", "west")
	ns := shared.newNamespace(t)
	m.deploy(t, ns)
	role := readmeRole(t)
	m.clusters["east"].bindUser(t, ns, role)
	m.clusters["west"].bindUser(t, ns, withoutGrant(role, grant{"networking.istio.io", "virtualservices", "update"}))
	asUser := m.writeKubeconfig(t, map[string]string{"east": m.clusters["east"].userKubeconfig, "west": m.clusters["west"].userKubeconfig})
	before := map[string]map[string]string{}
	for name, c := range m.clusters {
		before[name] = c.versionsOf(t, ns)
	}
	r := m.canary(t, asUser, "start", "reviews", "-n", ns, "--contexts", "east,west")
	require.Error(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "cluster west: ")
	assert.Contains(t, r.stderr, "virtualservices")
	assert.Contains(t, r.stderr, "nothing was changed in any cluster")
	for name, c := range m.clusters {
		assert.Equal(t, before[name], c.versionsOf(t, ns), "%s was written", name)
	}
}

// run --contexts steps the canary in every cluster together, judges each
// by its own Prometheus and lets the worst verdict decide: a canary
// failing in west only is aborted everywhere, and a healthy one promoted
// everywhere.
func TestContextsRunStepsEveryClusterTheWorstDecides(t *testing.T) {
	t.Parallel()
	m := newMesh(t, "east", "west")
	// serve gives each cluster's namespace its own exporter and Prometheus,
	// and traffic split by that cluster's weight.
	serve := func(t *testing.T, ns string) map[string]*meshTraffic {
		traffic := map[string]*meshTraffic{}
		for _, name := range m.names() {
			exporter := startIstioExporter(t)
			prom := startPrometheus(t, exporter.URL)
			traffic[name] = sendTraffic(t, m.clusters[name], exporter, ns, meshClient(100))
			servePrometheusAsService(t, m.clusters[name], ns, prom)
		}
		return traffic
	}
	run := func(ns string) result {
		return m.canary(t, m.kubeconfig, "run", "reviews", "-n", ns, "--contexts", "east,west", "--prometheus-namespace", ns,
			"--steps", "20,50,100", "--interval", "10s", "--min-requests", "20")
	}

	t.Run("failing in one cluster aborts in all", func(t *testing.T) {
		t.Parallel()
		ns := shared.newNamespace(t)
		m.deploy(t, ns)
		traffic := serve(t, ns)
		traffic["west"].setHealth("v2", versionHealth{ErrorShare: 0.3, LatencyMs: 20})
		r := run(ns)
		require.Error(t, r.err, "%s", r)
		assert.Equal(t, 3, exitCode(r), "%s", r)
		assert.Contains(t, r.stdout, "step 1/3 (20%) in east: pass")
		assert.Contains(t, r.stdout, "step 1/3 (20%) in west: fail")
		assert.Contains(t, r.stderr, ns+"/reviews in cluster west failed its analysis at step 1/3 (20%) on error-rate and was aborted")
		for _, name := range m.names() {
			assert.Contains(t, r.stdout, "["+name+"] canary "+ns+"/reviews aborted")
			assert.Equal(t, map[string]int64{"v1": 100}, weights(t, m.clusters[name].get(t, vsV1, ns, "reviews"), "http", 1), name)
		}
	})

	t.Run("healthy everywhere is promoted everywhere", func(t *testing.T) {
		t.Parallel()
		ns := shared.newNamespace(t)
		m.deploy(t, ns)
		serve(t, ns)
		r := run(ns)
		require.NoError(t, r.err, "%s", r)
		for _, name := range m.names() {
			for _, step := range []string{"1/3 (20%)", "2/3 (50%)", "3/3 (100%)"} {
				assert.Contains(t, r.stdout, "step "+step+" in "+name+": pass")
			}
			assert.Contains(t, r.stdout, "["+name+"] canary "+ns+"/reviews promoted")
			st, run := runStateOf(t, m.clusters[name], ns)
			assert.Equal(t, "Promoted", st.Phase, name)
			require.NotNil(t, run, name)
			assert.Equal(t, 2, run.Step, name)
		}
	})
}

// One Prometheus of the whole mesh (--prometheus-url) holds every
// cluster's series: each cluster is judged on the requests its workloads
// answered, told apart by the cluster ID of its istiod (east's is Istio's
// default, Kubernetes; west's istiod Pod says west).
func TestContextsOnePrometheusJudgesEachClusterByItsClusterID(t *testing.T) {
	t.Parallel()
	m := newMesh(t, "east", "west")
	m.clusters["west"].create(t, "istio-system", `apiVersion: v1
kind: Pod
metadata: {name: istiod-west, labels: {app: istiod}}
spec:
  containers:
  - name: discovery
    image: local/pilot-discovery
    env: [{name: CLUSTER_ID, value: west}]
`)
	ns := shared.newNamespace(t)
	m.deploy(t, ns)
	r := m.canary(t, m.kubeconfig, "start", "reviews", "-n", ns, "--contexts", "east,west", "--weight", "50")
	require.NoError(t, r.err, "%s", r)
	exporter := startIstioExporter(t)
	prom := startPrometheus(t, exporter.URL)
	for id, errors := range map[string]float64{"Kubernetes": 0, "west": 0.5} {
		exporter.set(workloadTraffic{Namespace: ns, Service: "reviews", Version: "v1", Workload: "reviews-v1", RPS: 20, LatencyMs: 20, Cluster: id})
		exporter.set(workloadTraffic{Namespace: ns, Service: "reviews", Version: "v2", Workload: "reviews-v2", RPS: 20, ErrorShare: errors, LatencyMs: 20, Cluster: id})
	}
	waitForSeries(t, prom, ns)
	args := []string{"analyze", "reviews", "-n", ns, "--contexts", "east,west", "--prometheus-url", prom, "--window", "5s", "--min-requests", "5"}
	m.analyzeUntilEastPassesWestFails(t, ns, args)
}

// --wait with --contexts waits for each cluster's own istiod: after every
// command, the sidecar connected to east's istiod and the one connected to
// west's have both been served the new split. Not parallel: --wait counts
// every proxy connected to the shared istiod.
func TestContextsWaitForEveryClustersIstiod(t *testing.T) {
	m := newMeshWith(t, func(name string) []string { return []string{"--istiod", "--cluster-id", name} }, "east", "west")
	west := m.clusters["west"]
	meshes := map[string]mesh{"east": requireMesh(t), "west": {xdsAddr: west.env["CANARY_E2E_ISTIOD_XDS"], debugAddr: west.env["CANARY_E2E_ISTIOD_HTTP"]}}
	require.NotEmpty(t, meshes["west"].xdsAddr, "west's istiod")
	ns := shared.newNamespace(t)
	m.deploy(t, ns)
	host := fqdn(ns, "reviews")
	proxies := map[string]*xds.Client{}
	for name, ms := range meshes {
		proxies[name] = ms.sidecar(t, ns, "productpage", xds.Options{})
		served(t, proxies[name], "9080", host, hasSplit(map[string]uint32{"v1": 100}))
	}
	for _, step := range []struct {
		args string
		want map[string]uint32
	}{
		{"start reviews --weight 30", map[string]uint32{"v1": 70, "v2": 30}},
		{"weight reviews 60", map[string]uint32{"v1": 40, "v2": 60}},
		{"abort reviews", map[string]uint32{"v1": 100}},
	} {
		for _, ms := range meshes {
			ms.quiet(t) // the previous command's pushes may still be on their way
		}
		r := m.canary(t, m.kubeconfig, append(strings.Fields(step.args), "-n", ns, "--contexts", "east,west", "--wait")...)
		require.NoError(t, r.err, "%s", r)
		for name := range meshes {
			assert.Regexp(t, `\[`+name+`\] 1 of 1 proxy calling service `+ns+`/reviews in sync with the new routing after [0-9.]+m?s\n`, r.stdout)
			assert.Equal(t, step.want, split(last(now(t, proxies[name], "9080", host).Routes)), "%s after %s", name, step.args)
		}
	}
}

// analyzeUntilEastPassesWestFails runs analyze (args) until Prometheus has
// enough of the traffic for east to pass and west to fail, and checks that
// the command then fails with west, the worst, named.
func (m *meshClusters) analyzeUntilEastPassesWestFails(t *testing.T, ns string, args []string) {
	t.Helper()
	var r result
	deadline := time.Now().Add(45 * time.Second)
	for {
		r = m.canary(t, m.kubeconfig, args...)
		if strings.Contains(r.stdout, "[east] verdict: pass") && strings.Contains(r.stdout, "[west] verdict: fail") || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	require.Error(t, r.err, "%s", r)
	assert.Equal(t, 3, exitCode(r), "fail is the worst verdict: %s", r)
	assert.Contains(t, r.stdout, "[east] verdict: pass")
	assert.Contains(t, r.stdout, "[west] verdict: fail")
	assert.Contains(t, r.stderr, ns+"/reviews in cluster west")
}
