// Command bench measures `kubectl canary` against a real local
// kube-apiserver and, in the same run, kubectl doing the same job without
// the plugin. `make bench` builds the plugin and runs it inside a cluster of
// hack/cluster.sh:
//
//	hack/cluster.sh run --gateway-api -- go run ./hack/bench -plugin bin/kubectl-canary -out .bench
//
// It reads the cluster's variables: CANARY_E2E_KUBECONFIG (admin),
// CANARY_E2E_KUBECTL, CANARY_E2E_SERVER and CANARY_E2E_AUDIT_LOG (level
// Metadata: verb, URI and user agent of every request).
//
// Per command (start, weight, abort, promote, status SERVICE, status -A,
// and weight on a canary of the Kubernetes Gateway API: an HTTPRoute, which
// needs the cluster to serve the Gateway API, as make bench's does) it
// reports the wall time (median of -runs runs, each process started fresh
// with a warm discovery cache (--cache-dir), which an untimed first run
// fills), the API requests by verb and resource (counted from the audit
// log), the bytes of the response bodies (counted
// by a proxy on 127.0.0.1 in separate runs, so the timed runs go straight to
// the API server), and the same for the kubectl equivalent, with the ratio
// plugin/kubectl. It does so on a small cluster, then again after creating
// -services Services (each with 2 Deployments, a VirtualService and a
// DestinationRule). It also reports the start time of `version` and
// `--help`, the binary size, and the routing core's Go benchmarks, checks
// the targets of issues 8, 15 and 17, prints a table on stdout and writes
// the figures as JSON to OUT/bench-<time>.json and OUT/latest.json. Progress
// goes to stderr. The cluster serves Istio's and the Gateway API's CRDs
// (--gateway-api), so every command sees the Gateway API served, as in a
// cluster that installed it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	benchNS = "bench"
	// freshSvc has routing but no canary: start begins from it.
	freshSvc = "fresh"
	// runSvc has a canary at 10 %: weight, abort, promote and status
	// begin from it.
	runSvc = "run"
)

type config struct {
	plugin, kubectl, kubeconfig, auditLog, server, goCmd string
	runs, bytesRuns, startupRuns                         int
	services, perNamespace, canaries, workers            int
	out                                                  string
	skipBig, skipGoBench, skipClusters                   bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.plugin, "plugin", "bin/kubectl-canary", "the kubectl-canary binary to measure (make build's)")
	flag.StringVar(&cfg.goCmd, "go", "go", "the go command, for the routing core's benchmarks and the size breakdown")
	flag.IntVar(&cfg.runs, "runs", 11, "timed runs per command and side (the median is reported; at least 10)")
	flag.IntVar(&cfg.bytesRuns, "bytes-runs", 3, "runs per command and side through the counting proxy")
	flag.IntVar(&cfg.startupRuns, "startup-runs", 21, "runs of version and --help")
	flag.IntVar(&cfg.services, "services", 2000, "Services of the big cluster (2 Deployments, a VirtualService and a DestinationRule each)")
	flag.IntVar(&cfg.perNamespace, "per-namespace", 50, "Services per namespace in the big cluster")
	flag.IntVar(&cfg.canaries, "canaries", 20, "running canaries among the big cluster's Services")
	flag.IntVar(&cfg.workers, "workers", 16, "concurrent requests while creating the big cluster")
	flag.StringVar(&cfg.out, "out", ".bench", "folder for the JSON results (git-ignored)")
	flag.BoolVar(&cfg.skipBig, "skip-big", false, "measure the small cluster only")
	flag.BoolVar(&cfg.skipGoBench, "skip-go-bench", false, "do not run the routing core's Go benchmarks")
	flag.BoolVar(&cfg.skipClusters, "skip-clusters", false, "do not start two more clusters to time weight --contexts over three")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	for _, v := range []struct {
		dst  *string
		name string
	}{{&cfg.kubeconfig, "CANARY_E2E_KUBECONFIG"}, {&cfg.kubectl, "CANARY_E2E_KUBECTL"}, {&cfg.auditLog, "CANARY_E2E_AUDIT_LOG"}, {&cfg.server, "CANARY_E2E_SERVER"}} {
		if *v.dst = os.Getenv(v.name); *v.dst == "" {
			fmt.Fprintf(os.Stderr, "bench: %s is not set; run it with make bench (hack/cluster.sh run -- ...)\n", v.name)
			os.Exit(2)
		}
	}
	if !strings.HasPrefix(cfg.server, "https://127.0.0.1:") {
		fmt.Fprintf(os.Stderr, "bench: CANARY_E2E_SERVER is %s; the bench talks to a local cluster on 127.0.0.1 only\n", cfg.server)
		os.Exit(2)
	}
	if cfg.runs < 10 {
		fmt.Fprintf(os.Stderr, "bench: warning: -runs %d is below the 10 runs the figures call for\n", cfg.runs)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: error: %v\n", err)
		stop()
		os.Exit(1)
	}
}

type bench struct {
	cfg             config
	clients         *clients
	audit           *auditLog
	proxy           *countingProxy
	direct, proxied endpoint
	env             []string
	devNull         *os.File
	markers         int
	// initial is fresh's routing before any canary; running is run's
	// routing with the canary at 10 %.
	initial, running *routingState
	// routes are the Gateway API route kinds the cluster serves;
	// gatewayRunning is gwapi's HTTPRoute with the canary at 10 %.
	routes         []schema.GroupVersionResource
	gatewayRunning *unstructured.Unstructured
}

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(ctx context.Context, cfg config, stdout io.Writer) error {
	t0 := time.Now()
	var err error
	if cfg.plugin, err = filepath.Abs(cfg.plugin); err != nil {
		return err
	}
	if _, err := os.Stat(cfg.plugin); err != nil {
		return fmt.Errorf("plugin binary: %w (make build writes it)", err)
	}
	work, err := os.MkdirTemp("", "canary-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	restConfig, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return err
	}
	cl, err := newClients(restConfig)
	if err != nil {
		return err
	}
	proxy, err := startProxy(cfg.server)
	if err != nil {
		return err
	}
	defer proxy.Close()
	proxyKubeconfig := filepath.Join(work, "proxy.kubeconfig")
	if err := writeProxyKubeconfig(cfg.kubeconfig, proxy.URL, proxyKubeconfig); err != nil {
		return err
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devNull.Close()
	b := &bench{
		cfg: cfg, clients: cl, audit: &auditLog{path: cfg.auditLog}, proxy: proxy, devNull: devNull,
		direct:  endpoint{kubeconfig: cfg.kubeconfig, pluginCache: filepath.Join(work, "cache/plugin"), kubectlCache: filepath.Join(work, "cache/kubectl")},
		proxied: endpoint{kubeconfig: proxyKubeconfig, pluginCache: filepath.Join(work, "cache/plugin-proxy"), kubectlCache: filepath.Join(work, "cache/kubectl-proxy")},
		env:     commandEnv(cfg),
	}

	rep := &report{Started: t0.UTC().Format(time.RFC3339), Runs: cfg.runs, BytesRuns: cfg.bytesRuns, StartupRuns: cfg.startupRuns}
	if rep.Machine, err = b.machine(ctx); err != nil {
		return err
	}
	logf("binary sizes")
	if rep.Size, err = b.sizes(ctx, work); err != nil {
		return err
	}
	if !cfg.skipGoBench {
		logf("routing core: go test ./pkg/routing -run '^$' -bench . -benchmem")
		if rep.GoBench, err = goBench(ctx, cfg.goCmd); err != nil {
			return err
		}
	}
	logf("setting up namespace %s", benchNS)
	if err := b.setup(ctx); err != nil {
		return err
	}
	rep.GatewayAPIRoutes = resourcesOf(b.routes)
	logf("start-up of version and --help (%d runs each)", cfg.startupRuns)
	if rep.Startup, err = b.startups(ctx); err != nil {
		return err
	}
	small, err := b.scale(ctx, "small", 2)
	if err != nil {
		return err
	}
	rep.Scales = append(rep.Scales, small)
	if !cfg.skipClusters {
		logf("starting two more clusters: weight --contexts over 1 and over 3 clusters (%d runs each)", cfg.runs)
		if rep.Clusters, err = b.severalClusters(ctx, work); err != nil {
			return err
		}
	}
	if !cfg.skipBig {
		logf("creating %d Services, %d Deployments, %d VirtualServices and %d DestinationRules", cfg.services, 2*cfg.services, cfg.services, cfg.services)
		if err := cl.widenServiceCIDR(ctx); err != nil {
			return err
		}
		pop, err := cl.populate(ctx, cfg.services, cfg.perNamespace, cfg.workers)
		if err != nil {
			return err
		}
		rep.Population = &pop
		logf("created in %.1fs (%d requests, %.0f/s); starting %d canaries with the plugin", pop.Seconds, pop.Requests, float64(pop.Requests)/pop.Seconds, cfg.canaries)
		if err := b.startCanaries(ctx); err != nil {
			return err
		}
		big, err := b.scale(ctx, "big", 2+cfg.canaries)
		if err != nil {
			return err
		}
		rep.Scales = append(rep.Scales, big)
	}
	rep.Machine.LoadEnd = loadAverage()
	rep.Targets = evaluate(rep)
	rep.Seconds = time.Since(t0).Seconds()
	printReport(stdout, rep)
	return writeJSON(cfg.out, rep, t0)
}

// commandEnv is the environment of the measured processes: the plugin's
// folder first on PATH (for `kubectl canary`), no kubeconfig or cache
// variables (the flags say which).
func commandEnv(cfg config) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "KUBECONFIG", "KUBECACHEDIR", "KUBECTL_EXTERNAL_DIFF", "PATH":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH="+filepath.Dir(cfg.plugin)+":"+filepath.Dir(cfg.kubectl)+":"+os.Getenv("PATH"))
}

// writeProxyKubeconfig is the admin kubeconfig pointed at the proxy.
func writeProxyKubeconfig(from, proxyURL, to string) error {
	kc, err := clientcmd.LoadFromFile(from)
	if err != nil {
		return err
	}
	for _, c := range kc.Clusters {
		c.Server = proxyURL
	}
	return clientcmd.WriteToFile(*kc, to)
}

func (b *bench) pluginArgv(ep endpoint, args ...string) []string {
	return append([]string{b.cfg.plugin, "--kubeconfig", ep.kubeconfig, "--cache-dir", ep.pluginCache}, args...)
}

// viaKubectlArgv runs the plugin as users do, through kubectl's plugin
// mechanism (kubectl finds kubectl-canary on PATH and execs it).
func (b *bench) viaKubectlArgv(ep endpoint, args ...string) []string {
	return append([]string{b.cfg.kubectl, "canary", "--kubeconfig", ep.kubeconfig, "--cache-dir", ep.pluginCache}, args...)
}

func (b *bench) kubectlArgv(ep endpoint, args ...string) []string {
	return append([]string{b.cfg.kubectl, "--kubeconfig", ep.kubeconfig, "--cache-dir", ep.kubectlCache}, args...)
}

// setup creates namespace bench with Services fresh and run, starts the
// canary of run with the plugin, does the same on the Gateway API for
// Service gwapi (setupGatewayAPI), and warms the discovery caches of both
// programs for both endpoints.
func (b *bench) setup(ctx context.Context) error {
	cl := b.clients
	if err := cl.createNamespace(ctx, benchNS); err != nil {
		return err
	}
	for _, s := range []string{freshSvc, runSvc} {
		if err := cl.createService(ctx, benchNS, s); err != nil {
			return err
		}
	}
	var err error
	if b.initial, err = cl.captureRouting(ctx, benchNS, freshSvc); err != nil {
		return err
	}
	for _, ep := range []endpoint{b.direct, b.proxied} {
		if err := b.runQuiet(ctx, b.pluginArgv(ep, "-n", benchNS, "status")); err != nil {
			return err
		}
		if err := b.runQuiet(ctx, b.kubectlArgv(ep, "get", "namespaces")); err != nil {
			return err
		}
	}
	if err := b.runQuiet(ctx, b.pluginArgv(b.direct, "-n", benchNS, "start", runSvc)); err != nil {
		return err
	}
	if b.running, err = cl.captureRouting(ctx, benchNS, runSvc); err != nil {
		return err
	}
	if err := expectWeights(b.running.vs, map[string]int64{"v1": 90, "v2": 10}); err != nil {
		return err
	}
	return b.setupGatewayAPI(ctx)
}

// startCanaries starts the plugin on -canaries Services of the big cluster,
// spread over its namespaces.
func (b *bench) startCanaries(ctx context.Context) error {
	n := b.cfg.canaries
	if n <= 0 {
		return nil
	}
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				idx := i * b.cfg.services / n
				errs <- b.runQuiet(ctx, b.pluginArgv(b.direct, "-n", bigNamespace(idx/b.cfg.perNamespace), "start", bigService(idx), "--weight", "20"))
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// cases are the measured commands, each beside its kubectl equivalent.
func (b *bench) cases() []cmdCase {
	cl := b.clients
	resetFresh := func(ctx context.Context) error { return cl.restore(ctx, b.initial) }
	resetRun := func(ctx context.Context) error { return cl.restore(ctx, b.running) }
	httpRouteGVR, _ := gvrOf(b.routes, httpRoutes)
	resetGateway := func(ctx context.Context) error { return cl.restoreObject(ctx, httpRouteGVR, b.gatewayRunning) }
	plugin := func(args ...string) func(endpoint) [][]string {
		return func(ep endpoint) [][]string { return [][]string{b.pluginArgv(ep, args...)} }
	}
	viaKubectl := func(args ...string) func(endpoint) [][]string {
		return func(ep endpoint) [][]string { return [][]string{b.viaKubectlArgv(ep, args...)} }
	}
	kubectl := func(cmds ...[]string) func(endpoint) [][]string {
		return func(ep endpoint) [][]string {
			out := make([][]string, len(cmds))
			for i, args := range cmds {
				out[i] = b.kubectlArgv(ep, args...)
			}
			return out
		}
	}
	patchVS := func(svc string, route []interface{}) []string {
		return []string{"-n", benchNS, "patch", "virtualservice", svc, "--type", "json", "-p", jsonPatch("replace", "/spec/http/0/route", route)}
	}
	weightsOf := func(svc string, want map[string]int64) func(context.Context) error {
		return func(ctx context.Context) error {
			st, err := cl.captureRouting(ctx, benchNS, svc)
			if err != nil {
				return err
			}
			return expectWeights(st.vs, want)
		}
	}
	backendWeightsOf := func(want map[string]int64) func(context.Context) error {
		return func(ctx context.Context) error {
			route, err := cl.dyn.Resource(httpRouteGVR).Namespace(benchNS).Get(ctx, gatewaySvc, metav1.GetOptions{})
			if err != nil {
				return err
			}
			return expectBackendWeights(route, want)
		}
	}
	gatewayHalf := map[string]int64{gatewayStableSvc: 50, gatewayCanarySvc: 50}
	startDone := func(ctx context.Context) error {
		st, err := cl.captureRouting(ctx, benchNS, freshSvc)
		if err != nil {
			return err
		}
		subsets, _, _ := unstructured.NestedSlice(st.dr.Object, "spec", "subsets")
		if len(subsets) != 2 {
			return fmt.Errorf("destinationrule %s/%s has %d subsets, want v1 and v2", benchNS, freshSvc, len(subsets))
		}
		return expectWeights(st.vs, map[string]int64{"v1": 90, "v2": 10})
	}
	freshRoute, _, _ := routeOf(b.initial.vs)
	runRoute, _, _ := routeOf(b.running.vs)
	v2Subset := map[string]interface{}{"name": "v2", "labels": map[string]interface{}{"version": "v2"}}

	return []cmdCase{{
		name:       "start",
		equivalent: "kubectl patch destinationrule (add subset v2) && kubectl patch virtualservice (route 90/10), --type json",
		reset:      resetFresh,
		plugin:     plugin("-n", benchNS, "start", freshSvc),
		kubectl: kubectl(
			[]string{"-n", benchNS, "patch", "destinationrule", freshSvc, "--type", "json", "-p", jsonPatch("add", "/spec/subsets/-", v2Subset)},
			patchVS(freshSvc, splitRoute(freshRoute, freshSvc, 90, 10)),
		),
		verifyPlugin: startDone, verifyKubectl: startDone,
	}, {
		name:         "weight",
		equivalent:   "kubectl patch virtualservice --type json (route 50/50)",
		reset:        resetRun,
		plugin:       plugin("-n", benchNS, "weight", runSvc, "50"),
		kubectl:      kubectl(patchVS(runSvc, reweigh(runRoute, map[string]int64{"v1": 50, "v2": 50}))),
		verifyPlugin: weightsOf(runSvc, map[string]int64{"v1": 50, "v2": 50}), verifyKubectl: weightsOf(runSvc, map[string]int64{"v1": 50, "v2": 50}),
	}, {
		name:         "weight via kubectl",
		equivalent:   "as weight; the plugin run as `kubectl canary` (kubectl's start and plugin lookup included)",
		reset:        resetRun,
		plugin:       viaKubectl("-n", benchNS, "weight", runSvc, "50"),
		kubectl:      kubectl(patchVS(runSvc, reweigh(runRoute, map[string]int64{"v1": 50, "v2": 50}))),
		verifyPlugin: weightsOf(runSvc, map[string]int64{"v1": 50, "v2": 50}), verifyKubectl: weightsOf(runSvc, map[string]int64{"v1": 50, "v2": 50}),
	}, {
		name:         gatewayCaseName,
		equivalent:   "kubectl patch httproute --type json (backendRefs' weights 50/50)",
		reset:        resetGateway,
		plugin:       plugin("-n", benchNS, "weight", gatewaySvc, "50"),
		kubectl:      kubectl([]string{"-n", benchNS, "patch", "httproute", gatewaySvc, "--type", "json", "-p", backendWeightPatch(b.gatewayRunning, gatewayHalf)}),
		verifyPlugin: backendWeightsOf(gatewayHalf), verifyKubectl: backendWeightsOf(gatewayHalf),
	}, {
		name:         "abort",
		equivalent:   "kubectl patch virtualservice --type json (route 100% v1)",
		reset:        resetRun,
		plugin:       plugin("-n", benchNS, "abort", runSvc),
		kubectl:      kubectl(patchVS(runSvc, reweigh(runRoute, map[string]int64{"v1": 100}))),
		verifyPlugin: weightsOf(runSvc, map[string]int64{"v1": 100}), verifyKubectl: weightsOf(runSvc, map[string]int64{"v1": 100}),
	}, {
		name:         "promote",
		equivalent:   "kubectl patch virtualservice --type json (route 100% v2)",
		reset:        resetRun,
		plugin:       plugin("-n", benchNS, "promote", runSvc),
		kubectl:      kubectl(patchVS(runSvc, reweigh(runRoute, map[string]int64{"v2": 100}))),
		verifyPlugin: weightsOf(runSvc, map[string]int64{"v2": 100}), verifyKubectl: weightsOf(runSvc, map[string]int64{"v2": 100}),
	}, {
		name:       "status SERVICE",
		equivalent: "kubectl -n bench get deployments,virtualservices,destinationrules -o json",
		reset:      resetRun,
		plugin:     plugin("-n", benchNS, "status", runSvc),
		kubectl:    kubectl([]string{"-n", benchNS, "get", "deployments,virtualservices,destinationrules", "-o", "json"}),
	}, {
		name:       "status -A",
		equivalent: "kubectl get deployments,virtualservices,destinationrules -A -o json",
		reset:      resetRun,
		plugin:     plugin("status", "-A"),
		kubectl:    kubectl([]string{"get", "deployments,virtualservices,destinationrules", "-A", "-o", "json"}),
	}}
}

// splitRoute is a one-destination route split between subsets v1 and v2.
func splitRoute(route []interface{}, host string, stable, canary int64) []interface{} {
	canaryDest := map[string]interface{}{"destination": map[string]interface{}{"host": host, "subset": "v2"}}
	return reweigh(append(route, canaryDest), map[string]int64{"v1": stable, "v2": canary})
}

// reweigh keeps the destinations of route whose subset weights names, with
// those weights; a lone destination keeps no weight (it gets 100).
func reweigh(route []interface{}, weights map[string]int64) []interface{} {
	var out []interface{}
	for _, r := range route {
		m := r.(map[string]interface{})
		subset, _, _ := unstructured.NestedString(m, "destination", "subset")
		w, ok := weights[subset]
		if !ok {
			continue
		}
		c := map[string]interface{}{"destination": m["destination"], "weight": w}
		out = append(out, c)
	}
	if len(out) == 1 {
		delete(out[0].(map[string]interface{}), "weight")
	}
	return out
}

func jsonPatch(op, path string, value interface{}) string {
	data, err := json.Marshal([]interface{}{map[string]interface{}{"op": op, "path": path, "value": value}})
	if err != nil {
		panic(err)
	}
	return string(data)
}

func expectWeights(vs *unstructured.Unstructured, want map[string]int64) error {
	_, got, err := routeOf(vs)
	if err != nil {
		return err
	}
	for k, v := range got {
		if v == 0 {
			delete(got, k)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("virtualservice %s/%s routes %v, want %v", vs.GetNamespace(), vs.GetName(), got, want)
	}
	return nil
}

// scaleResult is the commands measured at one cluster size.
type scaleResult struct {
	Name     string          `json:"name"`
	Objects  objectCounts    `json:"objects"`
	Canaries int             `json:"canaries"`
	Commands []commandResult `json:"commands"`
}

func (b *bench) scale(ctx context.Context, name string, canaries int) (scaleResult, error) {
	res := scaleResult{Name: name, Canaries: canaries}
	var err error
	if res.Objects, err = b.clients.count(ctx, b.routes); err != nil {
		return res, err
	}
	for _, c := range b.cases() {
		logf("%s cluster: %s (%d runs each side, %d through the proxy)", name, c.name, b.cfg.runs, b.cfg.bytesRuns)
		r, err := b.measure(ctx, c)
		if err != nil {
			return res, err
		}
		res.Commands = append(res.Commands, r)
	}
	return res, nil
}

func (b *bench) startups(ctx context.Context) ([]startupResult, error) {
	var out []startupResult
	for _, s := range []struct {
		name string
		argv []string
	}{
		{"version", []string{b.cfg.plugin, "version"}},
		{"--help", []string{b.cfg.plugin, "--help"}},
		{"version via kubectl", []string{b.cfg.kubectl, "canary", "version"}},
		{"kubectl alone", []string{b.cfg.kubectl, "version", "--client"}},
	} {
		r, err := b.startup(ctx, s.name, s.argv)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// machineInfo describes where the figures were taken.
type machineInfo struct {
	CPUs           int    `json:"cpus"`
	GOOS           string `json:"goos"`
	GOARCH         string `json:"goarch"`
	GoVersion      string `json:"goVersion"`
	ServerVersion  string `json:"kubeAPIServer"`
	PluginVersion  string `json:"plugin"`
	KubectlVersion string `json:"kubectl"`
	Commit         string `json:"commit"`
	// LoadStart and LoadEnd are /proc/loadavg when the bench began and
	// ended: other work on the machine shows there, and in the timings.
	LoadStart string `json:"loadStart"`
	LoadEnd   string `json:"loadEnd"`
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func (b *bench) machine(ctx context.Context) (machineInfo, error) {
	m := machineInfo{CPUs: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GoVersion: runtime.Version(), LoadStart: loadAverage()}
	v, err := b.clients.core.Discovery().ServerVersion()
	if err != nil {
		return m, err
	}
	m.ServerVersion = v.GitVersion
	out, err := exec.CommandContext(ctx, b.cfg.plugin, "version").Output()
	if err != nil {
		return m, fmt.Errorf("%s version: %w", b.cfg.plugin, err)
	}
	m.PluginVersion = strings.TrimSpace(string(out))
	out, err = exec.CommandContext(ctx, b.cfg.kubectl, "version", "--client").Output()
	if err != nil {
		return m, fmt.Errorf("kubectl version: %w", err)
	}
	m.KubectlVersion, _, _ = strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(out)), "Client Version: "), "\n")
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m, nil
}
