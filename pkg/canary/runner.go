package canary

import (
	"context"
	"fmt"
	"time"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// Runner steps a canary through a RunPlan: it waits each interval, judges
// the canary by its metrics and makes the change NextRunStep says, through
// the Engine like every other command.
type Runner struct {
	Engine     *Engine
	Prometheus *Prometheus
	Plan       RunPlan
	Judgement  Judgement
	// Request is the base of every change: the Service, the cluster
	// domain and the preflight settings.
	Request Request
	// Observers see every change (the command's report).
	Observers []Observer
	Progress  RunProgress
	Now       func() time.Time
}

// RunProgress shows a run as it goes.
type RunProgress interface {
	// Began says how the run begins (start, resume or take over).
	Began(says string)
	// Waiting is called about every second until the analysis is due.
	Waiting(run routing.RunState, left time.Duration)
	// WaitOver ends a wait, interrupted or not.
	WaitOver(interrupted bool)
	// Analysed reports the verdict of a step's analysis.
	Analysed(run routing.RunState, d analysis.Decision, r analysis.Result)
}

// RunningState reads the Service's running canary, nil when none runs.
func (r *Runner) RunningState(ctx context.Context) (*routing.State, error) {
	snap, err := r.Engine.Store.Read(ctx, Query{Namespace: r.Request.Namespace, Service: r.Request.Service, ClusterDomain: r.Request.Intent.ClusterDomain})
	if err != nil {
		return nil, err
	}
	return routing.RunningCanary(*snap, r.Request.Service)
}

// DryRunFirstStep sends the first step's writes as a server dry run, so
// the API server validates and authorises them; nothing is written.
func (r *Runner) DryRunFirstStep(ctx context.Context, st *routing.State) error {
	first := FirstRunStep(st, r.Plan, r.Now())
	if first.Action == "" {
		return nil
	}
	return r.take(ctx, first, ServerDryRun)
}

// Run steps the canary (st, nil when none runs) until it is promoted,
// aborted or stopped.
func (r *Runner) Run(ctx context.Context, st *routing.State) error {
	first := FirstRunStep(st, r.Plan, r.Now())
	r.Progress.Began(first.Says)
	if first.Action != "" {
		if err := r.take(ctx, first, NoDryRun); err != nil {
			return err
		}
	}
	// The versions do not change during a run: read them once, after start.
	target, _, err := RunningCanary(ctx, r.Engine.Store, r.Request.Namespace, r.Request.Service, r.Request.Intent.ClusterDomain)
	if err != nil {
		return err
	}
	run := first.Run
	for {
		if err := r.wait(ctx, run); err != nil {
			return err
		}
		// Before the Service's first series the scrape interval may be
		// unknown, and the split's settling time with it: read it again.
		if r.Judgement.Scrape.Unknown != "" {
			r.Judgement.Scrape = r.Prometheus.ScrapeMinimum(ctx, r.Request.Namespace, r.Request.Service, r.Now())
		}
		result, decision, err := r.Prometheus.Judge(ctx, target, r.Judgement, r.Now())
		if err != nil {
			return fmt.Errorf("%w\nThe canary stays at step %s; kubectl canary run %s resumes from it", err, stepName(run), r.Request.Service)
		}
		r.Progress.Analysed(run, decision, result)
		next := NextRunStep(run, decision, r.Plan, r.Now())
		if err := r.take(ctx, next, NoDryRun); err != nil {
			return err
		}
		if next.End != RunGoesOn {
			return r.ended(run, next, decision)
		}
		// The split is judged on the traffic since the weight last changed;
		// a hold records the run but leaves the routing as it was.
		if next.Weight != target.Routing.Weight {
			target.Routing.Weight, target.Routing.ChangedAt = next.Weight, r.Now()
		}
		run = next.Run
	}
}

// take makes a step's change with the run state recorded in the canary's
// state. It is not cancelled by Ctrl-C: a write in flight completes.
func (r *Runner) take(ctx context.Context, step RunStep, dryRun DryRun) error {
	req := r.Request
	req.Intent.Action, req.Intent.Weight = step.Action, step.Weight
	req.DryRun = dryRun
	recorded := step.Run
	req.Run = &recorded
	_, err := r.Engine.Change(context.WithoutCancel(ctx), req, r.Observers...)
	return err
}

// ended is the error (or nil) a run ends with, once its last change is made.
func (r *Runner) ended(run routing.RunState, last RunStep, d analysis.Decision) error {
	svc := r.Request.Namespace + "/" + r.Request.Service
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
	due := analysisDue(run, r.Plan.Interval)
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
			return fmt.Errorf("interrupted at step %d/%d with the canary at %d%%; it stays there, and kubectl canary run %s resumes from this step", run.Step+1, len(run.Steps), run.Steps[run.Step], r.Request.Service)
		case <-tick.C:
		}
	}
}
