package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

type report struct {
	Started     string          `json:"started"`
	Seconds     float64         `json:"seconds"`
	Runs        int             `json:"runs"`
	BytesRuns   int             `json:"bytesRuns"`
	StartupRuns int             `json:"startupRuns"`
	Machine     machineInfo     `json:"machine"`
	Size        sizeInfo        `json:"size"`
	GoBench     []goBenchmark   `json:"goBenchmarks"`
	Startup     []startupResult `json:"startup"`
	Population  *population     `json:"population,omitempty"`
	Scales      []scaleResult   `json:"scales"`
	Clusters    *clustersResult `json:"clusters,omitempty"`
	// GatewayAPIRoutes are the Gateway API route kinds the cluster serves
	// (httproutes, ...), each of which weight (Gateway API) may list once.
	GatewayAPIRoutes []string `json:"gatewayAPIRoutes"`
	Targets          []target `json:"targets"`
}

// target is one target of issues 8, 15 and 17 and whether this run met it.
type target struct {
	Target string `json:"target"`
	Met    bool   `json:"met"`
	Detail string `json:"detail"`
}

// Bounds of issue 8.
const (
	startupLimitMS    = 30
	statusAllLimitMS  = 2000
	statusAllLimitKiB = 200 * 1024
	planLimitNs       = 5e6
	pageSize          = 500 // client-go's pager, which the plugin lists with
)

func (r *report) scale(name string) *scaleResult {
	for i := range r.Scales {
		if r.Scales[i].Name == name {
			return &r.Scales[i]
		}
	}
	return nil
}

func (s *scaleResult) command(name string) *commandResult {
	for i := range s.Commands {
		if s.Commands[i].Name == name {
			return &s.Commands[i]
		}
	}
	return nil
}

func evaluate(r *report) []target {
	var out []target
	for _, name := range []string{"weight", "abort"} {
		for _, sc := range r.Scales {
			c := sc.command(name)
			if c == nil {
				continue
			}
			where := fmt.Sprintf("%s (%s cluster)", name, sc.Name)
			out = append(out, requestBudget(where, c.Plugin))
			out = append(out, target{
				Target: where + ": no discovery request with a warm discovery cache",
				Met:    c.Plugin.Discovery == 0,
				Detail: fmt.Sprintf("%d discovery requests", c.Plugin.Discovery),
			})
			out = append(out, target{
				Target: where + ": wall time at most 1.0x kubectl patch",
				Met:    c.TimeRatio <= 1.0,
				Detail: fmt.Sprintf("%.1f ms vs %.1f ms: %.2fx", c.Plugin.MedianMS, c.Kubectl.MedianMS, c.TimeRatio),
			})
		}
	}
	for _, sc := range r.Scales {
		c := sc.command(gatewayCaseName)
		if c == nil {
			continue
		}
		where := fmt.Sprintf("%s (%s cluster)", gatewayCaseName, sc.Name)
		out = append(out, gatewayWeightBudget(where, c.Plugin, r.GatewayAPIRoutes, httpRoutes+" "+benchNS+"/"+gatewaySvc))
		out = append(out, target{
			Target: where + ": no discovery request with a warm discovery cache",
			Met:    c.Plugin.Discovery == 0,
			Detail: fmt.Sprintf("%d discovery requests", c.Plugin.Discovery),
		})
	}
	for _, s := range r.Startup {
		if s.Name != "version" && s.Name != "--help" {
			continue
		}
		n := total(s.Requests)
		out = append(out, target{
			Target: fmt.Sprintf("kubectl-canary %s starts in under %d ms, no request", s.Name, startupLimitMS),
			Met:    s.MedianMS < startupLimitMS && n == 0,
			Detail: fmt.Sprintf("%.1f ms (median of %d; fastest %.1f ms), %d requests in all runs", s.MedianMS, len(s.RunsMS), minOf(s.RunsMS), n),
		})
	}
	if sc := r.scale("big"); sc == nil {
		out = append(out, target{Target: "status -A on the big cluster", Detail: "not measured (-skip-big)"})
	} else if c := sc.command("status -A"); c != nil {
		out = append(out, statusListTarget(r, sc, c))
		out = append(out, target{
			Target: fmt.Sprintf("status -A (big cluster): under %d ms", statusAllLimitMS),
			Met:    c.Plugin.MedianMS < statusAllLimitMS,
			Detail: fmt.Sprintf("%.0f ms (median; kubectl get -A -o json %.0f ms)", c.Plugin.MedianMS, c.Kubectl.MedianMS),
		})
		out = append(out, target{
			Target: "status -A (big cluster): under 200 MB peak memory",
			Met:    c.Plugin.PeakRSS < statusAllLimitKiB,
			Detail: fmt.Sprintf("peak RSS %.1f MiB (kubectl get -A -o json %.1f MiB)", mib(c.Plugin.PeakRSS*1024), mib(c.Kubectl.PeakRSS*1024)),
		})
	}
	out = append(out, clustersTarget(r.Clusters))
	out = append(out, target{
		Target: "binary size reported",
		Met:    r.Size.PluginBytes > 0,
		Detail: fmt.Sprintf("%.1f MiB (kubectl %.1f MiB), %d modules", mib(r.Size.PluginBytes), mib(r.Size.KubectlBytes), r.Size.Modules),
	})
	if len(r.GoBench) == 0 {
		out = append(out, target{Target: "routing core plans a 500-route change in under 5 ms", Detail: "not measured (-skip-go-bench)"})
	} else {
		met := true
		var parts []string
		for _, b := range r.GoBench {
			met = met && b.NsPerOp < planLimitNs
			parts = append(parts, fmt.Sprintf("%s %.2f ms (median of %d, %.2f to %.2f)", strings.TrimPrefix(b.Name, "Benchmark"), b.NsPerOp/1e6, b.Runs, b.MinNsPerOp/1e6, b.MaxNsPerOp/1e6))
		}
		out = append(out, target{Target: "routing core plans a 500-route, 50-subset change in under 5 ms", Met: met, Detail: strings.Join(parts, ", ")})
	}
	return out
}

// requestBudget: at most one read per object kind and one write per object
// changed, plus, where two objects or more are written, one permission
// review per write asked before the first (so a refusal writes nothing; the
// answers are no longer kept on disk). Anything else (dry runs, discovery,
// reviews before a lone write) is outside the budget.
func requestBudget(where string, s sideResult) target {
	reads := map[string]int{}
	var overRead, outside []string
	for key, n := range s.Requests {
		verb, rest, _ := strings.Cut(key, " ")
		if strings.HasPrefix(rest, "/") || !isRead(verb) {
			continue
		}
		resource, _, _ := strings.Cut(rest, " ")
		reads[resource] += n
	}
	for res, n := range reads {
		if n > 1 {
			overRead = append(overRead, fmt.Sprintf("%s read %d times", res, n))
		}
	}
	writes := 0
	var overWrite []string
	for obj, n := range s.ObjectWrites {
		writes += n
		if n > 1 {
			overWrite = append(overWrite, fmt.Sprintf("%s written %d times", obj, n))
		}
	}
	for key, n := range s.Requests {
		verb, rest, _ := strings.Cut(key, " ")
		if (isRead(verb) && !strings.HasPrefix(rest, "/")) || (isWrite(verb) && !strings.Contains(rest, "dry run") && !strings.HasSuffix(strings.Fields(rest)[0], "reviews")) {
			continue
		}
		if key == "create selfsubjectaccessreviews" && len(s.ObjectWrites) > 1 && n <= len(s.ObjectWrites) {
			continue
		}
		outside = append(outside, fmt.Sprintf("%s %d", key, n))
	}
	sort.Strings(overRead)
	sort.Strings(overWrite)
	sort.Strings(outside)
	detail := fmt.Sprintf("%d requests: %d reads of %d kinds, %d writes to %d objects", s.RequestTotal, sumValues(reads), len(reads), writes, len(s.ObjectWrites))
	for _, l := range [][]string{overRead, overWrite} {
		if len(l) > 0 {
			detail += "; " + strings.Join(l, ", ")
		}
	}
	if len(outside) > 0 {
		detail += "; outside the budget: " + strings.Join(outside, ", ")
	}
	return target{
		Target: where + ": at most one read per object kind, one write per object changed",
		Met:    len(overRead) == 0 && len(overWrite) == 0 && len(outside) == 0,
		Detail: detail,
	}
}

// gatewayWeightBudget is issue 15's goal for weight on a canary that runs
// on an HTTPRoute: one read per kind and one write per changed object.
// The reads are the Service (get), its Deployments, the VirtualServices
// and DestinationRules (a VirtualService beside the route would mix the
// two APIs), each Gateway API route kind the cluster serves and the
// namespace's Services (the per-version Services), all lists in the
// namespace; the one write is the update of the route; after it the route
// may be read once more, for the status its controller writes (the plugin
// reads it back only where the route had a status before the write, and
// nothing writes one in the bench's cluster). Anything else, or any of
// these more often, misses the goal: discovery, dry runs, permission
// reviews, lists in all namespaces, a second write. A read the goal allows
// but the run did not make is named in the detail, and does not miss it.
func gatewayWeightBudget(where string, s sideResult, routeKinds []string, route string) target {
	resource, _, _ := strings.Cut(route, " ")
	reads := map[string]int{"get services": 1, "list deployments": 1, "list virtualservices": 1, "list destinationrules": 1, "list services": 1}
	for _, k := range routeKinds {
		reads["list "+k] = 1
	}
	statusKey, writeKey := "get "+resource, "update "+resource
	allowed := map[string]int{statusKey: 1, writeKey: 1}
	for k, n := range reads {
		allowed[k] = n
	}

	var outside, over, notMade []string
	readsMade := 0
	for key, n := range s.Requests {
		switch limit := allowed[key]; {
		case limit == 0:
			outside = append(outside, fmt.Sprintf("%s %d", key, n))
		case n > limit:
			over = append(over, fmt.Sprintf("%s %d times (goal %d)", key, n, limit))
		}
		if reads[key] > 0 {
			readsMade += n
		}
	}
	for key := range reads {
		if s.Requests[key] == 0 {
			notMade = append(notMade, key)
		}
	}
	writes := 0
	for obj, n := range s.ObjectWrites {
		writes += n
		if obj != route {
			outside = append(outside, "a write to "+obj)
		}
	}
	wrote := s.ObjectWrites[route] == 1 && s.Requests[writeKey] == 1
	sort.Strings(outside)
	sort.Strings(over)
	sort.Strings(notMade)

	detail := fmt.Sprintf("%d requests: %d reads (goal %d, with %d route kinds served: %s), %d writes (goal: 1 update of %s), %d reads of the route's status after it (goal at most 1)",
		s.RequestTotal, readsMade, len(reads), len(routeKinds), strings.Join(routeKinds, ", "), writes, route, s.Requests[statusKey])
	if !wrote {
		detail += "; the route was not updated exactly once"
	}
	if len(over) > 0 {
		detail += "; over the goal: " + strings.Join(over, ", ")
	}
	if len(outside) > 0 {
		detail += "; outside the goal: " + strings.Join(outside, ", ")
	}
	if len(notMade) > 0 {
		detail += "; allowed but not made: " + strings.Join(notMade, ", ")
	}
	return target{
		Target: where + ": one read per kind (the Service, Deployments, VirtualServices, DestinationRules, each route kind served, Services), one write (the HTTPRoute)",
		Met:    wrote && len(outside) == 0 && len(over) == 0,
		Detail: detail,
	}
}

// statusListTarget: status -A lists each kind page by page and makes no
// request per Service or namespace.
func statusListTarget(r *report, sc *scaleResult, c *commandResult) target {
	o := sc.Objects
	pages := func(n int) int { return max(1, (n+pageSize-1)/pageSize) }
	want := pages(o.Services) + pages(o.Deployments) + pages(o.VirtualServices) + pages(o.DestinationRules)
	routes := 0
	for _, n := range o.Routes {
		want += pages(n)
		routes += n
	}
	lists, other := 0, 0
	for key, n := range c.Plugin.Requests {
		if strings.HasPrefix(key, "list ") {
			lists += n
		} else {
			other += n
		}
	}
	detail := fmt.Sprintf("%d LIST requests (pages of %d for %d Services, %d Deployments, %d VirtualServices, %d DestinationRules, %d Gateway API routes of %d kinds: %d expected), %d other requests",
		lists, pageSize, o.Services, o.Deployments, o.VirtualServices, o.DestinationRules, routes, len(o.Routes), want, other)
	if small := r.scale("small"); small != nil {
		if sc := small.command("status -A"); sc != nil {
			detail += fmt.Sprintf("; small cluster: %d requests", sc.Plugin.RequestTotal)
		}
	}
	return target{
		Target: "status -A (big cluster): LIST requests by page only, none per Service",
		Met:    lists <= want && other == 0,
		Detail: detail,
	}
}

func minOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func sumValues(m map[string]int) int { return total(m) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }
func kib(b int64) float64 { return float64(b) / (1 << 10) }

func printReport(w io.Writer, r *report) {
	m := r.Machine
	fmt.Fprintf(w, "kubectl canary benchmark, %s: %d CPUs, %s/%s, kube-apiserver %s, kubectl %s\n", r.Started, m.CPUs, m.GOOS, m.GOARCH, m.ServerVersion, m.KubectlVersion)
	fmt.Fprintf(w, "plugin: %s\n", m.PluginVersion)
	fmt.Fprintf(w, "load average (1, 5, 15 min): %s at the start, %s at the end\n", m.LoadStart, m.LoadEnd)
	fmt.Fprintf(w, "wall: median of %d runs per side, each a fresh process with a warm --cache-dir (discovery), interleaved with kubectl;\n", r.Runs)
	fmt.Fprintf(w, "requests: counted in the API server's audit log; KiB: response bodies as received, through a counting proxy (median of %d runs)\n", r.BytesRuns)

	fmt.Fprintf(w, "\nstart-up (%d runs)                     median ms   min ms   peak MiB  requests\n", r.StartupRuns)
	labels := map[string]string{
		"version":             "kubectl-canary version",
		"--help":              "kubectl-canary --help",
		"version via kubectl": "kubectl canary version (through kubectl)",
		"kubectl alone":       "kubectl version --client (kubectl alone)",
	}
	for _, s := range r.Startup {
		fmt.Fprintf(w, "  %-40s %8.1f %8.1f %10.1f %9d\n", labels[s.Name], s.MedianMS, minOf(s.RunsMS), mib(s.PeakRSS*1024), total(s.Requests))
	}
	sz := r.Size
	fmt.Fprintf(w, "\nbinary: kubectl-canary %.1f MiB (make build: -trimpath -s -w), kubectl %.1f MiB; %d modules linked\n", mib(sz.PluginBytes), mib(sz.KubectlBytes), sz.Modules)
	if len(sz.ByModule) > 0 {
		var parts []string
		for i, ms := range sz.ByModule {
			if i == 10 {
				break
			}
			parts = append(parts, fmt.Sprintf("%s %.1f", ms.Module, mib(ms.Bytes)))
		}
		fmt.Fprintf(w, "  MiB of code and read-only data by module (symbols of an unstripped build, %.1f MiB in all): %s\n", mib(sz.SymbolBytes), strings.Join(parts, ", "))
	}

	if len(r.GoBench) > 0 {
		fmt.Fprintf(w, "\nrouting core: go test ./pkg/routing -run '^$' -bench . -benchmem -count %d (median; fastest and slowest)\n", r.GoBench[0].Runs)
		for _, b := range r.GoBench {
			fmt.Fprintf(w, "  %-40s %10.2f ms/op (%.2f to %.2f) %10.2f MB/op %10d allocs/op\n", b.Name, b.NsPerOp/1e6, b.MinNsPerOp/1e6, b.MaxNsPerOp/1e6, float64(b.BytesPerOp)/1e6, b.AllocsPerOp)
		}
	}

	for _, sc := range r.Scales {
		o := sc.Objects
		fmt.Fprintf(w, "\n%s cluster: %d namespaces, %d Services, %d Deployments, %d VirtualServices, %d DestinationRules, %d Gateway API routes (%d kinds served); %d canaries running\n",
			sc.Name, o.Namespaces, o.Services, o.Deployments, o.VirtualServices, o.DestinationRules, total(o.Routes), len(o.Routes), sc.Canaries)
		if sc.Name == "big" && r.Population != nil {
			p := r.Population
			fmt.Fprintf(w, "  (created in %.1f s: %d requests, %.0f/s, %d concurrent, protobuf for core objects)\n", p.Seconds, p.Requests, float64(p.Requests)/p.Seconds, p.Workers)
		}
		fmt.Fprintf(w, "  %-20s %26s   %24s   %28s   %s\n", "", "wall ms (median)", "requests", "KiB received", "peak MiB")
		fmt.Fprintf(w, "  %-20s %8s %8s %8s   %7s %7s %8s   %9s %9s %8s   %8s %8s\n", "command", "plugin", "kubectl", "ratio", "plugin", "kubectl", "ratio", "plugin", "kubectl", "ratio", "plugin", "kubectl")
		for _, c := range sc.Commands {
			fmt.Fprintf(w, "  %-20s %8.1f %8.1f %7.2fx   %7d %7d %7.2fx   %9.1f %9.1f %7.2fx   %8.1f %8.1f\n",
				c.Name, c.Plugin.MedianMS, c.Kubectl.MedianMS, c.TimeRatio,
				c.Plugin.RequestTotal, c.Kubectl.RequestTotal, c.RequestRatio,
				kib(c.Plugin.Bytes), kib(c.Kubectl.Bytes), c.BytesRatio,
				mib(c.Plugin.PeakRSS*1024), mib(c.Kubectl.PeakRSS*1024))
		}
		fmt.Fprintf(w, "  requests by verb and resource in one run (the API server's time on them, median):\n")
		for _, c := range sc.Commands {
			fmt.Fprintf(w, "    %-20s plugin   %.1f ms: %s\n", c.Name, c.Plugin.ServerTotalMS, formatCountsMS(c.Plugin.Requests, c.Plugin.ServerMS))
			fmt.Fprintf(w, "    %-20s kubectl  %.1f ms: %s\n", "", c.Kubectl.ServerTotalMS, formatCountsMS(c.Kubectl.Requests, c.Kubectl.ServerMS))
			for _, n := range append(append([]string{}, c.Plugin.Notes...), c.Kubectl.Notes...) {
				fmt.Fprintf(w, "    %-20s note     %s\n", "", n)
			}
		}
	}
	if len(r.Scales) > 0 {
		fmt.Fprintf(w, "\nkubectl equivalents (the plugin runs as kubectl-canary, except \"weight via kubectl\"):\n")
		for _, c := range r.Scales[0].Commands {
			fmt.Fprintf(w, "  %-20s %s\n", c.Name, c.Equivalent)
		}
	}

	if c := r.Clusters; c != nil {
		fmt.Fprintf(w, "\nweight with --contexts (median of %d runs, alternating): 1 cluster %.1f ms, 3 clusters %.1f ms (%.2fx)\n", len(c.OneRuns), c.OneMS, c.ThreeMS, c.Ratio)
	}
	fmt.Fprintf(w, "\ntargets of issues 8, 15 and 17:\n")
	for _, t := range r.Targets {
		mark := "met    "
		switch {
		case strings.HasPrefix(t.Detail, "not measured"):
			mark = "skipped"
		case !t.Met:
			mark = "NOT MET"
		}
		fmt.Fprintf(w, "  [%s] %s: %s\n", mark, t.Target, t.Detail)
	}
	fmt.Fprintf(w, "\nbench took %.0f s\n", r.Seconds)
}

func writeJSON(dir string, r *report, t0 time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	name := filepath.Join(dir, "bench-"+t0.UTC().Format("20060102-150405")+".json")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), data, 0o644); err != nil {
		return err
	}
	logf("figures written to %s and %s", name, filepath.Join(dir, "latest.json"))
	return nil
}

// clustersTarget is issue 17's: weight over three clusters within 1.3x of
// one, reads and writes going to the clusters at once.
func clustersTarget(c *clustersResult) target {
	t := target{Target: fmt.Sprintf("weight over 3 clusters within %.1fx of 1 cluster", clustersLimit)}
	if c == nil {
		t.Detail = "not measured (-skip-clusters)"
		return t
	}
	t.Met = c.Ratio <= clustersLimit
	t.Detail = fmt.Sprintf("%.1f ms vs %.1f ms: %.2fx", c.ThreeMS, c.OneMS, c.Ratio)
	return t
}
