package canary

import (
	"fmt"
	"slices"
	"time"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// RunPlan is how `run` steps a canary: the weights in turn, how long each
// runs before it is analysed, how many inconclusive analyses a step may
// hold for, and whether a canary that passed every step is promoted.
type RunPlan struct {
	Steps           []int
	Interval        time.Duration
	MaxInconclusive int
	NoPromote       bool
}

// RunEnd says whether a run goes on after a step, and how it ended if not.
type RunEnd int

const (
	// RunGoesOn: wait for the next analysis.
	RunGoesOn RunEnd = iota
	// RunAborted: the analysis failed; traffic goes back to stable.
	RunAborted
	// RunHeldTooLong: too many inconclusive analyses; the canary stays.
	RunHeldTooLong
	// RunPassedUnpromoted: every step passed; promotion is left to the user.
	RunPassedUnpromoted
	// RunPromoted: every step passed and the canary is promoted.
	RunPromoted
)

// RunStep is what a run does next: the routing change to make (none when
// Action is empty), the run state to record with it, and whether the run
// goes on.
type RunStep struct {
	Action routing.Action
	Weight int
	Run    routing.RunState
	End    RunEnd
	// Says is what the run reports as it takes the step (first steps).
	Says string
}

// FirstRunStep starts the canary at the first step, resumes a recorded run
// with the same steps, or takes over a canary started by hand at the first
// step not below its weight. st is the running canary, nil when none runs.
func FirstRunStep(st *routing.State, p RunPlan, now time.Time) RunStep {
	now = now.UTC().Truncate(time.Second)
	switch {
	case st == nil:
		return RunStep{Action: routing.ActionStart, Weight: p.Steps[0], Run: routing.RunState{Steps: p.Steps, StepStartedAt: now},
			Says: fmt.Sprintf("starting the canary at step 1/%d (%d%%)", len(p.Steps), p.Steps[0])}
	case st.Run != nil && slices.Equal(st.Run.Steps, p.Steps) && st.Run.Step < len(p.Steps):
		run := *st.Run
		first := RunStep{Run: run, Says: fmt.Sprintf("resuming at step %d/%d (%d%%), begun %s ago", run.Step+1, len(run.Steps), run.Steps[run.Step], now.Sub(run.StepStartedAt).Round(time.Second))}
		if st.Weight != run.Steps[run.Step] {
			first.Action, first.Weight = routing.ActionWeight, run.Steps[run.Step]
		}
		return first
	default:
		step := len(p.Steps) - 1
		for i, w := range p.Steps {
			if w >= st.Weight {
				step = i
				break
			}
		}
		return RunStep{Action: routing.ActionWeight, Weight: p.Steps[step], Run: routing.RunState{Steps: p.Steps, Step: step, StepStartedAt: now},
			Says: fmt.Sprintf("taking over the running canary (%d%%) at step %d/%d (%d%%)", st.Weight, step+1, len(p.Steps), p.Steps[step])}
	}
}

// NextRunStep is the step table of `run`: from the run state and the
// verdict of its latest analysis (made at analyzedAt), the change to make.
// A pass moves to the next step or, after the last, promotes (or stops,
// with NoPromote); an inconclusive analysis holds the step, up to
// MaxInconclusive times; a failure aborts.
func NextRunStep(run routing.RunState, d analysis.Decision, p RunPlan, analyzedAt time.Time) RunStep {
	analyzedAt = analyzedAt.UTC().Truncate(time.Second)
	next := run
	next.AnalyzedAt, next.LastVerdict, next.LastReason = &analyzedAt, string(d.Verdict), d.Reason
	hold := RunStep{Action: routing.ActionWeight, Weight: run.Steps[run.Step], Run: next}
	switch {
	case d.Verdict == analysis.Fail:
		return RunStep{Action: routing.ActionAbort, Run: next, End: RunAborted}
	case d.Verdict != analysis.Pass:
		hold.Run.Inconclusive++
		if hold.Run.Inconclusive > p.MaxInconclusive {
			hold.End = RunHeldTooLong
		}
		return hold
	case run.Step < len(run.Steps)-1:
		next.Step++
		next.Inconclusive = 0
		next.StepStartedAt = analyzedAt
		return RunStep{Action: routing.ActionWeight, Weight: run.Steps[next.Step], Run: next}
	case p.NoPromote:
		hold.End = RunPassedUnpromoted
		return hold
	default:
		return RunStep{Action: routing.ActionPromote, Run: next, End: RunPromoted}
	}
}

// AnalysisDue is when the step (or the hold after an inconclusive
// analysis) has run its interval.
func AnalysisDue(run routing.RunState, interval time.Duration) time.Time {
	from := run.StepStartedAt
	if run.AnalyzedAt != nil && run.AnalyzedAt.After(from) {
		from = *run.AnalyzedAt
	}
	return from.Add(interval)
}
