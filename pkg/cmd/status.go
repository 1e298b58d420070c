package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// StatusOptions holds the flags of `kubectl canary status`.
type StatusOptions struct {
	*globalOptions
	service       string
	namespace     string
	allNamespaces bool
	output        *outputFlags
	printer       printers.ResourcePrinter
	watch         bool
	// observed adds the share of requests each canary really answered,
	// read from Prometheus over window.
	observed bool
	window   time.Duration
	prometheusFlags
	manifests manifestFlags
	now       func() time.Time
}

func newCmdStatus(g *globalOptions) *cobra.Command {
	o := &StatusOptions{globalOptions: g, now: time.Now}
	cmd := &cobra.Command{
		Use:   "status [SERVICE]",
		Short: "Show canaries: stable and canary versions, weight, phase and readiness",
		Long: templates.LongDesc(`
			Show the canaries recorded on the routing objects of a namespace (or of
			every namespace with -A): the stable and canary versions, the canary's
			weight, the phase, and the available/desired replicas of each version.
			The state is read from the cluster alone, so everyone sees the same.`),
		Example: templates.Examples(`
			# Every canary in the current namespace
			kubectl canary status

			# One Service, as JSON for scripts
			kubectl canary status reviews -o json

			# Every canary in the cluster, refreshed as it changes
			kubectl canary status -A --watch

			# With the share of requests each canary really answered
			kubectl canary status --observed --prometheus-url http://127.0.0.1:9090

			# The canaries the manifests in Git record
			kubectl canary status -f deploy/ -R`),
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "Show canaries in every namespace.")
	o.output = addOutputFlags(cmd, "a table", true)
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", false, "Keep watching and print a row again whenever a canary changes.")
	addDeprecatedIntervalFlag(cmd)
	cmd.Flags().BoolVar(&o.observed, "observed", false, "Add the share of the Service's requests each running canary really answered over --window, from Prometheus, and whether it matches the weight.")
	cmd.Flags().DurationVar(&o.window, "window", 5*time.Minute, "With --observed: the traffic to measure, the last WINDOW of it (after the routing last changed).")
	o.prometheusFlags.addFlags(cmd.Flags())
	o.manifests.addFlags(cmd)
	return cmd
}

// intervalDeprecation is the note for scripts that still pass --interval.
const intervalDeprecation = "status --watch follows the API server's watch events as they happen, so there is no interval to set; leave the flag out"

// addDeprecatedIntervalFlag keeps --interval, once how often --watch read
// the cluster, so existing scripts still run. It is hidden and Complete
// warns about it rather than cobra's MarkDeprecated, whose note goes to
// standard output and would break `status -o json`.
func addDeprecatedIntervalFlag(cmd *cobra.Command) {
	cmd.Flags().Duration("interval", 2*time.Second, "Deprecated: "+intervalDeprecation+".")
	_ = cmd.Flags().MarkHidden("interval")
}

// Complete reads the arguments and the namespace.
func (o *StatusOptions) Complete(cmd *cobra.Command, args []string) error {
	if cmd.Flags().Changed("interval") {
		fmt.Fprintf(o.ErrOut, "Flag --interval has been deprecated, %s\n", intervalDeprecation)
	}
	if len(args) == 1 {
		o.service = args[0]
	}
	if o.globalOptions.now != nil {
		o.now = o.globalOptions.now
	}
	var err error
	if o.printer, err = o.output.printer(); err != nil {
		return err
	}
	o.namespace, err = o.conn.Namespace()
	return err
}

// Validate rejects flag combinations that cannot be honoured.
func (o *StatusOptions) Validate() error {
	if o.service != "" && o.allNamespaces {
		return fmt.Errorf("a SERVICE and --all-namespaces cannot go together; pick the namespace with -n instead")
	}
	if o.watch && o.printer != nil {
		return fmt.Errorf("--watch prints a table; leave out --output, or give -o wide")
	}
	if o.observed && o.watch {
		return fmt.Errorf("--observed reads Prometheus once; leave out --watch, or run kubectl canary analyze for one Service")
	}
	if err := o.contextFlags.validate(); err != nil {
		return err
	}
	if o.contextFlags.enabled() && (o.watch || o.observed || o.manifests.enabled()) {
		return fmt.Errorf("--contexts shows every cluster's canaries once; leave out --watch, --observed and -f")
	}
	if o.manifests.enabled() && (o.watch || o.observed) {
		return fmt.Errorf("--watch and --observed follow the cluster, and -f reads files; leave out one or the other")
	}
	if o.observed && o.window <= 0 {
		return fmt.Errorf("--window %s is not a duration of traffic; give one of a few minutes, for example --window 5m", o.window)
	}
	return o.manifests.validate()
}

// Run prints the status once, or keeps printing changes with --watch.
func (o *StatusOptions) Run(ctx context.Context) error {
	if o.manifests.enabled() {
		return o.runOnFiles(ctx)
	}
	if o.contextFlags.enabled() {
		return o.runOnClusters(ctx)
	}
	cluster, err := o.conn.Cluster()
	if err != nil {
		return err
	}
	namespace := o.namespace
	if o.allNamespaces {
		namespace = ""
	}
	if o.watch {
		return cluster.WatchStatuses(ctx, namespace, o.service, o.printChanges())
	}
	statuses, err := cluster.Statuses(ctx, namespace, o.service)
	if err != nil {
		return err
	}
	observed, err := o.observe(ctx, cluster, statuses)
	if err != nil {
		return err
	}
	if o.printer != nil {
		return o.printStructured(statuses, observed)
	}
	return o.printTable(o.Out, statuses, true, observed)
}

// runOnFiles prints the canaries the manifest files of -f record.
func (o *StatusOptions) runOnFiles(ctx context.Context) error {
	files, err := o.manifests.store(o.globalOptions, o.namespace)
	if err != nil {
		return err
	}
	namespace := o.namespace
	if o.allNamespaces {
		namespace = ""
	}
	statuses, err := files.Statuses(ctx, namespace, o.service)
	if err != nil {
		return err
	}
	if o.printer != nil {
		return o.printStructured(statuses, nil)
	}
	return o.printTable(o.Out, statuses, true, nil)
}

// observe reads, with --observed, the traffic split of every running
// canary, by namespace/service.
func (o *StatusOptions) observe(ctx context.Context, cluster *canary.Cluster, statuses []routing.CanaryStatus) (map[string]*analysis.SplitReport, error) {
	if !o.observed {
		return nil, nil
	}
	prom, err := o.prometheus(o.conn, o.prometheusTimeout)
	if err != nil {
		return nil, err
	}
	out := map[string]*analysis.SplitReport{}
	for _, st := range statuses {
		if st.Phase != routing.PhaseProgressing || st.Canary == "" {
			continue
		}
		report, err := prom.Observed(ctx, cluster, st, o.clusterDomain, o.window, o.now())
		var unqueried *analysis.PrometheusError
		if errors.As(err, &unqueried) {
			// The table is still worth printing: the shares are unknown.
			fmt.Fprintf(o.ErrOut, "Warning: %v; the OBSERVED shares are unknown\n", err)
			return unknownShares(statuses, err), nil
		}
		if err != nil {
			return nil, err
		}
		out[st.Namespace+"/"+st.Service] = &report
	}
	return out, nil
}

// unknownShares is the split of every running canary when Prometheus
// cannot be queried: unknown, saying why.
func unknownShares(statuses []routing.CanaryStatus, err error) map[string]*analysis.SplitReport {
	out := map[string]*analysis.SplitReport{}
	for _, st := range statuses {
		if st.Phase == routing.PhaseProgressing && st.Canary != "" {
			out[st.Namespace+"/"+st.Service] = &analysis.SplitReport{Verdict: analysis.SplitUnknown, Reason: err.Error()}
		}
	}
	return out
}

// observedText is the OBSERVED cell: the canary's share of the requests,
// and the verdict unless it matches the weight.
func observedText(report *analysis.SplitReport) string {
	switch {
	case report == nil:
		return "-"
	case report.CanaryShare == nil:
		return string(report.Verdict)
	case report.Verdict == analysis.SplitMatches:
		return fmt.Sprintf("%.1f%%", *report.CanaryShare*100)
	}
	return fmt.Sprintf("%.1f%% (%s)", *report.CanaryShare*100, report.Verdict)
}

// printChanges is what --watch does with the canaries each time they may
// have changed: print the header the first time, then the rows of the
// canaries that differ from what was last printed for them.
func (o *StatusOptions) printChanges() func([]routing.CanaryStatus) error {
	shown := map[string]string{}
	header := true
	// One table for the whole watch, so that later rows line up with the
	// header printed first.
	table := &alignedTable{out: o.Out, header: o.output.headers()}
	return func(statuses []routing.CanaryStatus) error {
		var changed []routing.CanaryStatus
		for _, st := range statuses {
			key := st.Namespace + "/" + st.Service
			fingerprint := fmt.Sprintf("%s %s %s %s %s %v %v %s", st.Stable, st.Canary, weightText(st), driftText(st), st.Phase, st.StableReady, st.CanaryReady, st.Routing())
			if shown[key] != fingerprint {
				shown[key] = fingerprint
				changed = append(changed, st)
			}
		}
		if len(changed) == 0 && !header {
			return nil
		}
		err := o.printRows(table, changed, header, nil)
		header = false
		return err
	}
}

// observedStatus is a canary's status with, under --observed, its split.
type observedStatus struct {
	routing.CanaryStatus
	Observed *analysis.SplitReport `json:"observed,omitempty"`
}

// printStructured prints the canaries with -o: one Service's canary as a
// CanaryStatus, and a List of them otherwise (with --contexts too, one
// per cluster), as kubectl get prints one object or several.
func (o *StatusOptions) printStructured(statuses []routing.CanaryStatus, observed map[string]*analysis.SplitReport) error {
	items := make([]CanaryStatus, len(statuses))
	for i, st := range statuses {
		items[i] = CanaryStatus{TypeMeta: typeMeta(KindCanaryStatus), Metadata: canaryMeta(st.Namespace, st.Service), CanaryStatus: st, Observed: observed[st.Namespace+"/"+st.Service]}
	}
	if o.service != "" && len(items) == 1 && !o.contextFlags.enabled() {
		return printDocument(o.printer, items[0], o.Out)
	}
	return printList(o.printer, items, o.Out)
}

func (o *StatusOptions) printTable(out io.Writer, statuses []routing.CanaryStatus, header bool, observed map[string]*analysis.SplitReport) error {
	return o.printRows(printers.GetNewTabWriter(out), statuses, header, observed)
}

// tableWriter is where the rows of the table go: a tabwriter, or under
// --watch an alignedTable.
type tableWriter interface {
	io.Writer
	Flush() error
}

func (o *StatusOptions) printRows(w tableWriter, statuses []routing.CanaryStatus, header bool, observed map[string]*analysis.SplitReport) error {
	if len(statuses) == 0 && header && !o.watch {
		where := "namespace " + o.namespace
		if o.allNamespaces {
			where = "any namespace"
		}
		_, err := fmt.Fprintf(o.ErrOut, "No canaries found in %s.\n", where)
		return err
	}
	wide := o.output.wide()
	if header && o.output.headers() {
		if o.contextFlags.enabled() {
			fmt.Fprint(w, "CLUSTER\t")
		}
		if o.allNamespaces {
			fmt.Fprint(w, "NAMESPACE\t")
		}
		fmt.Fprint(w, "SERVICE\tSTABLE\tCANARY\tWEIGHT\t")
		if o.observed {
			fmt.Fprint(w, "OBSERVED\t")
		}
		fmt.Fprint(w, "DRIFT\tPHASE\tSTABLE READY\tCANARY READY\tAGE\tROUTING")
		if wide {
			fmt.Fprint(w, "\tVERSION LABEL\tROUTING API\tOBJECTS")
		}
		fmt.Fprintln(w)
	}
	for _, st := range statuses {
		if o.contextFlags.enabled() {
			fmt.Fprintf(w, "%s\t", st.Cluster)
		}
		if o.allNamespaces {
			fmt.Fprintf(w, "%s\t", st.Namespace)
		}
		canary, canaryReady := "-", "-"
		if st.Canary != "" {
			canary = st.Canary
			canaryReady = "?"
			if st.CanaryReady != nil {
				canaryReady = st.CanaryReady.String()
			}
		}
		weight := weightText(st)
		age := "<unknown>"
		if !st.StartedAt.IsZero() {
			age = duration.HumanDuration(o.now().Sub(st.StartedAt))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t", st.Service, st.Stable, canary, weight)
		if o.observed {
			fmt.Fprintf(w, "%s\t", observedText(observed[st.Namespace+"/"+st.Service]))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s", driftText(st), st.Phase, st.StableReady, canaryReady, age, routingText(st))
		if wide {
			fmt.Fprintf(w, "\t%s\t%s\t%s", st.VersionLabel, orDash(string(st.RoutingAPI)), orDash(strings.Join(st.Objects, ",")))
		}
		fmt.Fprintln(w)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if !o.watch {
		o.warnDrift(statuses)
	}
	return nil
}

// weightText is the WEIGHT cell: the canary's live share, and the
// recorded one beside it where they differ ("?" when the live routes do
// not tell one share).
func weightText(st routing.CanaryStatus) string {
	if st.Phase != routing.PhaseProgressing {
		return "-"
	}
	if onlyDestinationRules(st.Objects) {
		// A DestinationRule does not record the weight (weight writes
		// none): with no VirtualService left to record it, it is unknown.
		return "?"
	}
	recorded := strconv.Itoa(st.Weight) + "%"
	switch {
	case st.LiveWeight != nil && *st.LiveWeight == st.Weight:
		return recorded
	case st.LiveWeight != nil:
		return fmt.Sprintf("%d%% (recorded %s)", *st.LiveWeight, recorded)
	case len(st.Drift) > 0:
		return "? (recorded " + recorded + ")"
	}
	return recorded
}

func onlyDestinationRules(objects []string) bool {
	for _, o := range objects {
		if !strings.HasPrefix(o, "DestinationRule/") {
			return false
		}
	}
	return len(objects) > 0
}

// driftText is the DRIFT cell: what differs between the live routing
// objects and the record, in a few words, "-" when nothing does.
func driftText(st routing.CanaryStatus) string {
	var parts []string
	seen := map[string]bool{}
	for _, d := range st.Drift {
		if short := d.Short(); !seen[short] {
			seen[short] = true
			parts = append(parts, short)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// warnDrift says on standard error, below the table, exactly what
// differs for each drifted canary; the table has room for a few words.
func (o *StatusOptions) warnDrift(statuses []routing.CanaryStatus) {
	drifted := false
	for _, st := range statuses {
		where := st.Namespace + "/" + st.Service
		if st.Cluster != "" {
			where += " in " + st.Cluster
		}
		for _, d := range st.Drift {
			fmt.Fprintf(o.ErrOut, "Warning: %s drifted: %s\n", where, d)
			drifted = true
		}
	}
	if drifted {
		fmt.Fprintln(o.ErrOut, "kubectl canary check SERVICE says what to do about each drift.")
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// alignedTable is a table printed in parts, as status --watch prints rows
// when canaries change, whose columns keep their widths from part to part
// (a tabwriter aligns each part on its own). A later row with a wider cell
// widens its column, and the header is printed again with the new widths,
// so that every row lines up with the header above it. Cells are
// separated and padded as kubectl's tabwriter does (printers.GetNewTabWriter).
type alignedTable struct {
	out io.Writer
	// header says the first line is the header.
	header  bool
	heading []string
	widths  []int
	pending strings.Builder
}

// As printers.GetNewTabWriter pads cells.
const (
	tableMinWidth = 6
	tablePadding  = 3
)

func (t *alignedTable) Write(p []byte) (int, error) { return t.pending.Write(p) }

// Flush prints the complete lines written since the last Flush.
func (t *alignedTable) Flush() error {
	text := t.pending.String()
	end := strings.LastIndex(text, "\n") + 1
	t.pending.Reset()
	t.pending.WriteString(text[end:])
	var rows [][]string
	for _, line := range strings.Split(text[:end], "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	if len(rows) == 0 {
		return nil
	}
	first := t.header && t.heading == nil
	if first {
		t.heading, rows = rows[0], rows[1:]
		t.widen(t.heading)
	}
	grew := false
	for _, row := range rows {
		grew = t.widen(row) || grew
	}
	var b strings.Builder
	if first || (grew && t.heading != nil) {
		t.line(&b, t.heading)
	}
	for _, row := range rows {
		t.line(&b, row)
	}
	_, err := io.WriteString(t.out, b.String())
	return err
}

// widen makes the columns wide enough for row; it says whether one grew.
func (t *alignedTable) widen(row []string) bool {
	grew := false
	for i, cell := range row[:len(row)-1] { // the last cell is not padded
		width := max(tableMinWidth, len([]rune(cell))+tablePadding)
		if i >= len(t.widths) {
			t.widths = append(t.widths, 0)
		}
		if width > t.widths[i] {
			t.widths[i], grew = width, true
		}
	}
	return grew
}

func (t *alignedTable) line(b *strings.Builder, row []string) {
	for i, cell := range row {
		b.WriteString(cell)
		if i < len(row)-1 {
			b.WriteString(strings.Repeat(" ", t.widths[i]-len([]rune(cell))))
		}
	}
	b.WriteString("\n")
}
