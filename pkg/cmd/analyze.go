package cmd

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// prometheusFlags say where Prometheus is, for analyze, run and status --observed.
type prometheusFlags struct {
	prometheusURL       string
	prometheusNamespace string
	prometheusService   string
	prometheusPort      int
}

func (f *prometheusFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&f.prometheusURL, "prometheus-url", "", "Prometheus to query, e.g. http://127.0.0.1:9090. Default: Istio's Prometheus through the API server's service proxy (--prometheus-namespace, --prometheus-service, --prometheus-port), with the kubeconfig's credentials.")
	fl.StringVar(&f.prometheusNamespace, "prometheus-namespace", istioNamespace, "Namespace of the Prometheus Service reached through the API server's proxy.")
	fl.StringVar(&f.prometheusService, "prometheus-service", "prometheus", "Name of the Prometheus Service reached through the API server's proxy.")
	fl.IntVar(&f.prometheusPort, "prometheus-port", 9090, "Port of the Prometheus Service reached through the API server's proxy.")
}

// prometheus connects to the Prometheus the flags name; timeout bounds each
// request to a --prometheus-url, 0 for the kubeconfig's request timeout.
func (f *prometheusFlags) prometheus(conn *canary.Connection, timeout time.Duration) (*canary.Prometheus, error) {
	return conn.Prometheus(canary.PrometheusAt{URL: f.prometheusURL, Namespace: f.prometheusNamespace, Service: f.prometheusService, Port: f.prometheusPort, Timeout: timeout, Fix: prometheusFix})
}

// analysisFlags are the Prometheus and threshold flags analyze and run share.
type analysisFlags struct {
	prometheusFlags
	window time.Duration
	// Percentages as the user gives them; thresholds() turns them into shares.
	maxErrorRate         float64
	maxErrorRateIncrease float64
	maxP99               time.Duration
	maxLatencyRatio      float64
	minRequests          float64
	ignoreSplitMismatch  bool
	// checks are the custom queries, in the order given; --max and --min
	// bound the --query before them.
	checks []analysis.Check
}

// checkFlag is --query, --max or --min: pflag sets flags in command-line
// order, so --max and --min apply to the --query they follow.
type checkFlag struct {
	checks *[]analysis.Check
	name   string
}

func (f checkFlag) String() string { return "" }

func (f checkFlag) Type() string {
	if f.name == "query" {
		return "NAME=PROMQL"
	}
	return "VALUE"
}

func (f checkFlag) Set(value string) error {
	if f.name == "query" {
		name, query, ok := strings.Cut(value, "=")
		if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(query) == "" {
			return fmt.Errorf("give NAME=PROMQL, for example --query 'errors=sum(rate(my_errors_total[{{.Window}}]))' --max 1")
		}
		*f.checks = append(*f.checks, analysis.Check{Name: strings.TrimSpace(name), Query: query})
		return nil
	}
	if len(*f.checks) == 0 {
		return fmt.Errorf("--%s bounds the --query before it; give --query NAME=PROMQL first", f.name)
	}
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", value)
	}
	last := &(*f.checks)[len(*f.checks)-1]
	bound := &last.Max
	if f.name == "min" {
		bound = &last.Min
	}
	if *bound != nil {
		return fmt.Errorf("custom query %s already has a --%s", last.Name, f.name)
	}
	*bound = &v
	return nil
}

func (f *analysisFlags) addFlags(cmd *cobra.Command) {
	d := analysis.DefaultThresholds
	fl := cmd.Flags()
	f.prometheusFlags.addFlags(fl)
	fl.DurationVar(&f.window, "window", 5*time.Minute, "Traffic to analyse: the last WINDOW of it (rates and latency quantiles are taken over it). At least "+minimumText+".")
	fl.Float64Var(&f.maxErrorRate, "max-error-rate", d.MaxErrorRate*100, "Highest canary error rate (5xx responses), in percent, that passes; 0 turns the check off.")
	fl.Float64Var(&f.maxErrorRateIncrease, "max-error-rate-increase", d.MaxErrorRateIncrease*100, "How many percentage points the canary's error rate may exceed stable's; 0 turns the check off.")
	fl.DurationVar(&f.maxP99, "max-p99", d.MaxP99, "Highest canary p99 latency that passes, e.g. 500ms; 0 turns the check off.")
	fl.Float64Var(&f.maxLatencyRatio, "max-latency-ratio", d.MaxLatencyRatio, "Highest canary p99 / stable p99 that passes; 0 turns the check off.")
	fl.Float64Var(&f.minRequests, "min-requests", d.MinRequests, "Fewest canary requests in the window to judge it; below it the verdict is inconclusive, never pass.")
	fl.BoolVar(&f.ignoreSplitMismatch, "ignore-split-mismatch", false, "Judge the canary even when the share of requests it answered does not match its weight (clients outside the mesh, a VirtualService not exported to them); otherwise the verdict is inconclusive.")
	fl.Var(checkFlag{&f.checks, "query"}, "query", "A custom check, repeatable: NAME=PROMQL, a query with one value, followed by --max and/or --min. Template variables: {{.Namespace}} {{.Service}} {{.Stable}} {{.Canary}} {{.Window}} {{.StableWorkloads}} {{.CanaryWorkloads}}.")
	fl.Var(checkFlag{&f.checks, "max"}, "max", "Highest value that passes, for the --query before it.")
	fl.Var(checkFlag{&f.checks, "min"}, "min", "Lowest value that passes, for the --query before it.")
}

func (f *analysisFlags) validate() error {
	// The shortest window depends on Prometheus's scrape interval, checked
	// by longEnough once Prometheus is reached.
	switch {
	case f.window <= 0:
		return fmt.Errorf("--window %s is not a duration of traffic; give one of a minute or so, for example --window 1m", f.window)
	case f.maxErrorRate < 0 || f.maxErrorRate > 100:
		return fmt.Errorf("--max-error-rate %g is not a percentage from 0 to 100", f.maxErrorRate)
	case f.maxErrorRateIncrease < 0 || f.maxErrorRateIncrease > 100:
		return fmt.Errorf("--max-error-rate-increase %g is not a percentage from 0 to 100", f.maxErrorRateIncrease)
	case f.maxP99 < 0 || f.maxLatencyRatio < 0 || f.minRequests < 0:
		return fmt.Errorf("--max-p99, --max-latency-ratio and --min-requests cannot be negative")
	}
	for _, c := range f.checks {
		if c.Max == nil && c.Min == nil {
			return fmt.Errorf("custom query %s has no bound; follow it with --max VALUE and/or --min VALUE", c.Name)
		}
		if _, err := c.Render(analysis.Target{}, f.window); err != nil {
			return err
		}
	}
	return nil
}

func (f *analysisFlags) thresholds() analysis.Thresholds {
	return analysis.Thresholds{
		MaxErrorRate:         f.maxErrorRate / 100,
		MaxErrorRateIncrease: f.maxErrorRateIncrease / 100,
		MaxP99:               f.maxP99,
		MaxLatencyRatio:      f.maxLatencyRatio,
		MinRequests:          f.minRequests,
		IgnoreSplitMismatch:  f.ignoreSplitMismatch,
	}
}

// minimumText says what the shortest --window and --interval are, for help.
var minimumText = fmt.Sprintf("%d scrape intervals of the Prometheus targets that report the Service (%s when Prometheus's targets API cannot be read)",
	analysis.MinScrapes, model.Duration(analysis.DefaultMinInterval))

// judgement is how the flags say to judge a canary.
func (f *analysisFlags) judgement() canary.Judgement {
	return canary.Judgement{Window: f.window, Thresholds: f.thresholds(), Checks: f.checks}
}

// longEnough refuses a --window or --interval (flag) shorter than the
// minimum, saying where the minimum comes from; spans says what the scrapes
// must cover ("in it", "of each step").
func longEnough(flag string, d time.Duration, spans string, m analysis.ScrapeMinimum) error {
	if d >= m.Min {
		return nil
	}
	needs := "a few scrapes"
	if m.Unknown == "" {
		needs = fmt.Sprintf("%d scrapes", analysis.MinScrapes)
	}
	return fmt.Errorf("--%s %s is too short; Prometheus needs %s %s, give %s or more (%s)", flag, d, needs, spans, model.Duration(m.Min), m.Source())
}

// AnalyzeOptions holds the flags of `kubectl canary analyze`.
type AnalyzeOptions struct {
	*globalOptions
	analysisFlags
	namespace string
	service   string
	output    *outputFlags
	printer   printers.ResourcePrinter
	now       func() time.Time
}

func newCmdAnalyze(g *globalOptions) *cobra.Command {
	o := &AnalyzeOptions{globalOptions: g, now: time.Now}
	cmd := &cobra.Command{
		Use:   "analyze SERVICE",
		Short: "Judge a running canary by its real traffic in Prometheus: pass, fail or inconclusive",
		Long: withExitStatuses(templates.LongDesc(`
			Read Istio's standard metrics for the stable and the canary version of a
			Service from Prometheus, print them side by side (requests per second,
			success rate, p50 and p99 latency) and judge the canary against the
			thresholds. The exit status is the verdict: 0 pass, 2 inconclusive,
			3 fail; 1 is an error, when nothing could be judged. Nothing in the
			cluster is changed.`)),
		Example: templates.Examples(`
			# Judge the canary of reviews over the last 5 minutes
			kubectl canary analyze reviews

			# Over 10 minutes, with a hard p99 limit, as JSON for a script
			kubectl canary analyze reviews --window 10m --max-p99 300ms -o json

			# With a Prometheus of your own
			kubectl canary analyze reviews --prometheus-url http://127.0.0.1:9090`),
		Args: exactlyOneService,
		RunE: runVerb(o),
	}
	o.analysisFlags.addFlags(cmd)
	o.output = addOutputFlags(cmd, "a table", true)
	return cmd
}

// Complete reads SERVICE, the namespace and the output format.
func (o *AnalyzeOptions) Complete(_ *cobra.Command, args []string) error {
	o.service = args[0]
	var err error
	if o.printer, err = o.output.printer(); err != nil {
		return err
	}
	o.namespace, err = o.conn.Namespace()
	return err
}

// Validate checks the flags before anything is read.
func (o *AnalyzeOptions) Validate() error {
	return o.analysisFlags.validate()
}

// analysisReport is what -o json and -o yaml print.
type analysisReport struct {
	Namespace  string                 `json:"namespace"`
	Service    string                 `json:"service"`
	Stable     string                 `json:"stable"`
	Canary     string                 `json:"canary"`
	Weight     int                    `json:"weight"`
	Window     string                 `json:"window"`
	SelectedBy string                 `json:"selectedBy"`
	Metrics    map[string]any         `json:"metrics"`
	Checks     []analysis.CheckResult `json:"checks,omitempty"`
	Split      *analysis.SplitReport  `json:"split,omitempty"`
	Decision   analysis.Decision      `json:"decision"`
}

// Run reads the canary, queries Prometheus and prints the verdict.
func (o *AnalyzeOptions) Run(cmd *cobra.Command) error {
	ctx := cmd.Context()
	if o.contextFlags.enabled() {
		return o.analyzeClusters(ctx)
	}
	a, err := o.analyzeIn(ctx, o.conn, "")
	if err != nil {
		return err
	}
	if err := o.print(o.Out, a); err != nil {
		return err
	}
	return canary.Verdict(o.namespace, o.service, a.report.Decision)
}

// analyzed is the judgement of the canary of one cluster.
type analyzed struct {
	report analysisReport
	status routing.CanaryStatus
	result analysis.Result
}

// analyzeIn judges the canary of the cluster conn reaches.
func (o *AnalyzeOptions) analyzeIn(ctx context.Context, conn *canary.Connection, istioCluster string) (*analyzed, error) {
	cluster, err := conn.Cluster()
	if err != nil {
		return nil, err
	}
	target, st, err := canary.RunningCanary(ctx, cluster, o.namespace, o.service, o.clusterDomain)
	if err != nil {
		return nil, err
	}
	target.Cluster = istioCluster
	prom, err := o.prometheus(conn, o.prometheusTimeout)
	if err != nil {
		return nil, err
	}
	// Prometheus answers, or the analysis ends here saying why.
	if _, err := prom.HasSeries(ctx, target, o.now()); err != nil {
		return nil, err
	}
	minimum := prom.ScrapeMinimum(ctx, o.namespace, o.service, o.now())
	if err := longEnough("window", o.window, "in it", minimum); err != nil {
		return nil, err
	}
	judgement := o.judgement()
	judgement.Scrape = minimum
	result, decision, err := prom.Judge(ctx, target, judgement, o.now())
	if err != nil {
		return nil, err
	}
	report := analysisReport{Namespace: o.namespace, Service: o.service, Stable: st.Stable, Canary: st.Canary, Weight: st.Weight,
		Window: o.window.String(), SelectedBy: result.By, Metrics: map[string]any{"stable": result.Stable, "canary": result.Canary}, Checks: result.Checks, Split: result.Split, Decision: decision}
	return &analyzed{report: report, status: st, result: result}, nil
}

// print prints one judgement as -o asks, or as a table and lines.
func (o *AnalyzeOptions) print(out io.Writer, a *analyzed) error {
	if o.printer != nil {
		return printDocument(o.printer, o.document(a), out)
	}
	return printAnalysis(out, a.status, a.result, a.report.Decision, o.output.headers())
}

// document is the analysis as -o prints it.
func (o *AnalyzeOptions) document(a *analyzed) CanaryAnalysis {
	return CanaryAnalysis{TypeMeta: typeMeta(KindCanaryAnalysis), Metadata: canaryMeta(a.report.Namespace, a.report.Service), AnalysisReport: a.report}
}

func printAnalysis(out io.Writer, st routing.CanaryStatus, r analysis.Result, d analysis.Decision, header bool) error {
	stableShare, canaryShare := math.NaN(), math.NaN()
	if sp := r.Split; sp != nil && sp.CanaryShare != nil {
		stableShare, canaryShare = *sp.StableShare*100, *sp.CanaryShare*100
	}
	w := printers.GetNewTabWriter(out)
	if header {
		fmt.Fprintf(w, "VERSION\tWEIGHT\tSHARE\tREQUESTS\tRPS\tSUCCESS\tP50\tP99\n")
	}
	for _, row := range []struct {
		name   string
		weight int
		share  float64
		m      analysis.Metrics
	}{{"stable " + st.Stable, 100 - st.Weight, stableShare, r.Stable}, {"canary " + st.Canary, st.Weight, canaryShare, r.Canary}} {
		fmt.Fprintf(w, "%s\t%d%%\t%s\t%s\t%s\t%s\t%s\t%s\n", row.name, row.weight, formatMetric(row.share, "%.1f%%"), formatMetric(row.m.Requests, "%.0f"), formatMetric(row.m.RPS, "%.2f"),
			formatMetric(row.m.SuccessRate*100, "%.2f%%"), formatMetric(row.m.P50, "%.0fms"), formatMetric(row.m.P99, "%.0fms"))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, c := range r.Checks {
		value := "no value"
		if c.Value != nil {
			value = strconv.FormatFloat(*c.Value, 'g', 6, 64)
		}
		var bounds []string
		if c.Min != nil {
			bounds = append(bounds, fmt.Sprintf("min %g", *c.Min))
		}
		if c.Max != nil {
			bounds = append(bounds, fmt.Sprintf("max %g", *c.Max))
		}
		fmt.Fprintf(out, "check %s: %s (%s)\n", c.Name, value, strings.Join(bounds, ", "))
	}
	printSplit(out, r.Split)
	by := ""
	if r.By != "" {
		by = ", versions by " + r.By
	}
	fmt.Fprintf(out, "verdict: %s: %s (last %s%s)\n", d.Verdict, d.Reason, r.Window, by)
	return nil
}

// printSplit says whether the shares match the weight and, where not, why
// and what to do.
func printSplit(out io.Writer, sp *analysis.SplitReport) {
	if sp == nil {
		return
	}
	fmt.Fprintf(out, "traffic split: %s: %s\n", sp.Verdict, sp.Reason)
	for _, c := range sp.Causes {
		fmt.Fprintf(out, "  cause: %s\n  fix: %s\n", c.Says, c.Fix)
	}
}

// formatMetric formats a metric, or a threshold, for a table or a line: "-"
// when there is no number (no traffic to divide by).
func formatMetric(v float64, format string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}
