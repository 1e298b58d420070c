//go:build e2e

package e2e

// What the mesh does with what the plugin writes: a real istiod (started by
// hack/cluster.sh --istiod) watches the API server, and a test client
// (pkg/e2e/xds) asks it, as a sidecar or the ingress gateway would, for the
// routes Envoy would apply.
//
// These tests do not call t.Parallel: --wait counts every connected proxy
// that calls a Service, so each test's proxies must not meet another's.
// Go runs every sequential test before it resumes the parallel ones.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubectl-canary/kubectl-canary/pkg/e2e/xds"
	"github.com/kubectl-canary/kubectl-canary/pkg/meshsync"
)

// meshTimeout bounds each wait for istiod to serve a route.
const meshTimeout = 30 * time.Second

// mesh is the istiod the harness started beside the shared cluster.
type mesh struct {
	xdsAddr   string // plaintext gRPC (ADS)
	debugAddr string // http: /debug/syncz
	istioctl  string
}

func requireMesh(t *testing.T) mesh {
	t.Helper()
	m := mesh{xdsAddr: os.Getenv("CANARY_E2E_ISTIOD_XDS"), debugAddr: os.Getenv("CANARY_E2E_ISTIOD_HTTP"), istioctl: os.Getenv("CANARY_E2E_ISTIOCTL")}
	if os.Getenv("CANARY_E2E_ISTIOD") != "1" || m.xdsAddr == "" || m.debugAddr == "" || m.istioctl == "" {
		t.Fatal("no istiod: run the suite with hack/e2e.sh, which starts one (hack/cluster.sh run --istiod)")
	}
	return m
}

// sidecar connects a test client as the sidecar of pod APP-0 (label app=APP)
// in ns, subscribed to the route configuration of port 9080.
func (m mesh) sidecar(t *testing.T, ns, app string, opts xds.Options) *xds.Client {
	t.Helper()
	return m.dial(t, xds.Sidecar(ns, app+"-0", podIP(), map[string]string{"app": app}), opts, "9080")
}

// gateway connects a test client as an ingress gateway pod (label
// istio=ingressgateway) in ns, subscribed to the routes of port 80.
func (m mesh) gateway(t *testing.T, ns string) *xds.Client {
	t.Helper()
	return m.dial(t, xds.IngressGateway(ns, "ingress-0", podIP(), map[string]string{"istio": "ingressgateway"}), xds.Options{}, "http.80")
}

func (m mesh) dial(t *testing.T, proxy xds.Proxy, opts xds.Options, routes ...string) *xds.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), meshTimeout)
	defer cancel()
	opts.Routes = append(opts.Routes, routes...)
	c, err := xds.Dial(ctx, m.xdsAddr, proxy, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	// A proxy counts for --wait once it has its first configuration.
	_, err = c.WaitFor(ctx, routes[0], func(xds.RouteConfig) bool { return true })
	require.NoError(t, err)
	m.quiet(t)
	return c
}

// quiet waits until istiod has pushed everything the test's setup caused:
// no new push for a while (istiod debounces events for 100 ms). --wait
// counts any push newer than the one before its write; a push the setup
// caused, still on its way, would count although it lacks the change.
func (m mesh) quiet(t *testing.T) {
	t.Helper()
	const still = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), meshTimeout)
	defer cancel()
	var latest uint64
	since := time.Now()
	for time.Since(since) < still {
		proxies, err := xds.Syncz(ctx, m.debugAddr)
		require.NoError(t, err)
		newest, err := meshsync.LatestPush(proxies)
		require.NoError(t, err)
		if newest != latest {
			latest, since = newest, time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// podIP is an address for a test proxy; istiod only reads it.
func podIP() string { return fmt.Sprintf("10.1.%d.%d", rand.Intn(250)+1, rand.Intn(250)+1) }

// served waits until istiod serves the route configuration with a virtual
// host for domain whose routes satisfy ok, and returns that host.
func served(t *testing.T, c *xds.Client, routeConfig, domain string, ok func([]xds.Route) bool) xds.VirtualHost {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), meshTimeout)
	defer cancel()
	var vh xds.VirtualHost
	_, err := c.WaitFor(ctx, routeConfig, func(rc xds.RouteConfig) bool {
		var found bool
		vh, found = rc.VirtualHostForDomain(domain)
		return found && len(vh.Routes) > 0 && ok(vh.Routes)
	})
	require.NoError(t, err)
	return vh
}

// now returns the virtual host as the client has it at this moment: after
// --wait, istiod has pushed the change and the proxy has acknowledged it,
// so there is nothing to wait for.
func now(t *testing.T, c *xds.Client, routeConfig, domain string) xds.VirtualHost {
	t.Helper()
	rc, ok := c.Route(routeConfig)
	require.True(t, ok, "the proxy has no route configuration %q", routeConfig)
	vh, ok := rc.VirtualHostForDomain(domain)
	require.True(t, ok, "no virtual host for %s in\n%s", domain, rc)
	return vh
}

// split is the traffic split of a route by subset, without 0-weight
// destinations (a destination at 0 % gets no traffic, kept or not).
func split(r xds.Route) map[string]uint32 {
	out := map[string]uint32{}
	for subset, w := range r.SubsetWeights() {
		if w > 0 {
			out[subset] = w
		}
	}
	return out
}

func last(routes []xds.Route) xds.Route { return routes[len(routes)-1] }

// hasSplit is a predicate for served: the catch-all route splits as want.
func hasSplit(want map[string]uint32) func([]xds.Route) bool {
	return func(routes []xds.Route) bool { return fmt.Sprint(split(last(routes))) == fmt.Sprint(want) }
}

// fqdn is the name istiod gives a Service's virtual host (with the port).
func fqdn(ns, svc string) string { return svc + "." + ns + ".svc.cluster.local" }

func waitedFor(t *testing.T, out string, n int, ns, svc string) {
	t.Helper()
	proxies := "proxies"
	if n == 1 {
		proxies = "proxy"
	}
	assert.Regexp(t, fmt.Sprintf(`\n%d of %d %s calling service %s/%s in sync with the new routing after [0-9.]+m?s\n`, n, n, proxies, ns, svc), out)
}

// pendingPods creates a Pending pod per version, as the Deployments would
// have, so that Istio's analyzers see workloads behind the subsets.
func (c *cluster) pendingPods(t *testing.T, ns, svc string, versions ...string) {
	t.Helper()
	var b strings.Builder
	for _, v := range versions {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Pod
metadata: {name: %[1]s-%[2]s-0, labels: {app: %[1]s, version: %[2]s}}
spec: {containers: [{name: %[1]s, image: "%[1]s:%[2]s", ports: [{containerPort: 9080}]}]}
`, svc, v)
	}
	c.create(t, ns, b.String())
}

// findings runs Istio's analyzers (istioctl analyze) on namespace ns of the
// live cluster and returns each finding as "CODE origin: message".
func (m mesh) findings(t *testing.T, ns string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.istioctl, "analyze", "--kubeconfig", shared.kubeconfig, "-n", ns, "-o", "json")
	out, err := cmd.Output()
	var exit *exec.ExitError
	// 79: findings at or above the failure threshold; they are in the output.
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 79) {
		require.NoError(t, err, "istioctl analyze -n %s: %s", ns, exitStderr(err))
	}
	var messages []struct {
		Code    string `json:"code"`
		Level   string `json:"level"`
		Origin  string `json:"origin"`
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(out, &messages), "istioctl analyze -o json printed:\n%s", out)
	var list []string
	for _, msg := range messages {
		list = append(list, fmt.Sprintf("%s %s %s: %s", msg.Level, msg.Code, msg.Origin, msg.Message))
	}
	sort.Strings(list)
	return list
}

func exitStderr(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(exit.Stderr)
	}
	return ""
}

// noNewFindings requires that the analyzers find nothing the namespace did
// not have before the canary.
func (m mesh) noNewFindings(t *testing.T, ns string, before []string, after string) {
	t.Helper()
	known := map[string]bool{}
	for _, f := range before {
		known[f] = true
	}
	for _, f := range m.findings(t, ns) {
		assert.True(t, known[f], "istioctl analyze has a new finding after %s: %s", after, f)
	}
}

// meshScene is where most mesh tests start: reviews with its versions (and
// Pending pods, for Istio's analyzers) in a namespace of the test's own, the
// routing objects given, what istioctl analyze finds before the canary, and
// productpage's sidecar.
type meshScene struct {
	mesh
	ns, host    string
	before      []string
	productpage *xds.Client
}

func newMeshScene(t *testing.T, objects string, versions ...string) meshScene {
	t.Helper()
	s := meshScene{mesh: requireMesh(t), ns: shared.newNamespace(t)}
	s.host = fqdn(s.ns, "reviews")
	shared.deployVersions(t, s.ns, "reviews", versions...)
	shared.pendingPods(t, s.ns, "reviews", versions...)
	if objects != "" {
		shared.create(t, s.ns, objects)
	}
	s.before = s.findings(t, s.ns)
	t.Logf("istioctl analyze before the canary: %q", s.before)
	s.productpage = s.sidecar(t, s.ns, "productpage", xds.Options{})
	return s
}

func TestMeshServesTheSplitAfterEachCommand(t *testing.T) {
	s := newMeshScene(t, "", "v1", "v2")
	m, ns, before, productpage, host := s.mesh, s.ns, s.before, s.productpage, s.host

	for _, step := range []struct {
		args []string
		want map[string]uint32
	}{
		{[]string{"start", "reviews"}, map[string]uint32{"v1": 90, "v2": 10}},
		{[]string{"weight", "reviews", "50"}, map[string]uint32{"v1": 50, "v2": 50}},
		{[]string{"abort", "reviews"}, map[string]uint32{"v1": 100}},
		{[]string{"start", "reviews", "--weight", "20"}, map[string]uint32{"v1": 80, "v2": 20}},
		{[]string{"promote", "reviews"}, map[string]uint32{"v2": 100}},
	} {
		m.quiet(t) // the previous command's pushes may still be on their way
		out := shared.mustCanary(t, append(append([]string{"-n", ns}, step.args...), "--wait")...)
		waitedFor(t, out, 1, ns, "reviews")
		vh := now(t, productpage, "9080", host)
		require.NotEmpty(t, vh.Routes)
		catchAll := last(vh.Routes)
		assert.Equal(t, step.want, split(catchAll), "after %v istiod serves:\n%s", step.args, catchAll)
		t.Logf("after kubectl canary %s: %s serves %v", strings.Join(step.args, " "), vh.Name, catchAll.Weights())
		m.noNewFindings(t, ns, before, strings.Join(step.args, " "))
	}
}

func TestMeshKeepsAPinnedHeaderRoute(t *testing.T) {
	// Bookinfo's "jason goes to v2": a deliberate rule the canary of v3
	// must leave alone.
	s := newMeshScene(t, bookinfoReviews(), "v1", "v2", "v3")
	m, ns, before, productpage, host := s.mesh, s.ns, s.before, s.productpage, s.host
	jason := func(routes []xds.Route) {
		t.Helper()
		require.Len(t, routes, 2, "%v", routes)
		assert.Equal(t, []xds.HeaderMatch{{Name: "end-user", Kind: xds.MatchExact, Value: "jason"}}, routes[0].Match.Headers)
		assert.Equal(t, map[string]uint32{"v2": 100}, split(routes[0]), "the pinned route still reaches v2 alone")
	}
	jason(served(t, productpage, "9080", host, hasSplit(map[string]uint32{"v1": 100})).Routes)

	for _, step := range []struct {
		args []string
		want map[string]uint32
	}{
		{[]string{"start", "reviews", "--canary", "v3", "--weight", "25"}, map[string]uint32{"v1": 75, "v3": 25}},
		{[]string{"weight", "reviews", "60"}, map[string]uint32{"v1": 40, "v3": 60}},
		{[]string{"abort", "reviews"}, map[string]uint32{"v1": 100}},
	} {
		m.quiet(t) // the previous command's pushes may still be on their way
		out := shared.mustCanary(t, append(append([]string{"-n", ns}, step.args...), "--wait")...)
		waitedFor(t, out, 1, ns, "reviews")
		routes := now(t, productpage, "9080", host).Routes
		jason(routes)
		assert.Equal(t, step.want, split(last(routes)), "after %v", step.args)
		m.noNewFindings(t, ns, before, strings.Join(step.args, " "))
	}
}

func TestMeshDarkLaunchRoutesTestersFirst(t *testing.T) {
	s := newMeshScene(t, "", "v1", "v2")
	m, ns, before, productpage, host := s.mesh, s.ns, s.before, s.productpage, s.host

	testers := func(routes []xds.Route) {
		t.Helper()
		require.Len(t, routes, 2, "the testers' route, then the split: %v", routes)
		headers := map[string]xds.HeaderMatch{}
		for _, h := range routes[0].Match.Headers {
			headers[h.Name] = h
		}
		assert.Equal(t, xds.HeaderMatch{Name: "x-tester", Kind: xds.MatchExact, Value: "yes"}, headers["x-tester"])
		require.Contains(t, headers, "cookie")
		assert.Equal(t, xds.MatchRegex, headers["cookie"].Kind)
		assert.Contains(t, headers["cookie"].Value, "group=beta")
		assert.Equal(t, map[string]uint32{"v2": 100}, split(routes[0]), "testers reach the canary alone")
	}

	out := shared.mustCanary(t, "-n", ns, "start", "reviews", "--wait", "--weight", "0", "--header", "x-tester=yes", "--cookie", "group=beta")
	waitedFor(t, out, 1, ns, "reviews")
	routes := now(t, productpage, "9080", host).Routes
	testers(routes)
	assert.Equal(t, map[string]uint32{"v1": 100}, split(last(routes)), "everyone else stays on stable")
	m.noNewFindings(t, ns, before, "start --header --cookie")

	m.quiet(t) // the previous command's pushes may still be on their way
	out = shared.mustCanary(t, "-n", ns, "weight", "reviews", "--wait", "10")
	waitedFor(t, out, 1, ns, "reviews")
	routes = now(t, productpage, "9080", host).Routes
	testers(routes)
	assert.Equal(t, map[string]uint32{"v1": 90, "v2": 10}, split(last(routes)))
	m.noNewFindings(t, ns, before, "weight 10")
}

func TestMeshMirrorsToTheCanary(t *testing.T) {
	s := newMeshScene(t, "", "v1", "v2")
	m, ns, before, productpage, host := s.mesh, s.ns, s.before, s.productpage, s.host

	out := shared.mustCanary(t, "-n", ns, "start", "reviews", "--wait", "--weight", "5", "--mirror", "20")
	waitedFor(t, out, 1, ns, "reviews")
	catchAll := last(now(t, productpage, "9080", host).Routes)
	assert.Equal(t, map[string]uint32{"v1": 95, "v2": 5}, split(catchAll))
	assert.Equal(t, []xds.Mirror{{Cluster: xds.OutboundCluster(host, 9080, "v2"), Percent: 20}}, catchAll.Mirrors)
	m.noNewFindings(t, ns, before, "start --mirror 20")

	m.quiet(t) // the previous command's pushes may still be on their way
	out = shared.mustCanary(t, "-n", ns, "weight", "reviews", "--wait", "30", "--mirror", "0")
	waitedFor(t, out, 1, ns, "reviews")
	catchAll = last(now(t, productpage, "9080", host).Routes)
	assert.Equal(t, map[string]uint32{"v1": 70, "v2": 30}, split(catchAll))
	assert.Empty(t, catchAll.Mirrors, "--mirror 0 stops the shadow traffic")
	m.noNewFindings(t, ns, before, "weight 30 --mirror 0")
}

func TestMeshGatewayGetsTheSameSplit(t *testing.T) {
	s := newMeshScene(t, `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [www.example.com]
`, "v1", "v2")
	m, ns, before, productpage, host := s.mesh, s.ns, s.before, s.productpage, s.host
	ingress := m.gateway(t, ns)

	out := shared.mustCanary(t, "-n", ns, "start", "reviews", "--wait", "--weight", "30", "--gateway", ns+"/public", "--host", "www.example.com")
	waitedFor(t, out, 2, ns, "reviews")
	assert.Equal(t, map[string]uint32{"v1": 70, "v2": 30}, split(last(now(t, ingress, "http.80", "www.example.com").Routes)), "external traffic")
	assert.Equal(t, map[string]uint32{"v1": 70, "v2": 30}, split(last(now(t, productpage, "9080", host).Routes)), "in-mesh traffic")
	m.noNewFindings(t, ns, before, "start --gateway")

	m.quiet(t) // the previous command's pushes may still be on their way
	out = shared.mustCanary(t, "-n", ns, "promote", "reviews", "--wait")
	waitedFor(t, out, 2, ns, "reviews")
	assert.Equal(t, map[string]uint32{"v2": 100}, split(last(now(t, ingress, "http.80", "www.example.com").Routes)))
	assert.Equal(t, map[string]uint32{"v2": 100}, split(last(now(t, productpage, "9080", host).Routes)))
	m.noNewFindings(t, ns, before, "promote")
}

func TestWaitNamesAProxyThatNeverAcknowledges(t *testing.T) {
	m := requireMesh(t)
	ns := shared.newNamespace(t)
	shared.deployVersions(t, ns, "reviews", "v1", "v2")
	stuck := m.sidecar(t, ns, "productpage", xds.Options{NoAck: true})

	r := shared.failCanary(t, "-n", ns, "start", "reviews", "--wait", "--wait-timeout", "3s")
	assert.Contains(t, r.stdout, "canary "+ns+"/reviews started", "the change is written first")
	assert.Contains(t, r.stderr, "waited 3s for the proxies calling service "+ns+"/reviews: 0 of 1 in sync")
	assert.Contains(t, r.stderr, stuck.ProxyID()+" has not acknowledged")
	vs := shared.get(t, virtualServices("v1"), ns, "reviews")
	assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, vs, "http", 0), "the change stays written")
}

func TestWaitThatCannotWorkWritesNothing(t *testing.T) {
	requireMesh(t)
	ns := shared.newNamespace(t)
	shared.deployVersions(t, ns, "reviews", "v1", "v2")

	r := shared.failCanary(t, "-n", ns, "start", "reviews", "--wait", "--istiod-service", "no-such-istiod")
	assert.Contains(t, r.stderr, "--wait cannot work, so nothing was changed: there is no service istio-system/no-such-istiod to read istiod's sync status from")
	shared.requireAbsent(t, virtualServices("v1"), ns, "reviews")
	shared.requireAbsent(t, destinationRules("v1"), ns, "reviews")

	// A user with the README's Role, who may run canaries in the namespace
	// but not find istiod, then not read it.
	shared.bindUser(t, ns, readmeRole(t))
	asUser := []string{"KUBECONFIG=" + shared.userKubeconfig}
	r = shared.canary(t, asUser, "-n", ns, "start", "reviews", "--wait")
	require.Error(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "--wait cannot work, so nothing was changed: not allowed to get service istio-system/istiod, which --wait needs to find istiod")
	shared.requireAbsent(t, virtualServices("v1"), ns, "reviews")

	shared.kubectl(t, "", "create", "role", "find-istiod", "-n", "istio-system", "--verb", "get,list", "--resource", "services,endpointslices.discovery.k8s.io")
	shared.kubectl(t, "", "create", "rolebinding", "find-istiod", "-n", "istio-system", "--role", "find-istiod", "--user", "canary-user")
	t.Cleanup(func() {
		shared.kubectl(t, "", "delete", "-n", "istio-system", "rolebinding/find-istiod", "role/find-istiod")
	})
	r = shared.canary(t, asUser, "-n", ns, "start", "reviews", "--wait")
	require.Error(t, r.err, "%s", r)
	assert.Contains(t, r.stderr, "--wait cannot work, so nothing was changed: not allowed to get services/proxy in namespace istio-system, which --wait needs to read istiod's sync status (service istio-system/istiod port 15014)")
	shared.requireAbsent(t, virtualServices("v1"), ns, "reviews")
}

// replica starts another istiod replica beside the harness's (hack/cluster.sh
// replica), removed when the test ends, and returns it as a mesh of its own.
func (m mesh) replica(t *testing.T, name string) mesh {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	script, dir := shared.env["CANARY_E2E_CLUSTER_SH"], shared.env["CANARY_E2E_DIR"]
	out, err := exec.CommandContext(ctx, script, "replica", dir, name).Output()
	require.NoError(t, err, "cluster.sh replica: %s", exitStderr(err))
	t.Cleanup(func() {
		out, err := exec.Command(script, "replica", "--stop", dir, name).CombinedOutput()
		assert.NoError(t, err, "cluster.sh replica --stop: %s", out)
	})
	r := m
	for _, kv := range strings.Fields(string(out)) {
		key, value, _ := strings.Cut(kv, "=")
		switch key {
		case "CANARY_E2E_ISTIOD_XDS":
			r.xdsAddr = value
		case "CANARY_E2E_ISTIOD_HTTP":
			r.debugAddr = value
		}
	}
	require.NotEqual(t, m.xdsAddr, r.xdsAddr, "cluster.sh replica printed %q", out)
	return r
}

// TestWaitReadsEveryIstiodReplica: with two istiod replicas, each serving
// its own proxies with its own push counter, --wait reads both through the
// API server's pod proxy and waits for the proxies of each.
func TestWaitReadsEveryIstiodReplica(t *testing.T) {
	first := requireMesh(t)
	second := first.replica(t, "istiod-second")
	ns := shared.newNamespace(t)
	shared.deployVersions(t, ns, "reviews", "v1", "v2")
	productpage := first.sidecar(t, ns, "productpage", xds.Options{})
	ratings := second.sidecar(t, ns, "ratings", xds.Options{})
	first.quiet(t)
	host := fqdn(ns, "reviews")

	out := shared.mustCanary(t, "-n", ns, "start", "reviews", "--wait")
	waitedFor(t, out, 2, ns, "reviews")
	for _, proxy := range []*xds.Client{productpage, ratings} {
		assert.Equal(t, map[string]uint32{"v1": 90, "v2": 10}, split(last(now(t, proxy, "9080", host).Routes)), proxy.ProxyID())
	}

	// The same through port-forwards to each replica's pod (the stand-in
	// kubelet connects them to the pod's loopback), as on a cluster whose
	// istiod turns the API server's proxy away.
	first.quiet(t)
	out = shared.mustCanary(t, "-n", ns, "weight", "reviews", "30", "--wait", "--istiod-via", "port-forward")
	waitedFor(t, out, 2, ns, "reviews")
	forwarded := map[string]bool{}
	for _, e := range shared.audit(t, "istio-system") {
		if strings.Contains(e.RequestURI, "/portforward") && e.User.Username == "canary-admin" {
			forwarded[e.ObjectRef.Name] = true
		}
	}
	assert.Equal(t, map[string]bool{"istiod-local": true, "istiod-second": true}, forwarded, "a port-forward to each replica")
	for _, proxy := range []*xds.Client{productpage, ratings} {
		assert.Equal(t, map[string]uint32{"v1": 70, "v2": 30}, split(last(now(t, proxy, "9080", host).Routes)), proxy.ProxyID())
	}

	stuck := second.sidecar(t, ns, "details", xds.Options{NoAck: true})
	first.quiet(t) // the previous command's pushes may still be on their way
	r := shared.failCanary(t, "-n", ns, "weight", "reviews", "50", "--wait", "--wait-timeout", "3s")
	assert.Contains(t, r.stderr, "waited 3s for the proxies calling service "+ns+"/reviews: 2 of 3 in sync")
	assert.Contains(t, r.stderr, stuck.ProxyID()+" has not acknowledged")
	for _, proxy := range []*xds.Client{productpage, ratings} {
		assert.Equal(t, map[string]uint32{"v1": 50, "v2": 50}, split(last(now(t, proxy, "9080", host).Routes)), proxy.ProxyID())
	}
}
