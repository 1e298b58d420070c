package canary

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// Runner steps a canary through a RunPlan: it waits each interval, judges
// the canary by its metrics and makes the change NextRunStep says, through
// the Engine like every other command. With several clusters (a
// multi-primary mesh) every step is made in all of them together, as a
// Fleet makes it, and the worst cluster's verdict decides.
type Runner struct {
	Clusters  []RunCluster
	Plan      RunPlan
	Judgement Judgement
	// Request is the base of every change: the Service, the cluster
	// domain and the preflight settings.
	Request  Request
	Progress RunProgress
	Now      func() time.Time
}

// RunCluster is one cluster a run steps and judges: its engine and the
// observers of its changes (the command's report), and the Prometheus its
// canary is judged by.
type RunCluster struct {
	Member
	Prometheus *Prometheus
	// IstioCluster, when Prometheus holds the metrics of several clusters,
	// is this one's Istio cluster ID, which its requests carry.
	IstioCluster string
	// Scrape is the cluster's Prometheus scrape minimum (ReadScrapeMinimum).
	Scrape analysis.ScrapeMinimum
}

// RunProgress shows a run as it goes.
type RunProgress interface {
	// Began says how the run begins (start, resume or take over).
	Began(says string)
	// Waiting is called about every second until the analysis is due.
	Waiting(run routing.RunState, left time.Duration)
	// WaitOver ends a wait, interrupted or not.
	WaitOver(interrupted bool)
	// Analysed reports the verdict of a step's analysis in one cluster
	// (cluster is its context, empty when the run has one cluster).
	Analysed(run routing.RunState, cluster string, d analysis.Decision, r analysis.Result)
}

// ReadScrapeMinimum reads each cluster's Prometheus scrape minimum and
// returns the longest: the shortest interval and window every cluster's
// Prometheus allows.
func (r *Runner) ReadScrapeMinimum(ctx context.Context) analysis.ScrapeMinimum {
	forEachCluster(r.Clusters, func(_ int, c *RunCluster) error {
		c.Scrape = c.Prometheus.ScrapeMinimum(ctx, r.Request.Namespace, r.Request.Service, r.Now())
		return nil
	})
	longest := r.Clusters[0].Scrape
	for _, c := range r.Clusters[1:] {
		if c.Scrape.Min > longest.Min {
			longest = c.Scrape
		}
	}
	return longest
}

// RunningState reads the Service's running canary, nil when none runs,
// and refuses versions in the request that are not the running canary's.
// Across clusters it is the least advanced one (nil where a cluster has
// none), which every cluster resumes from.
func (r *Runner) RunningState(ctx context.Context) (*routing.State, error) {
	states := make([]*routing.State, len(r.Clusters))
	err := forEachCluster(r.Clusters, func(i int, c *RunCluster) error {
		snap, err := c.Engine.Store.Read(ctx, Query{Namespace: r.Request.Namespace, Service: r.Request.Service, ClusterDomain: r.Request.Intent.ClusterDomain})
		if err != nil {
			return err
		}
		if states[i], err = routing.RunningCanary(*snap, r.Request.Service); err != nil || states[i] == nil {
			return err
		}
		// A run that resumes or takes over a canary goes on with its
		// versions: versions asked for must be the same.
		return routing.AgreesWithRunning(*snap, states[i], r.Request.Intent)
	})
	if err != nil {
		return nil, err
	}
	least, differ := leastAdvanced(states)
	if differ {
		from := "starts at the first step"
		if least != nil {
			from = fmt.Sprintf("resumes from %d%%", least.Weight)
		}
		r.Progress.Began(fmt.Sprintf("the clusters differ (%s): every cluster %s", r.statesText(states), from))
	}
	return least, nil
}

// leastAdvanced is the running canary with the lowest weight (none at all
// before any), and whether the clusters' canaries differ.
func leastAdvanced(states []*routing.State) (*routing.State, bool) {
	least, differ := states[0], false
	for _, st := range states[1:] {
		differ = differ || weightText(st) != weightText(least)
		if least != nil && (st == nil || st.Weight < least.Weight) {
			least = st
		}
	}
	return least, differ
}

func weightText(st *routing.State) string {
	if st == nil {
		return "no canary"
	}
	return fmt.Sprintf("%d%%", st.Weight)
}

func (r *Runner) statesText(states []*routing.State) string {
	var parts []string
	for i, c := range r.Clusters {
		parts = append(parts, c.Context+" "+weightText(states[i]))
	}
	return strings.Join(parts, ", ")
}

// PlanFirstStep is the step the run begins with (st is the running
// canary, nil when none runs), planned and checked by the engine as the
// real run's first change is, without writing it: a client dry run, or a
// server dry run that the API server validates and authorises (its diff
// shown by the clusters' observers). A first step the real run would
// refuse is refused here.
func (r *Runner) PlanFirstStep(ctx context.Context, st *routing.State, dryRun DryRun) (RunStep, error) {
	first := r.firstStep(st)
	if first.Action == "" {
		return first, nil
	}
	return first, r.take(ctx, first, dryRun)
}

// CheckPrometheus asks each cluster's Prometheus for the Service's request
// series before the run writes anything: a Prometheus that cannot be
// queried stops the run here. It returns the contexts (empty for a single
// cluster) whose Prometheus has no series of the Service yet, which the
// first analysis waits for.
func (r *Runner) CheckPrometheus(ctx context.Context) (withoutSeries []string, err error) {
	has := make([]bool, len(r.Clusters))
	err = forEachCluster(r.Clusters, func(i int, c *RunCluster) error {
		var err error
		has[i], err = c.Prometheus.HasSeries(ctx, analysis.Target{Namespace: r.Request.Namespace, Service: r.Request.Service, Cluster: c.IstioCluster}, r.Now())
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, c := range r.Clusters {
		if !has[i] {
			withoutSeries = append(withoutSeries, c.Context)
		}
	}
	return withoutSeries, nil
}

// NoSeriesYet says what the run does while Prometheus has no request
// series of the Service (in the clusters named, when there are several).
func (r *Runner) NoSeriesYet(contexts []string) string {
	in := ""
	if len(r.Clusters) > 1 {
		in = " in " + strings.Join(contexts, ", ")
	}
	return fmt.Sprintf("Prometheus%s has no request metrics of %s/%s yet: each analysis without them is inconclusive and holds the step (up to %d times), so the run waits for them", in, r.Request.Namespace, r.Request.Service, r.Plan.MaxInconclusive)
}

// firstStep is FirstRunStep; across clusters a resumed step is set again
// in every cluster, since they may have stood at different weights.
func (r *Runner) firstStep(st *routing.State) RunStep {
	first := FirstRunStep(st, r.Plan, r.Now())
	if first.Action == "" && len(r.Clusters) > 1 {
		first.Action, first.Weight = routing.ActionWeight, first.Run.Steps[first.Run.Step]
	}
	return first
}

// Run steps the canary (st, nil when none runs) until it is promoted,
// aborted or stopped.
func (r *Runner) Run(ctx context.Context, st *routing.State) error {
	first := r.firstStep(st)
	r.Progress.Began(first.Says)
	if first.Action != "" {
		if err := r.take(ctx, first, NoDryRun); err != nil {
			return err
		}
	}
	// The versions do not change during a run: read them once, after start.
	targets, err := r.targets(ctx)
	if err != nil {
		return err
	}
	run := first.Run
	for {
		if err := r.wait(ctx, run); err != nil {
			return err
		}
		worst, err := r.judge(ctx, run, targets)
		if err != nil {
			return routing.Errorf("%w\nThe canary stays at step %s; kubectl canary run %s{Target} resumes from it", err, stepName(run), r.Request.Service)
		}
		next := NextRunStep(run, worst.decision, r.Plan, r.Now())
		if err := r.take(ctx, next, NoDryRun); err != nil {
			return err
		}
		if next.End != RunGoesOn {
			return r.ended(run, next, worst)
		}
		// The split is judged on the traffic since the weight last changed;
		// a hold records the run but leaves the routing as it was.
		for i := range targets {
			if next.Weight != targets[i].Routing.Weight {
				targets[i].Routing.Weight, targets[i].Routing.ChangedAt = next.Weight, r.Now()
			}
		}
		run = next.Run
	}
}

// targets reads what each cluster's analysis judges: the running canary
// and the Deployments of its versions.
func (r *Runner) targets(ctx context.Context) ([]analysis.Target, error) {
	targets := make([]analysis.Target, len(r.Clusters))
	err := forEachCluster(r.Clusters, func(i int, c *RunCluster) error {
		var err error
		targets[i], _, err = RunningCanary(ctx, c.Engine.Store, r.Request.Namespace, r.Request.Service, r.Request.Intent.ClusterDomain)
		targets[i].Cluster = c.IstioCluster
		return err
	})
	return targets, err
}

// clusterVerdict is one cluster's analysis.
type clusterVerdict struct {
	cluster  string
	decision analysis.Decision
}

// judge analyses the canary in every cluster and returns the worst verdict.
func (r *Runner) judge(ctx context.Context, run routing.RunState, targets []analysis.Target) (clusterVerdict, error) {
	verdicts := make([]clusterVerdict, len(r.Clusters))
	results := make([]analysis.Result, len(r.Clusters))
	err := forEachCluster(r.Clusters, func(i int, c *RunCluster) error {
		// Before the Service's first series the scrape interval may be
		// unknown, and the split's settling time with it: read it again.
		if c.Scrape.Unknown != "" {
			c.Scrape = c.Prometheus.ScrapeMinimum(ctx, r.Request.Namespace, r.Request.Service, r.Now())
		}
		j := r.Judgement
		j.Scrape = c.Scrape
		var err error
		results[i], verdicts[i].decision, err = c.Prometheus.Judge(ctx, targets[i], j, r.Now())
		verdicts[i].cluster = c.Context
		return err
	})
	if err != nil {
		return clusterVerdict{}, err
	}
	worst := verdicts[0]
	for i, v := range verdicts {
		r.Progress.Analysed(run, v.cluster, v.decision, results[i])
		if VerdictRank(v.decision.Verdict) > VerdictRank(worst.decision.Verdict) {
			worst = v
		}
	}
	return worst, nil
}

// VerdictRank orders verdicts from best to worst.
func VerdictRank(v analysis.Verdict) int {
	return map[analysis.Verdict]int{analysis.Pass: 0, analysis.Inconclusive: 1, analysis.Fail: 2}[v]
}

// forEachCluster calls fn for every cluster at once; the errors name
// their cluster when there are several.
func forEachCluster(clusters []RunCluster, fn func(i int, c *RunCluster) error) error {
	errs := make([]error, len(clusters))
	var wg sync.WaitGroup
	for i := range clusters {
		wg.Go(func() {
			if err := fn(i, &clusters[i]); err != nil && len(clusters) > 1 {
				errs[i] = fmt.Errorf("cluster %s: %w", clusters[i].Context, err)
			} else {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	if len(errs) == 1 {
		// As it is: a joined error hides its Text from Unwrap.
		return errs[0]
	}
	return errors.Join(errs...)
}

// take makes a step's change with the run state recorded in the canary's
// state. It is not cancelled by Ctrl-C: a write in flight completes. Only
// the start takes the intent's versions and routing; the later steps
// change the weight, promote or abort the canary as it runs. A client dry
// run shows nothing: the run prints its own plan.
func (r *Runner) take(ctx context.Context, step RunStep, dryRun DryRun) error {
	req := r.Request
	if step.Action != routing.ActionStart {
		req.Intent = routing.Intent{VersionLabel: req.Intent.VersionLabel, ClusterDomain: req.Intent.ClusterDomain}
	}
	req.Intent.Action, req.Intent.Weight = step.Action, step.Weight
	req.DryRun = dryRun
	recorded := step.Run
	req.Run = &recorded
	ctx = context.WithoutCancel(ctx)
	observers := func(c RunCluster) []Observer {
		if dryRun == ClientDryRun {
			return nil
		}
		return c.Observers
	}
	if len(r.Clusters) == 1 {
		c := r.Clusters[0]
		_, err := c.Engine.Change(ctx, req, observers(c)...)
		return err
	}
	fleet := &Fleet{}
	for _, c := range r.Clusters {
		m := c.Member
		m.Observers = observers(c)
		fleet.Members = append(fleet.Members, m)
	}
	_, err := fleet.Change(ctx, req)
	return err
}

// ended is the error (or nil) a run ends with, once its last change is made.
func (r *Runner) ended(run routing.RunState, last RunStep, worst clusterVerdict) error {
	svc, d := r.Request.Namespace+"/"+r.Request.Service, worst.decision
	if len(r.Clusters) > 1 {
		svc += " in cluster " + worst.cluster
	}
	switch last.End {
	case RunAborted:
		return &VerdictError{Decision: d, Subject: fmt.Sprintf("%s failed its analysis at step %s on %s and was aborted, all traffic is back on stable", svc, stepName(run), d.Metric)}
	case RunHeldTooLong:
		return &VerdictError{Decision: d, Subject: fmt.Sprintf("%s stays at step %s after %d inconclusive analyses (--max-inconclusive %d); run again to keep waiting, or abort it", svc, stepName(run), last.Run.Inconclusive, r.Plan.MaxInconclusive)}
	case RunPassedUnpromoted:
		r.Progress.Began(fmt.Sprintf("every step passed; not promoted (--no-promote): kubectl canary promote %s when ready", r.Request.Service))
	}
	return nil
}

// stepName is "2/5 (10%)".
func stepName(run routing.RunState) string {
	return fmt.Sprintf("%d/%d (%d%%)", run.Step+1, len(run.Steps), run.Steps[run.Step])
}

// wait sleeps until the analysis is due, showing the progress each second.
func (r *Runner) wait(ctx context.Context, run routing.RunState) error {
	due := AnalysisDue(run, r.Plan.Interval)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		left := due.Sub(r.Now())
		if left <= 0 {
			r.Progress.WaitOver(false)
			return nil
		}
		r.Progress.Waiting(run, left)
		select {
		case <-ctx.Done():
			r.Progress.WaitOver(true)
			return routing.Errorf("interrupted at step %d/%d with the canary at %d%%; it stays there, and kubectl canary run %s{Target} resumes from this step", run.Step+1, len(run.Steps), run.Steps[run.Step], r.Request.Service)
		case <-tick.C:
		}
	}
}
