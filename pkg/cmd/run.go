package cmd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/templates"
	"k8s.io/kubectl/pkg/util/term"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
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
	now             func() time.Time
	// onTerminal tells whether Out is a terminal (an updating progress line)
	// or not (log lines); tests set it.
	onTerminal func() bool
	// lastMetrics is the latest analysis in one line, for the progress line.
	lastMetrics string
}

func newCmdRun(g *globalOptions) *cobra.Command {
	o := &RunOptions{globalOptions: g, now: time.Now}
	o.onTerminal = func() bool { return term.IsTerminal(o.Out) }
	cmd := &cobra.Command{
		Use:   "run SERVICE",
		Short: "Step a canary's weight up, gated by its metrics: promote when healthy, abort on failure",
		Long: templates.LongDesc(`
			Start a canary (or resume the one running), set each step's weight in
			turn, wait the interval, and analyse the canary's real traffic as
			kubectl canary analyze does. A pass moves to the next step and, after
			the last, promotes; an inconclusive analysis holds the step, up to
			--max-inconclusive times; a failure aborts at once (all traffic back to
			stable) and exits non-zero naming the failing metric.

			The step, its start time and the last verdict are recorded in the
			canary's state: after Ctrl-C or a lost terminal the canary stays where
			it was, and the next run resumes from the recorded step. Writes are
			never interrupted halfway.`),
		Example: templates.Examples(`
			# 5%, 10%, 25%, 50%, 100%, two minutes each, then promote
			kubectl canary run reviews

			# Faster steps, a hard p99 limit, and keep the last step unpromoted
			kubectl canary run reviews --steps 10,50,100 --interval 1m --max-p99 300ms --no-promote

			# The plan only
			kubectl canary run reviews --dry-run

			# The plan, with its first step validated by the API server
			kubectl canary run reviews --dry-run=server`),
		Args: exactlyOneService,
		RunE: runVerb(o),
	}
	o.analysisFlags.addFlags(cmd)
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

// Complete reads SERVICE, the namespace and --dry-run; the window defaults
// to the interval.
func (o *RunOptions) Complete(cmd *cobra.Command, args []string) error {
	o.service = args[0]
	if !cmd.Flags().Changed("window") {
		o.window = o.interval
	}
	var err error
	if o.dryRun, err = dryRunStrategy(cmd); err != nil {
		return err
	}
	o.namespace, err = o.factory.Namespace()
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

// Run steps the canary until it is promoted, aborted or stopped.
func (o *RunOptions) Run(cmd *cobra.Command) error {
	ctx := cmd.Context()
	clients, err := o.factory.Clients()
	if err != nil {
		return err
	}
	snap, err := clients.ReadSnapshot(ctx, o.namespace, o.service, kube.SnapshotOptions{ClusterDomain: o.clusterDomain})
	if err != nil {
		return err
	}
	state, err := progressingState(snap, o.service)
	if err != nil {
		return err
	}
	prom, err := o.prometheus(o.factory)
	if err != nil {
		return err
	}
	minimum := prom.scrapeMinimum(ctx, o.namespace, o.service, o.now())
	if err := longEnough("interval", o.interval, "of each step", minimum); err != nil {
		return err
	}
	if err := longEnough("window", o.window, "in it", minimum); err != nil {
		return err
	}
	if o.dryRun != cmdutil.DryRunNone {
		return o.dryRunPlan(ctx, state, minimum)
	}
	run, err := o.begin(ctx, state)
	if err != nil {
		return err
	}
	// The versions do not change during a run: read them once, after start.
	if snap, err = clients.ReadSnapshot(ctx, o.namespace, o.service, kube.SnapshotOptions{ClusterDomain: o.clusterDomain}); err != nil {
		return err
	}
	target, _, err := canaryTarget(snap, o.namespace, o.service)
	if err != nil {
		return err
	}
	for {
		if err := o.wait(ctx, run); err != nil {
			return err
		}
		result, decision, err := fetchAndJudge(ctx, prom, target, o.analysisFlags, o.now())
		if err != nil {
			return fmt.Errorf("%w\nThe canary stays at step %d/%d (%d%%); kubectl canary run %s resumes from it", err, run.Step+1, len(run.Steps), run.Steps[run.Step], o.service)
		}
		o.lastMetrics = metricsLine(result)
		next := *run
		analyzedAt := o.now().UTC().Truncate(time.Second)
		next.AnalyzedAt, next.LastVerdict, next.LastReason = &analyzedAt, string(decision.Verdict), decision.Reason
		fmt.Fprintf(o.Out, "step %d/%d (%d%%): %s: %s; %s\n", run.Step+1, len(run.Steps), run.Steps[run.Step], decision.Verdict, decision.Reason, o.lastMetrics)
		switch decision.Verdict {
		case analysis.Fail:
			if err := o.change(ctx, routing.ActionAbort, 0, &next); err != nil {
				return err
			}
			return &VerdictError{Decision: decision, subject: fmt.Sprintf("%s/%s failed its analysis at step %d/%d (%d%%) on %s and was aborted, all traffic is back on stable", o.namespace, o.service, run.Step+1, len(run.Steps), run.Steps[run.Step], decision.Metric)}
		case analysis.Inconclusive:
			next.Inconclusive++
			if err := o.change(ctx, routing.ActionWeight, run.Steps[run.Step], &next); err != nil {
				return err
			}
			if next.Inconclusive > o.maxInconclusive {
				return &VerdictError{Decision: decision, subject: fmt.Sprintf("%s/%s stays at step %d/%d (%d%%) after %d inconclusive analyses (--max-inconclusive %d); run again to keep waiting, or abort it", o.namespace, o.service, run.Step+1, len(run.Steps), run.Steps[run.Step], next.Inconclusive, o.maxInconclusive)}
			}
		case analysis.Pass:
			if run.Step == len(run.Steps)-1 {
				if o.noPromote {
					if err := o.change(ctx, routing.ActionWeight, run.Steps[run.Step], &next); err != nil {
						return err
					}
					fmt.Fprintf(o.Out, "every step passed; not promoted (--no-promote): kubectl canary promote %s when ready\n", o.service)
					return nil
				}
				return o.change(ctx, routing.ActionPromote, 0, &next)
			}
			next.Step++
			next.Inconclusive = 0
			next.StepStartedAt = analyzedAt
			if err := o.change(ctx, routing.ActionWeight, run.Steps[next.Step], &next); err != nil {
				return err
			}
		}
		run = &next
	}
}

// progressingState is the Service's running canary, nil when none runs.
func progressingState(snap *routing.Snapshot, service string) (*routing.State, error) {
	for _, vs := range append(append([]*unstructured.Unstructured{}, snap.VirtualServices...), snap.DestinationRules...) {
		st, err := routing.ReadState(vs, service)
		if err != nil {
			return nil, err
		}
		if st != nil && st.Phase == routing.PhaseProgressing {
			return st, nil
		}
	}
	return nil, nil
}

// firstStep is what a run does before its first wait: the change to make
// (none when a resumed canary is already at its step) and the run state to
// record with it.
type firstStep struct {
	action routing.Action // empty: nothing to change
	weight int
	run    *routing.RunState
	// says is what the run prints as it begins.
	says string
}

// planFirstStep starts the canary at the first step, resumes a recorded
// run, or takes over a canary started by hand at the first step not below
// its weight.
func (o *RunOptions) planFirstStep(st *routing.State) firstStep {
	now := o.now().UTC().Truncate(time.Second)
	switch {
	case st == nil:
		return firstStep{action: routing.ActionStart, weight: o.steps[0], run: &routing.RunState{Steps: o.steps, StepStartedAt: now},
			says: fmt.Sprintf("starting the canary at step 1/%d (%d%%)", len(o.steps), o.steps[0])}
	case st.Run != nil && slices.Equal(st.Run.Steps, o.steps) && st.Run.Step < len(o.steps):
		run := st.Run
		first := firstStep{run: run, says: fmt.Sprintf("resuming at step %d/%d (%d%%), begun %s ago", run.Step+1, len(run.Steps), run.Steps[run.Step], now.Sub(run.StepStartedAt).Round(time.Second))}
		if st.Weight != run.Steps[run.Step] {
			first.action, first.weight = routing.ActionWeight, run.Steps[run.Step]
		}
		return first
	default:
		step := len(o.steps) - 1
		for i, w := range o.steps {
			if w >= st.Weight {
				step = i
				break
			}
		}
		return firstStep{action: routing.ActionWeight, weight: o.steps[step], run: &routing.RunState{Steps: o.steps, Step: step, StepStartedAt: now},
			says: fmt.Sprintf("taking over the running canary (%d%%) at step %d/%d (%d%%)", st.Weight, step+1, len(o.steps), o.steps[step])}
	}
}

// begin makes the first step's change and returns the run it records.
func (o *RunOptions) begin(ctx context.Context, st *routing.State) (*routing.RunState, error) {
	first := o.planFirstStep(st)
	fmt.Fprintln(o.Out, first.says)
	if first.action == "" {
		return first.run, nil
	}
	return first.run, o.change(ctx, first.action, first.weight, first.run)
}

// dryRunPlan prints the plan of the run and writes nothing. A server dry run
// first sends the first step's writes with dryRun=All, so the API server
// validates and authorises them, and prints their diff.
func (o *RunOptions) dryRunPlan(ctx context.Context, st *routing.State, minimum analysis.ScrapeMinimum) error {
	if first := o.planFirstStep(st); o.dryRun == cmdutil.DryRunServer && first.action != "" {
		if err := o.changeWith(ctx, first.action, first.weight, first.run, cmdutil.DryRunServer); err != nil {
			return err
		}
	}
	o.printPlan(st, minimum)
	return nil
}

// change carries out one routing intent with the run's progress recorded in
// the state, through the same read-plan-write path as the other verbs. It is
// not cancelled by Ctrl-C: a write in flight completes.
func (o *RunOptions) change(ctx context.Context, action routing.Action, weight int, run *routing.RunState) error {
	return o.changeWith(ctx, action, weight, run, cmdutil.DryRunNone)
}

// changeWith is change, or its server dry run.
func (o *RunOptions) changeWith(ctx context.Context, action routing.Action, weight int, run *routing.RunState, dryRun cmdutil.DryRunStrategy) error {
	c := newChangeOptions(o.globalOptions, action)
	c.dryRun = dryRun
	c.namespace, c.service = o.namespace, o.service
	c.intent.Weight = weight
	c.intent.ClusterDomain = o.clusterDomain
	c.force, c.minAvailable = o.force, o.minAvailable
	c.amend = func(plan *routing.Plan) error { return routing.RecordRun(plan, run) }
	return c.run(context.WithoutCancel(ctx))
}

// wait sleeps until the step (or the hold after an inconclusive analysis)
// has run its interval, showing the progress.
func (o *RunOptions) wait(ctx context.Context, run *routing.RunState) error {
	from := run.StepStartedAt
	if run.AnalyzedAt != nil && run.AnalyzedAt.After(from) {
		from = *run.AnalyzedAt
	}
	until := from.Add(o.interval)
	label := fmt.Sprintf("step %d/%d: canary at %d%%", run.Step+1, len(run.Steps), run.Steps[run.Step])
	if run.Inconclusive > 0 {
		label += fmt.Sprintf(" (held, %d inconclusive)", run.Inconclusive)
	}
	interactive := o.onTerminal()
	if !interactive {
		fmt.Fprintf(o.Out, "%s: analysing in %s\n", label, time.Until(until).Round(time.Second).String())
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		left := until.Sub(o.now())
		if left <= 0 {
			if interactive {
				fmt.Fprint(o.Out, "\r\033[K")
			}
			return nil
		}
		if interactive {
			line := fmt.Sprintf("%s, analysing in %s", label, left.Round(time.Second))
			if o.lastMetrics != "" {
				line += "; last: " + o.lastMetrics
			}
			fmt.Fprintf(o.Out, "\r\033[K%s", line)
		}
		select {
		case <-ctx.Done():
			if interactive {
				fmt.Fprintln(o.Out)
			}
			return fmt.Errorf("interrupted at step %d/%d with the canary at %d%%; it stays there, and kubectl canary run %s resumes from this step", run.Step+1, len(run.Steps), run.Steps[run.Step], o.service)
		case <-tick.C:
		}
	}
}

func (o *RunOptions) printPlan(st *routing.State, minimum analysis.ScrapeMinimum) {
	switch {
	case st == nil:
		fmt.Fprintf(o.Out, "would start the canary of %s/%s\n", o.namespace, o.service)
	case st.Run != nil && slices.Equal(st.Run.Steps, o.steps):
		fmt.Fprintf(o.Out, "would resume the run of %s/%s at step %d/%d\n", o.namespace, o.service, st.Run.Step+1, len(st.Run.Steps))
	default:
		fmt.Fprintf(o.Out, "would take over the canary of %s/%s, now at %d%%\n", o.namespace, o.service, st.Weight)
	}
	t := o.thresholds()
	for i, w := range o.steps {
		fmt.Fprintf(o.Out, "step %d/%d: canary at %d%% for %s, then analyse the last %s\n", i+1, len(o.steps), w, o.interval, o.window)
	}
	fmt.Fprintf(o.Out, "shortest interval and window: %s, %s\n", model.Duration(minimum.Min), minimum.Source())
	last := "promote"
	if o.noPromote {
		last = "stop without promoting"
	}
	fmt.Fprintf(o.Out, "pass: next step (after the last: %s); inconclusive: hold the step, up to %d times; fail: abort\n", last, o.maxInconclusive)
	fmt.Fprintf(o.Out, "thresholds: max error rate %s, max error rate increase %s, max p99 %s, max latency ratio %g, min requests %g\n",
		formatMetric(t.MaxErrorRate*100, "%g%%"), formatMetric(t.MaxErrorRateIncrease*100, "%g points"), t.MaxP99, t.MaxLatencyRatio, t.MinRequests)
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
	return side("canary", r.Canary) + " | " + side("stable", r.Stable)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}
