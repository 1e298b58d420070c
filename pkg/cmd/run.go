package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"
	"k8s.io/kubectl/pkg/util/term"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// RunOptions holds the flags of `kubectl canary run`.
type RunOptions struct {
	*globalOptions
	analysisFlags
	namespace       string
	service         string
	steps           []int
	interval        time.Duration
	maxInconclusive int
	noPromote       bool
	dryRun          cmdutil.DryRunStrategy
	force           bool
	minAvailable    int32
	// intent and startFlags are start's flags, for a run that starts the
	// canary: its versions and routing.
	intent routing.Intent
	startFlags
	startFlagsGiven []string
	now             func() time.Time
	// onTerminal tells whether Out is a terminal (an updating progress line)
	// or not (log lines); tests set it.
	onTerminal func() bool
}

func newCmdRun(g *globalOptions) *cobra.Command {
	o := &RunOptions{globalOptions: g, now: time.Now}
	o.onTerminal = func() bool { return term.IsTerminal(o.Out) }
	cmd := &cobra.Command{
		Use:   "run SERVICE",
		Short: "Step a canary's weight up, gated by its metrics: promote when healthy, abort on failure",
		Long: withExitStatuses(templates.LongDesc(`
			Start a canary (or resume the one running), set each step's weight in
			turn, wait the interval, and analyse the canary's real traffic as
			kubectl canary analyze does. A pass moves to the next step and, after
			the last, promotes; an inconclusive analysis holds the step, up to
			--max-inconclusive times; a failure aborts at once (all traffic back to
			stable) and exits 3 naming the failing metric.

			The step, its start time and the last verdict are recorded in the
			canary's state: after Ctrl-C or a lost terminal the canary stays where
			it was, and the next run resumes from the recorded step. Writes are
			never interrupted halfway.

			A run that starts the canary takes start's flags (--canary,
			--stable, --version-label, --header, ...); one that resumes or takes
			over a running canary goes on with its versions and routing. Before
			its first write, run queries Prometheus: one it cannot query stops
			the run with nothing written. --dry-run prints the steps the run
			would take, planned as the real run plans them, and refuses what the
			real run would refuse.`)),
		Example: templates.Examples(`
			# 5%, 10%, 25%, 50%, 100%, two minutes each, then promote
			kubectl canary run reviews

			# Bookinfo has three versions: pick the canary
			kubectl canary run reviews --canary v3

			# Faster steps, a hard p99 limit, and keep the last step unpromoted
			kubectl canary run reviews --steps 10,50,100 --interval 1m --max-p99 300ms --no-promote

			# The plan only
			kubectl canary run reviews --dry-run

			# The plan, with its first step validated by the API server
			kubectl canary run reviews --dry-run=server`),
		Args: exactlyOneService,
		RunE: runVerb(o),
	}
	cmd.SetFlagErrorFunc(runFlagError)
	o.analysisFlags.addFlags(cmd)
	o.startFlags.addStartFlags(cmd, &o.intent)
	cmd.Flags().Lookup("window").Usage = "Traffic to analyse after each step: the last WINDOW of it. Default: the interval. At least " + minimumText + "."
	cmd.Flags().IntSliceVar(&o.steps, "steps", []int{5, 10, 25, 50, 100}, "Canary weights in percent, in increasing order.")
	cmd.Flags().DurationVar(&o.interval, "interval", 2*time.Minute, "How long each step runs before it is analysed. At least "+minimumText+".")
	cmd.Flags().IntVar(&o.maxInconclusive, "max-inconclusive", 3, "How many inconclusive analyses a step may hold for; one more stops the run (the canary stays where it is).")
	cmd.Flags().BoolVar(&o.noPromote, "no-promote", false, "Stop after the last step passes instead of promoting.")
	cmdutil.AddDryRunFlag(cmd)
	cmd.Flags().Lookup("dry-run").Usage = `"client" (or no value) prints the plan and writes nothing; "server" also sends the first step's writes with dryRun=All so that the API server validates them.`
	cmd.Flags().BoolVar(&o.force, "force", false, "Write even when the preflight check finds errors.")
	cmd.Flags().Int32Var(&o.minAvailable, "min-available", 1, "Fewest available canary replicas that may take traffic.")
	return cmd
}

// Complete reads SERVICE, the namespace, --dry-run and start's flags; the
// window defaults to the interval.
func (o *RunOptions) Complete(cmd *cobra.Command, args []string) error {
	o.service = args[0]
	if !cmd.Flags().Changed("window") {
		o.window = o.interval
	}
	if err := o.startFlags.completeStart(cmd, &o.intent); err != nil {
		return err
	}
	for _, name := range startFlagNames {
		if cmd.Flags().Changed(name) {
			o.startFlagsGiven = append(o.startFlagsGiven, "--"+name)
		}
	}
	var err error
	if o.dryRun, err = dryRunStrategy(cmd); err != nil {
		return err
	}
	o.namespace, err = o.conn.Namespace()
	return err
}

// Validate checks the steps and the analysis flags.
func (o *RunOptions) Validate() error {
	if len(o.steps) == 0 {
		return fmt.Errorf("--steps is empty; give the weights, for example --steps 5,10,25,50,100")
	}
	for i, w := range o.steps {
		if w < 1 || w > 100 {
			return fmt.Errorf("step weight %d is out of range; give whole numbers from 1 to 100", w)
		}
		if i > 0 && w <= o.steps[i-1] {
			return fmt.Errorf("--steps %s must increase", joinInts(o.steps))
		}
	}
	// The shortest interval depends on Prometheus's scrape interval, checked
	// by longEnough once Prometheus is reached.
	if o.interval <= 0 {
		return fmt.Errorf("--interval %s is not a duration; give how long each step runs, for example --interval 2m", o.interval)
	}
	if o.maxInconclusive < 0 {
		return fmt.Errorf("--max-inconclusive cannot be negative")
	}
	return o.analysisFlags.validate()
}

// Run steps the canary until it is promoted, aborted or stopped; with
// --dry-run it prints the plan of the run instead. Both read the running
// canary, query Prometheus and plan the first step the same way, so that
// the plan is the run's and a dry run refuses what the run would.
func (o *RunOptions) Run(cmd *cobra.Command) error {
	ctx := cmd.Context()
	runner, err := o.runner(ctx)
	if err != nil {
		return err
	}
	st, err := runner.RunningState(ctx)
	if err != nil {
		return err
	}
	if st != nil {
		o.warnStartFlagsIgnored(st)
	}
	// The first step is planned and checked as the real run's first
	// change is (a client dry run): what the run would refuse is refused
	// before anything else is said or asked.
	first, err := runner.PlanFirstStep(ctx, st, canary.ClientDryRun)
	if err != nil {
		return err
	}
	withoutSeries, err := runner.CheckPrometheus(ctx)
	if err != nil {
		return fmt.Errorf("%w\nNothing was written", err)
	}
	minimum := runner.ReadScrapeMinimum(ctx)
	if err := longEnough("interval", o.interval, "of each step", minimum); err != nil {
		return err
	}
	if err := longEnough("window", o.window, "in it", minimum); err != nil {
		return err
	}
	var notes []string
	if withoutSeries != nil {
		notes = append(notes, runner.NoSeriesYet(withoutSeries))
	}
	if o.dryRun == cmdutil.DryRunServer {
		if first, err = runner.PlanFirstStep(ctx, st, canary.ServerDryRun); err != nil {
			return err
		}
	}
	if o.dryRun != cmdutil.DryRunNone {
		o.printPlan(first, notes, minimum, runner.Clusters)
		return nil
	}
	for _, note := range notes {
		fmt.Fprintf(o.ErrOut, "Note: %s\n", note)
	}
	return runner.Run(ctx, st)
}

// warnStartFlagsIgnored says that start's routing flags do not change a
// canary that already runs (its versions were checked against them).
func (o *RunOptions) warnStartFlagsIgnored(st *routing.State) {
	var ignored []string
	for _, flag := range o.startFlagsGiven {
		switch flag {
		case "--canary", "--canary-deployment", "--stable", "--version-label":
		default:
			ignored = append(ignored, flag)
		}
	}
	if len(ignored) > 0 {
		fmt.Fprintf(o.ErrOut, "Warning: the canary of %s/%s already runs (%s at %d%%): %s shape a canary that run starts and leave this one's routing as it is; change it with kubectl canary route or weight\n",
			o.namespace, o.service, st.Canary, st.Weight, strings.Join(ignored, ", "))
	}
}

// runner is the run the flags ask for, reporting as every change does:
// in the cluster of the kubeconfig, or in every cluster of --contexts.
func (o *RunOptions) runner(ctx context.Context) (*canary.Runner, error) {
	change := newChangeOptions(o.globalOptions, "")
	change.intent = o.intent
	change.intent.ClusterDomain = o.clusterDomain
	change.force, change.minAvailable = o.force, o.minAvailable
	r := &canary.Runner{
		Plan:      canary.RunPlan{Steps: o.steps, Interval: o.interval, MaxInconclusive: o.maxInconclusive, NoPromote: o.noPromote},
		Judgement: o.judgement(),
		Progress:  &runProgress{out: o.Out, terminal: o.onTerminal()},
		Now:       o.now,
	}
	var err error
	if o.contextFlags.enabled() {
		r.Clusters, err = o.runClusters(ctx, change)
	} else {
		r.Clusters, err = o.runCluster(change)
	}
	change.namespace, change.service = o.namespace, o.service
	r.Request = change.request()
	return r, err
}

// runCluster is the cluster of the kubeconfig, as a run sees it.
func (o *RunOptions) runCluster(change *changeOptions) ([]canary.RunCluster, error) {
	cluster, err := o.conn.Cluster()
	if err != nil {
		return nil, err
	}
	prom, err := o.prometheus(o.conn, o.prometheusTimeout)
	if err != nil {
		return nil, err
	}
	member := canary.Member{Engine: change.engine(cluster), Observers: []canary.Observer{&reportPrinter{change}}}
	return []canary.RunCluster{{Member: member, Prometheus: prom}}, nil
}

// runClusters are the clusters of --contexts, each judged by the
// Prometheus behind its own API server, or by its requests in the one of
// --prometheus-url.
func (o *RunOptions) runClusters(ctx context.Context, change *changeOptions) ([]canary.RunCluster, error) {
	members, err := o.members(ctx)
	if err != nil {
		return nil, err
	}
	o.namespace = members[0].namespace
	change.namespace, change.service = o.namespace, o.service
	istioClusters, err := o.istioClusters(ctx, members)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var clusters []canary.RunCluster
	for i, m := range members {
		prom, err := o.prometheus(m.conn, o.prometheusTimeout)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", m.context, err)
		}
		clusters = append(clusters, canary.RunCluster{Member: change.member(m, &mu), Prometheus: prom, IstioCluster: istioClusters[i]})
	}
	return clusters, nil
}

// runProgress prints a run as it goes: on a terminal the wait is one line
// rewritten in place, elsewhere one log line per wait.
type runProgress struct {
	out      io.Writer
	terminal bool
	// lastMetrics is the latest analysis in one line, for the progress line.
	lastMetrics string
	// waiting is set while a wait is shown.
	waiting bool
}

func (p *runProgress) Began(says string) { fmt.Fprintln(p.out, says) }

func (p *runProgress) Waiting(run routing.RunState, left time.Duration) {
	label := fmt.Sprintf("step %d/%d: canary at %d%%", run.Step+1, len(run.Steps), run.Steps[run.Step])
	if run.Inconclusive > 0 {
		label += fmt.Sprintf(" (held, %d inconclusive)", run.Inconclusive)
	}
	first := !p.waiting
	p.waiting = true
	if !p.terminal {
		if first {
			fmt.Fprintf(p.out, "%s: analysing in %s\n", label, left.Round(time.Second))
		}
		return
	}
	line := fmt.Sprintf("%s, analysing in %s", label, left.Round(time.Second))
	if p.lastMetrics != "" {
		line += "; last: " + p.lastMetrics
	}
	fmt.Fprintf(p.out, "\r\033[K%s", line)
}

func (p *runProgress) WaitOver(interrupted bool) {
	p.waiting = false
	switch {
	case !p.terminal:
	case interrupted:
		fmt.Fprintln(p.out)
	default:
		fmt.Fprint(p.out, "\r\033[K")
	}
}

func (p *runProgress) Analysed(run routing.RunState, cluster string, d analysis.Decision, r analysis.Result) {
	p.lastMetrics = metricsLine(r)
	in := ""
	if cluster != "" {
		in = " in " + cluster
		p.lastMetrics = cluster + ": " + p.lastMetrics
	}
	fmt.Fprintf(p.out, "step %d/%d (%d%%)%s: %s: %s; %s\n", run.Step+1, len(run.Steps), run.Steps[run.Step], in, d.Verdict, d.Reason, metricsLine(r))
}

// printPlan prints the steps the run would take from first, the step it
// begins with (as the real run says it), and how it judges them.
func (o *RunOptions) printPlan(first canary.RunStep, notes []string, minimum analysis.ScrapeMinimum, clusters []canary.RunCluster) {
	fmt.Fprintf(o.Out, "would run the canary of %s/%s: %s\n", o.namespace, o.service, first.Says)
	for _, note := range notes {
		fmt.Fprintf(o.Out, "note: %s\n", note)
	}
	if len(clusters) > 1 {
		var names []string
		judged := "by its own Prometheus"
		for _, c := range clusters {
			name := c.Context
			if c.IstioCluster != "" {
				name += fmt.Sprintf(" (%s=%q)", analysis.ClusterLabel, c.IstioCluster)
				judged = "on its own requests"
			}
			names = append(names, name)
		}
		fmt.Fprintf(o.Out, "in the clusters %s, each step in all of them; each is judged %s, and the worst verdict decides\n", strings.Join(names, ", "), judged)
	}
	t := o.thresholds()
	for i := first.Run.Step; i < len(first.Run.Steps); i++ {
		w := first.Run.Steps[i]
		if i == first.Run.Step && first.Action == "" {
			left := max(canary.AnalysisDue(first.Run, o.interval).Sub(o.now()), 0).Round(time.Second)
			fmt.Fprintf(o.Out, "step %d/%d: canary at %d%% for the rest of its %s (%s), then analyse the last %s\n", i+1, len(first.Run.Steps), w, o.interval, left, o.window)
			continue
		}
		fmt.Fprintf(o.Out, "step %d/%d: canary at %d%% for %s, then analyse the last %s\n", i+1, len(first.Run.Steps), w, o.interval, o.window)
	}
	fmt.Fprintf(o.Out, "shortest interval and window: %s, %s\n", model.Duration(minimum.Min), minimum.Source())
	last := "promote"
	if o.noPromote {
		last = "stop without promoting"
	}
	fmt.Fprintf(o.Out, "pass: next step (after the last: %s); inconclusive: hold the step, up to %d times; fail: abort\n", last, o.maxInconclusive)
	fmt.Fprintf(o.Out, "thresholds: max error rate %s, max error rate increase %s, max p99 %s, max latency ratio %g, min requests %g\n",
		formatMetric(t.MaxErrorRate*100, "%g%%"), formatMetric(t.MaxErrorRateIncrease*100, "%g points"), t.MaxP99, t.MaxLatencyRatio, t.MinRequests)
	split := "a traffic split that does not match the weight holds the step"
	if t.IgnoreSplitMismatch {
		split = "the traffic split is reported, not judged (--ignore-split-mismatch)"
	}
	fmt.Fprintln(o.Out, split)
	if o.dryRun == cmdutil.DryRunServer {
		fmt.Fprintln(o.Out, "(server dry run: the API server accepted the first step; nothing was written)")
		return
	}
	fmt.Fprintln(o.Out, "(dry run: nothing was written)")
}

func metricsLine(r analysis.Result) string {
	side := func(name string, m analysis.Metrics) string {
		return fmt.Sprintf("%s %s rps, %s ok, p99 %s", name, formatMetric(m.RPS, "%.1f"), formatMetric(m.SuccessRate*100, "%.1f%%"), formatMetric(m.P99, "%.0fms"))
	}
	line := side("canary", r.Canary) + " | " + side("stable", r.Stable)
	if sp := r.Split; sp != nil && sp.CanaryShare != nil {
		line += fmt.Sprintf(" | canary share %.1f%% of %.0f (%s)", *sp.CanaryShare*100, sp.Requests, sp.Verdict)
	}
	return line
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

// runFlagError explains why run has no -f: it steps the live cluster, and a
// GitOps tool would undo each step before the next.
func runFlagError(_ *cobra.Command, err error) error {
	message := err.Error()
	if strings.Contains(message, "shorthand flag: 'f'") || strings.Contains(message, "flag: --filename") || strings.Contains(message, "flag: --local") {
		return fmt.Errorf("run steps the canary in the live cluster and cannot write manifests; with GitOps, set each step in the files with kubectl canary weight SERVICE N -f PATH, commit, and let your GitOps tool apply it (%w)", err)
	}
	return err
}
