package cmd

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// contextFlags are --contexts, --all-contexts and --skip-unreachable: one
// canary in every cluster of a multi-primary mesh, where each istiod reads
// routing from its own API server only.
type contextFlags struct {
	contexts        []string
	all             bool
	skipUnreachable bool
}

func (c *contextFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringSliceVar(&c.contexts, "contexts", nil, "Kubeconfig contexts of the clusters of a multi-primary mesh: the command acts on every one of them (repeatable or comma-separated).")
	fl.BoolVar(&c.all, "all-contexts", false, "Act on the cluster of every context of the kubeconfig, as --contexts would.")
	fl.BoolVar(&c.skipUnreachable, "skip-unreachable", false, "With --contexts or --all-contexts, go on without the clusters that cannot be reached (and say which), instead of changing none.")
}

func (c *contextFlags) enabled() bool { return len(c.contexts) > 0 || c.all }

func (c *contextFlags) validate() error {
	switch {
	case len(c.contexts) > 0 && c.all:
		return fmt.Errorf("--contexts and --all-contexts both pick the clusters; give one of them")
	case c.skipUnreachable && !c.enabled():
		return fmt.Errorf("--skip-unreachable goes with --contexts or --all-contexts")
	}
	return nil
}

// clusterMember is one cluster a command acts on, by context.
type clusterMember struct {
	context   string
	namespace string
	conn      *canary.Connection
	cluster   *canary.Cluster
}

// members connects to the clusters of the contexts. With --skip-unreachable
// those that do not answer are left out, each named on ErrOut; the
// namespace (-n, else each context's) must be the same in every cluster.
func (g *globalOptions) members(ctx context.Context) ([]clusterMember, error) {
	conns, err := g.connectContexts()
	if err != nil {
		return nil, err
	}
	members := make([]clusterMember, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Go(func() {
			members[i].context, members[i].conn = conn.Context, conn.Connection
			if members[i].namespace, errs[i] = conn.Namespace(); errs[i] != nil {
				return
			}
			if members[i].cluster, errs[i] = conn.Cluster(); errs[i] == nil && g.contextFlags.skipUnreachable {
				errs[i] = members[i].cluster.Reachable(ctx)
			}
		})
	}
	wg.Wait()
	var reached []clusterMember
	var skipped []string
	for i, m := range members {
		switch {
		case errs[i] != nil && g.contextFlags.skipUnreachable:
			skipped = append(skipped, fmt.Sprintf("%s (%v)", m.context, errs[i]))
		case errs[i] != nil:
			return nil, fmt.Errorf("cluster %s: %w; nothing was changed in any cluster (pass --skip-unreachable to go on without it)", m.context, errs[i])
		default:
			reached = append(reached, m)
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(g.ErrOut, "Warning: skipped the clusters that cannot be reached: %s\n", strings.Join(skipped, "; "))
	}
	if len(reached) == 0 {
		return nil, fmt.Errorf("none of the clusters can be reached; nothing was changed")
	}
	for _, m := range reached[1:] {
		if m.namespace != reached[0].namespace {
			return nil, fmt.Errorf("contexts %s and %s default to different namespaces (%s and %s); pass -n with the Service's namespace", reached[0].context, m.context, reached[0].namespace, m.namespace)
		}
	}
	return reached, nil
}

// connectContexts reaches the contexts the flags name, unconnected.
func (g *globalOptions) connectContexts() ([]canary.ContextConnection, error) {
	if g.contextConnections != nil {
		return g.contextConnections(g.contextFlags.contexts, g.contextFlags.all)
	}
	return canary.ConnectContexts(g.configFlags, g.contextFlags.contexts, g.contextFlags.all, &g.istioAPIVersion)
}

// prefixWriter starts every line it writes with a prefix, so that lines
// of several clusters printed together say which cluster they are about.
type prefixWriter struct {
	mu      *sync.Mutex
	out     io.Writer
	prefix  string
	midLine bool
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line == "" {
			continue
		}
		if !w.midLine {
			b.WriteString(w.prefix)
		}
		b.WriteString(line)
		w.midLine = !strings.HasSuffix(line, "\n")
	}
	if _, err := io.WriteString(w.out, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// runOnClusters carries a change into every cluster of --contexts, each
// cluster's report on lines that start with its context.
func (o *changeOptions) runOnClusters(ctx context.Context) error {
	members, err := o.members(ctx)
	if err != nil {
		return err
	}
	o.namespace = members[0].namespace
	var mu sync.Mutex
	fleet := &canary.Fleet{}
	for _, m := range members {
		fleet.Members = append(fleet.Members, o.member(m, &mu))
	}
	results, err := fleet.Change(ctx, o.request())
	if err == nil && o.printer != nil {
		return o.printByCluster(results)
	}
	return err
}

// member is the change in one cluster of --contexts: its engine, and
// observers whose lines start with the cluster's context.
func (o *changeOptions) member(m clusterMember, mu *sync.Mutex) canary.Member {
	g := *o.globalOptions
	prefix := "[" + m.context + "] "
	g.IOStreams.Out = &prefixWriter{mu: mu, out: o.Out, prefix: prefix}
	g.IOStreams.ErrOut = &prefixWriter{mu: mu, out: o.ErrOut, prefix: prefix}
	member := *o
	member.globalOptions = &g
	member.printer = nil // -o prints every cluster's objects at once (printByCluster)
	observers := []canary.Observer{}
	if o.printer == nil {
		observers = append(observers, &reportPrinter{&member})
	}
	if o.wait.enabled {
		observers = append(observers, member.wait.observer(m.cluster, &g, member.waitOut()))
	}
	return canary.Member{Context: m.context, Engine: member.engine(m.cluster), Observers: observers}
}

// printByCluster prints -o yaml|json of a change in several clusters: the
// objects of each cluster, under its context.
func (o *changeOptions) printByCluster(results []canary.MemberResult) error {
	doc := CanaryFleetChange{TypeMeta: typeMeta(KindFleetChange), Metadata: canaryMeta(o.namespace, o.service)}
	for _, r := range results {
		for _, w := range r.Result.Plan.Warnings {
			fmt.Fprintf(o.ErrOut, "[%s] Warning: %s\n", r.Context, w)
		}
		var objects []map[string]any
		for _, oc := range r.Result.Outcomes {
			objects = append(objects, oc.Object.Object)
		}
		doc.Clusters = append(doc.Clusters, ClusterObjects{Context: r.Context, Objects: objects})
	}
	return printDocument(o.printer, doc, o.Out)
}

// runOnClusters prints the canaries of every cluster of --contexts, one
// row per cluster and canary, and flags those that differ between clusters.
func (o *StatusOptions) runOnClusters(ctx context.Context) error {
	members, err := o.members(ctx)
	if err != nil {
		return err
	}
	namespace := members[0].namespace
	if o.allNamespaces {
		namespace = ""
	}
	found := make([][]routing.CanaryStatus, len(members))
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		// Every canary, filtered below: a cluster without the Service's
		// canary is a difference to show, not an error.
		wg.Go(func() { found[i], errs[i] = m.cluster.Statuses(ctx, namespace, "") })
	}
	wg.Wait()
	var statuses []routing.CanaryStatus
	var contexts []string
	for i, m := range members {
		if errs[i] != nil {
			return fmt.Errorf("cluster %s: %w", m.context, errs[i])
		}
		contexts = append(contexts, m.context)
		for _, st := range found[i] {
			if o.service == "" || st.Service == o.service {
				st.Cluster = m.context
				statuses = append(statuses, st)
			}
		}
	}
	if o.service != "" && len(statuses) == 0 {
		return fmt.Errorf("service %s/%s has no canary recorded in any of the clusters %s", members[0].namespace, o.service, strings.Join(contexts, ", "))
	}
	markDifferences(statuses, contexts)
	for _, st := range statuses {
		if len(st.DiffersFromClusters) > 0 && st.Cluster == statuses[firstOf(statuses, st)].Cluster {
			fmt.Fprintf(o.ErrOut, "Warning: canary %s/%s differs between clusters %s and %s; run the same command with --contexts to bring them together\n", st.Namespace, st.Service, st.Cluster, strings.Join(st.DiffersFromClusters, ", "))
		}
	}
	o.namespace = members[0].namespace
	if o.printer != nil {
		return o.printStructured(statuses, nil)
	}
	return o.printTable(o.Out, statuses, true, nil)
}

// markDifferences notes, on each canary, the clusters where the same
// Service's canary has another weight, phase or versions.
func markDifferences(statuses []routing.CanaryStatus, contexts []string) {
	for i := range statuses {
		a := &statuses[i]
		for _, other := range contexts {
			if other == a.Cluster {
				continue
			}
			b := statusIn(statuses, other, a.Namespace, a.Service)
			if b == nil || a.Weight != b.Weight || a.Phase != b.Phase || a.Stable != b.Stable || a.Canary != b.Canary {
				a.DiffersFromClusters = append(a.DiffersFromClusters, other)
			}
		}
	}
}

func statusIn(statuses []routing.CanaryStatus, cluster, namespace, service string) *routing.CanaryStatus {
	for i, st := range statuses {
		if st.Cluster == cluster && st.Namespace == namespace && st.Service == service {
			return &statuses[i]
		}
	}
	return nil
}

// firstOf is the index of the first row of the same canary as st.
func firstOf(statuses []routing.CanaryStatus, st routing.CanaryStatus) int {
	for i, other := range statuses {
		if other.Namespace == st.Namespace && other.Service == st.Service {
			return i
		}
	}
	return 0
}

// routingText is the ROUTING cell, flagging a canary that differs between
// clusters.
func routingText(st routing.CanaryStatus) string {
	text := st.Routing()
	if len(st.DiffersFromClusters) > 0 {
		text = strings.TrimPrefix(strings.TrimPrefix(text, "-")+", differs from "+strings.Join(st.DiffersFromClusters, ","), ", ")
	}
	return text
}

// checkOnClusters checks the Service in every cluster of --contexts: the
// findings of each, with the object named in its cluster.
func (o *CheckOptions) checkOnClusters(ctx context.Context) ([]routing.Finding, error) {
	members, err := o.members(ctx)
	if err != nil {
		return nil, err
	}
	o.namespace = members[0].namespace
	intent := o.intent()
	found := make([][]routing.Finding, len(members))
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() {
			found[i], errs[i] = m.cluster.CheckService(ctx, o.namespace, o.service, intent, o.checkOptions())
		})
	}
	wg.Wait()
	var findings []routing.Finding
	for i, m := range members {
		if errs[i] != nil {
			return nil, fmt.Errorf("cluster %s: %w", m.context, errs[i])
		}
		for _, f := range found[i] {
			f.Object = m.context + ": " + f.Object
			findings = append(findings, f)
		}
	}
	sort.SliceStable(findings, func(i, j int) bool { return findings[i].Severity < findings[j].Severity })
	return findings, nil
}

// analyzeClusters judges the canary in every cluster of --contexts, each
// through its own API server's Prometheus; the verdict is the worst
// cluster's, named.
func (o *AnalyzeOptions) analyzeClusters(ctx context.Context) error {
	members, err := o.members(ctx)
	if err != nil {
		return err
	}
	o.namespace = members[0].namespace
	istioClusters, err := o.istioClusters(ctx, members)
	if err != nil {
		return err
	}
	judged := make([]*analyzed, len(members))
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() { judged[i], errs[i] = o.analyzeIn(ctx, m.conn, istioClusters[i]) })
	}
	wg.Wait()
	worst, worstAt := analysis.Pass, ""
	fleet := CanaryFleetAnalysis{TypeMeta: typeMeta(KindCanaryFleetAnalysis), Metadata: canaryMeta(o.namespace, o.service)}
	var mu sync.Mutex
	for i, m := range members {
		if errs[i] != nil {
			return fmt.Errorf("cluster %s: %w", m.context, errs[i])
		}
		if canary.VerdictRank(judged[i].report.Decision.Verdict) > canary.VerdictRank(worst) {
			worst, worstAt = judged[i].report.Decision.Verdict, m.context
		}
		if o.printer != nil {
			fleet.Clusters = append(fleet.Clusters, ClusterAnalysis{Context: m.context, Analysis: o.document(judged[i])})
			continue
		}
		if err := o.print(&prefixWriter{mu: &mu, out: o.Out, prefix: "[" + m.context + "] "}, judged[i]); err != nil {
			return err
		}
	}
	if o.printer != nil {
		fleet.Verdict, fleet.WorstCluster = worst, worstAt
		if err := printDocument(o.printer, fleet, o.Out); err != nil {
			return err
		}
	}
	for i, m := range members {
		if m.context == worstAt {
			return canary.Verdict(o.namespace, o.service+" in cluster "+m.context, judged[i].report.Decision)
		}
	}
	return nil
}

// istioClusters are the Istio cluster IDs the metrics of each member are
// told apart by in one Prometheus of the whole mesh (--prometheus-url):
// those of the clusters' istiods, which must differ. Empty without
// --prometheus-url: each cluster's own Prometheus holds its metrics only.
func (f *prometheusFlags) istioClusters(ctx context.Context, members []clusterMember) ([]string, error) {
	ids := make([]string, len(members))
	if f.prometheusURL == "" {
		return ids, nil
	}
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() { ids[i], errs[i] = m.cluster.IstioClusterID(ctx, istioNamespace) })
	}
	wg.Wait()
	for i, m := range members {
		if errs[i] != nil {
			return nil, fmt.Errorf("cluster %s: cannot read the Istio cluster ID that tells its requests apart in Prometheus at %s: %w; grant list on pods in %s, or leave out --prometheus-url to reach each cluster's Prometheus through its API server", m.context, f.prometheusURL, errs[i], istioNamespace)
		}
		for j := range i {
			if ids[j] == ids[i] {
				return nil, fmt.Errorf("clusters %s and %s have the same Istio cluster ID %q, so Prometheus at %s cannot tell their requests apart (label %s); give every cluster its own ID (Istio's values.global.multiCluster.clusterName), or leave out --prometheus-url to reach each cluster's Prometheus through its API server", members[j].context, m.context, ids[i], f.prometheusURL, analysis.ClusterLabel)
			}
		}
	}
	return ids, nil
}

// istioNamespace is where istiod runs, as Istio installs it.
const istioNamespace = "istio-system"
