package routing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// RecordRun adds the run's progress to the state of every object the plan
// writes and keeps the rest of the state; a later plan carries it on, and a
// second recording of the same progress changes nothing.
func TestRecordRunKeepsProgressInTheState(t *testing.T) {
	snap := loadSnapshot(t, "no-istio")
	plan, err := Compute(*snap, start(20))
	require.NoError(t, err)
	at := testNow.Add(time.Minute)
	run := &RunState{Steps: []int{20, 50, 100}, Step: 0, StepStartedAt: testNow, LastVerdict: "pass", AnalyzedAt: &at}
	require.NoError(t, RecordRun(plan, run))
	assert.Equal(t, run, plan.State.Run)
	recorded := 0
	for _, c := range plan.Changes {
		st, err := ReadState(c.Desired, "reviews")
		require.NoError(t, err)
		require.NotNil(t, st)
		assert.Equal(t, run, st.Run)
		assert.Equal(t, "Progressing", string(st.Phase), "the rest of the state stays")
		recorded++
	}
	assert.Positive(t, recorded)
	snap.apply(plan)

	// A weight change keeps the recorded run as it was.
	plan, err = Compute(*snap, weight(50))
	require.NoError(t, err)
	assert.Equal(t, run, plan.State.Run)

	// Recording the same progress again on an unchanged weight writes nothing.
	plan, err = Compute(*snap, weight(20))
	require.NoError(t, err)
	require.NoError(t, RecordRun(plan, run))
	assert.False(t, plan.Changed())
}

func TestStatusShowsTheRun(t *testing.T) {
	cs := CanaryStatus{Mirror: 5, Run: &RunState{Steps: []int{5, 50, 100}, Step: 1, LastVerdict: "pass"}}
	assert.Equal(t, "mirror 5%, run step 2/3, last pass", cs.Routing())
	cs.Run.LastVerdict = ""
	assert.Equal(t, "mirror 5%, run step 2/3", cs.Routing())
}

// RunningCanary finds the canary in progress, whichever object records it,
// and none before start or after promote.
func TestRunningCanary(t *testing.T) {
	snap := loadSnapshot(t, "bookinfo-adopted")
	st, err := RunningCanary(*snap, "reviews")
	require.NoError(t, err)
	assert.Nil(t, st, "no canary before start")

	plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3"})
	require.NoError(t, err)
	snap.apply(plan)
	st, err = RunningCanary(*snap, "reviews")
	require.NoError(t, err)
	require.NotNil(t, st)
	assert.Equal(t, []string{"Progressing", "v1", "v3"}, []string{string(st.Phase), st.Stable, st.Canary})
	assert.Equal(t, 10, st.Weight, "the VirtualService's record speaks for the canary")
	other, err := RunningCanary(*snap, "ratings")
	require.NoError(t, err)
	assert.Nil(t, other, "another Service's canary")

	// The DestinationRule's record alone is enough.
	dr := *snap
	dr.VirtualServices = nil
	st, err = RunningCanary(dr, "reviews")
	require.NoError(t, err)
	require.NotNil(t, st)
	assert.Equal(t, "v3", st.Canary)

	plan, err = Compute(*snap, promote)
	require.NoError(t, err)
	snap.apply(plan)
	st, err = RunningCanary(*snap, "reviews")
	require.NoError(t, err)
	assert.Nil(t, st, "none after promote")

	snap.VirtualServices[0].SetAnnotations(map[string]string{StateKey("reviews"): "{not json"})
	_, err = RunningCanary(*snap, "reviews")
	assert.ErrorContains(t, err, "is not valid canary state")
}
