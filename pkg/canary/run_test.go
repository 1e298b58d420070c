package canary

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

var (
	stepStarted = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	analysedAt  = stepStarted.Add(2*time.Minute + 300*time.Millisecond)
)

// The step table of run: from the run state and a verdict, the change to
// make and whether the run goes on.
func TestNextRunStep(t *testing.T) {
	plan := RunPlan{Steps: []int{10, 50, 100}, MaxInconclusive: 2}
	at := func(step, inconclusive int) routing.RunState {
		return routing.RunState{Steps: plan.Steps, Step: step, Inconclusive: inconclusive, StepStartedAt: stepStarted}
	}
	pass := analysis.Decision{Verdict: analysis.Pass, Reason: "healthy"}
	fail := analysis.Decision{Verdict: analysis.Fail, Reason: "error rate 5%", Metric: "error rate"}
	unsure := analysis.Decision{Verdict: analysis.Inconclusive, Reason: "too few requests"}
	noPromote := plan
	noPromote.NoPromote = true
	analysed := analysedAt.Truncate(time.Second)

	for name, tc := range map[string]struct {
		run      routing.RunState
		decision analysis.Decision
		plan     RunPlan
		action   routing.Action
		weight   int
		step     int
		held     int
		started  time.Time
		end      RunEnd
	}{
		"pass moves to the next step":               {at(0, 0), pass, plan, routing.ActionWeight, 50, 1, 0, analysed, RunGoesOn},
		"pass after holds starts the count again":   {at(1, 2), pass, plan, routing.ActionWeight, 100, 2, 0, analysed, RunGoesOn},
		"pass at the last step promotes":            {at(2, 0), pass, plan, routing.ActionPromote, 0, 2, 0, stepStarted, RunPromoted},
		"pass at the last step without promoting":   {at(2, 0), pass, noPromote, routing.ActionWeight, 100, 2, 0, stepStarted, RunPassedUnpromoted},
		"inconclusive holds the step":               {at(1, 0), unsure, plan, routing.ActionWeight, 50, 1, 1, stepStarted, RunGoesOn},
		"inconclusive up to the limit still holds":  {at(1, 1), unsure, plan, routing.ActionWeight, 50, 1, 2, stepStarted, RunGoesOn},
		"one inconclusive too many stops the run":   {at(1, 2), unsure, plan, routing.ActionWeight, 50, 1, 3, stepStarted, RunHeldTooLong},
		"fail aborts at once":                       {at(1, 0), fail, plan, routing.ActionAbort, 0, 1, 0, stepStarted, RunAborted},
		"fail at the last step aborts, not promote": {at(2, 1), fail, plan, routing.ActionAbort, 0, 2, 1, stepStarted, RunAborted},
	} {
		t.Run(name, func(t *testing.T) {
			got := NextRunStep(tc.run, tc.decision, tc.plan, analysedAt)
			assert.Equal(t, tc.action, got.Action)
			assert.Equal(t, tc.weight, got.Weight)
			assert.Equal(t, tc.end, got.End)
			assert.Equal(t, tc.step, got.Run.Step)
			assert.Equal(t, tc.held, got.Run.Inconclusive)
			assert.Equal(t, tc.started, got.Run.StepStartedAt)
			// Every step records the analysis it acted on.
			assert.Equal(t, analysed, *got.Run.AnalyzedAt)
			assert.Equal(t, string(tc.decision.Verdict), got.Run.LastVerdict)
			assert.Equal(t, tc.decision.Reason, got.Run.LastReason)
			assert.Nil(t, tc.run.AnalyzedAt, "the given run state is left as it was")
		})
	}
}

// A run starts a canary, resumes its own recorded run, or takes over one
// started by hand at the first step not below its weight.
func TestFirstRunStep(t *testing.T) {
	plan := RunPlan{Steps: []int{5, 25, 50, 100}}
	progressing := func(weight int, run *routing.RunState) *routing.State {
		return &routing.State{Phase: routing.PhaseProgressing, Weight: weight, Run: run}
	}
	recorded := &routing.RunState{Steps: plan.Steps, Step: 2, StepStartedAt: stepStarted}
	otherSteps := &routing.RunState{Steps: []int{10, 100}, Step: 1, StepStartedAt: stepStarted}
	for name, tc := range map[string]struct {
		state  *routing.State
		action routing.Action
		weight int
		step   int
		says   string
	}{
		"no canary: start at the first step":    {nil, routing.ActionStart, 5, 0, "starting the canary at step 1/4 (5%)"},
		"own run at its weight: nothing to do":  {progressing(50, recorded), "", 0, 2, "resuming at step 3/4 (50%), begun 2m0s ago"},
		"own run moved by hand: set it back":    {progressing(30, recorded), routing.ActionWeight, 50, 2, "resuming at step 3/4 (50%)"},
		"started by hand: the step not below":   {progressing(20, nil), routing.ActionWeight, 25, 1, "taking over the running canary (20%) at step 2/4 (25%)"},
		"above every step: the last step":       {progressing(100, nil), routing.ActionWeight, 100, 3, "at step 4/4 (100%)"},
		"a run with other steps is taken over":  {progressing(100, otherSteps), routing.ActionWeight, 100, 3, "taking over the running canary (100%)"},
		"a weight between steps takes the next": {progressing(26, nil), routing.ActionWeight, 50, 2, "at step 3/4 (50%)"},
	} {
		t.Run(name, func(t *testing.T) {
			got := FirstRunStep(tc.state, plan, stepStarted.Add(2*time.Minute))
			assert.Equal(t, tc.action, got.Action)
			assert.Equal(t, tc.weight, got.Weight)
			assert.Equal(t, tc.step, got.Run.Step)
			assert.Equal(t, plan.Steps, got.Run.Steps)
			assert.Contains(t, got.Says, tc.says)
			assert.Equal(t, RunGoesOn, got.End)
		})
	}
}

// The analysis is due an interval after the step began or, once held, after
// the last analysis.
func TestAnalysisDue(t *testing.T) {
	run := routing.RunState{StepStartedAt: stepStarted}
	assert.Equal(t, stepStarted.Add(time.Minute), AnalysisDue(run, time.Minute))
	later := stepStarted.Add(90 * time.Second)
	run.AnalyzedAt = &later
	assert.Equal(t, later.Add(time.Minute), AnalysisDue(run, time.Minute))
}

// progressRecorder records what a run shows.
type progressRecorder struct{ events []string }

func (p *progressRecorder) Began(says string) { p.events = append(p.events, "began: "+says) }
func (p *progressRecorder) Waiting(run routing.RunState, left time.Duration) {
	p.events = append(p.events, "waiting")
}
func (p *progressRecorder) WaitOver(interrupted bool) {
	p.events = append(p.events, map[bool]string{true: "interrupted", false: "due"}[interrupted])
}
func (p *progressRecorder) Analysed(routing.RunState, string, analysis.Decision, analysis.Result) {
	p.events = append(p.events, "analysed")
}

// A run waits out its interval, showing it, and an interrupted wait says
// where the canary stays and how to resume.
func TestRunnerWaits(t *testing.T) {
	progress := &progressRecorder{}
	r := &Runner{Plan: RunPlan{Interval: 1500 * time.Millisecond}, Request: Request{Service: "reviews"}, Progress: progress, Now: time.Now}
	run := routing.RunState{Steps: []int{10, 50}, Step: 1, StepStartedAt: time.Now()}
	require.NoError(t, r.wait(context.Background(), run))
	require.GreaterOrEqual(t, len(progress.events), 2)
	assert.Equal(t, "waiting", progress.events[0])
	assert.Equal(t, "due", progress.events[len(progress.events)-1], "the wait ends once due")

	progress.events = nil
	r.Plan.Interval = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := r.wait(ctx, run)
	assert.EqualError(t, err, "interrupted at step 2/2 with the canary at 50%; it stays there, and kubectl canary run reviews resumes from this step")
	assert.Equal(t, []string{"waiting", "interrupted"}, progress.events)
}

// runOver is a run over the clusters of stores, in the order given.
func runOver(progress RunProgress, names []string, stores map[string]*memoryStore) *Runner {
	r := &Runner{Plan: RunPlan{Steps: []int{10, 50, 100}, Interval: time.Minute}, Request: start(nil, 0), Progress: progress, Now: time.Now}
	for _, name := range names {
		r.Clusters = append(r.Clusters, RunCluster{Member: Member{Context: name, Engine: &Engine{Store: stores[name]}}})
	}
	return r
}

// Clusters left at different steps (a run whose write failed in one of
// them) resume together from the least advanced, set again in every one.
func TestRunOverClustersResumesFromTheLeastAdvanced(t *testing.T) {
	ctx := context.Background()
	stores := map[string]*memoryStore{"east": newMemoryStore(t, "no-istio"), "west": newMemoryStore(t, "no-istio")}
	progress := &progressRecorder{}
	r := runOver(progress, []string{"east", "west"}, stores)
	// The first step in both, then the second step in east only.
	require.NoError(t, r.take(ctx, r.firstStep(nil), NoDryRun))
	second := RunStep{Action: routing.ActionWeight, Weight: 50, Run: routing.RunState{Steps: r.Plan.Steps, Step: 1, StepStartedAt: time.Now().UTC().Truncate(time.Second)}}
	east := runOver(progress, []string{"east"}, stores)
	require.NoError(t, east.take(ctx, second, NoDryRun))

	st, err := r.RunningState(ctx)
	require.NoError(t, err)
	require.NotNil(t, st)
	assert.Equal(t, 10, st.Weight, "west's canary, the least advanced")
	assert.Equal(t, []string{"began: the clusters differ (east 50%, west 10%): every cluster resumes from 10%"}, progress.events)
	first := r.firstStep(st)
	assert.Equal(t, routing.ActionWeight, first.Action, "set again in every cluster, though west stands there")
	assert.Equal(t, 10, first.Weight)
	require.NoError(t, r.take(ctx, first, NoDryRun))
	for name := range stores {
		again, err := runOver(progress, []string{name}, stores).RunningState(ctx)
		require.NoError(t, err)
		assert.Equal(t, 10, again.Weight, name)
		assert.Equal(t, 0, again.Run.Step, name)
	}
}

// A cluster without the canary makes the run start it everywhere; one
// cluster alone resumes without a change when its weight is the step's.
func TestRunOverClustersStartsWhereOneHasNoCanary(t *testing.T) {
	ctx := context.Background()
	stores := map[string]*memoryStore{"east": newMemoryStore(t, "no-istio"), "west": newMemoryStore(t, "no-istio")}
	progress := &progressRecorder{}
	east := runOver(progress, []string{"east"}, stores)
	require.NoError(t, east.take(ctx, east.firstStep(nil), NoDryRun))
	st, err := east.RunningState(ctx)
	require.NoError(t, err)
	assert.Equal(t, routing.Action(""), east.firstStep(st).Action, "one cluster at its step: nothing to change")

	both := runOver(progress, []string{"east", "west"}, stores)
	st, err = both.RunningState(ctx)
	require.NoError(t, err)
	assert.Nil(t, st, "west has no canary")
	assert.Contains(t, progress.events, "began: the clusters differ (east 10%, west no canary): every cluster starts at the first step")
	assert.Equal(t, routing.ActionStart, both.firstStep(st).Action)
}

func TestLeastAdvanced(t *testing.T) {
	at := func(w int) *routing.State { return &routing.State{Weight: w} }
	for name, tc := range map[string]struct {
		states []*routing.State
		want   *routing.State
		differ bool
	}{
		"none anywhere":    {[]*routing.State{nil, nil}, nil, false},
		"same":             {[]*routing.State{at(10), at(10)}, at(10), false},
		"lowest weight":    {[]*routing.State{at(50), at(10), at(25)}, at(10), true},
		"missing in one":   {[]*routing.State{at(50), nil}, nil, true},
		"missing in first": {[]*routing.State{nil, at(50)}, nil, true},
	} {
		got, differ := leastAdvanced(tc.states)
		assert.Equal(t, tc.want, got, name)
		assert.Equal(t, tc.differ, differ, name)
	}
}
