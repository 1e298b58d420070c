package routing

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// toLegacyState rewrites obj's canary state of service as versions before
// the pre-start annotation recorded it: the spec inside the state.
func toLegacyState(t *testing.T, obj *unstructured.Unstructured, service string) {
	t.Helper()
	annotations := obj.GetAnnotations()
	spec, ok := annotations[PreStartKey(service)]
	require.True(t, ok, "%s %s has no pre-start annotation", obj.GetKind(), obj.GetName())
	var st map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(annotations[StateKey(service)]), &st))
	st["preStartSpec"] = json.RawMessage(spec)
	data, err := json.Marshal(st)
	require.NoError(t, err)
	annotations[StateKey(service)] = string(data)
	delete(annotations, PreStartKey(service))
	obj.SetAnnotations(annotations)
}

func TestStateKeepsThePreStartSpecInItsOwnAnnotation(t *testing.T) {
	snap := loadSnapshot(t, "bookinfo-adopted")
	plan, err := Compute(*snap, Intent{Action: ActionStart, Canary: "v3", Weight: 10})
	require.NoError(t, err)
	for _, c := range plan.Changes {
		assert.NotContains(t, c.Desired.GetAnnotations()[StateKey("reviews")], "preStartSpec", c.Desired.GetKind())
		var spec map[string]interface{}
		require.NoError(t, json.Unmarshal([]byte(c.Desired.GetAnnotations()[PreStartKey("reviews")]), &spec), c.Desired.GetKind())
		assert.Equal(t, normalize(t, c.Live.Object["spec"]), normalize(t, spec), c.Desired.GetKind())
	}
	snap.apply(plan)

	// weight carries the pre-start annotation untouched.
	vsBefore := snap.object("VirtualService", "reviews").GetAnnotations()[PreStartKey("reviews")]
	plan, err = Compute(*snap, Intent{Action: ActionWeight, Weight: 40})
	require.NoError(t, err)
	require.Len(t, plan.Changes, 1)
	assert.Equal(t, vsBefore, plan.Changes[0].Desired.GetAnnotations()[PreStartKey("reviews")])

	// abort restores and removes it.
	plan, err = Compute(*snap, Intent{Action: ActionAbort})
	require.NoError(t, err)
	for _, c := range plan.Changes {
		assert.NotContains(t, c.Desired.GetAnnotations(), PreStartKey("reviews"), c.Desired.GetKind())
	}
}

// States written by earlier versions keep the pre-start spec inside the
// state: every command still reads them, and the next write moves the spec
// to its annotation.
func TestStateRecordedBeforeThePreStartAnnotation(t *testing.T) {
	original := loadSnapshot(t, "bookinfo-adopted")
	started := func(t *testing.T) *Snapshot {
		snap := loadSnapshot(t, "bookinfo-adopted")
		plan, err := Compute(*snap, Intent{Action: ActionStart, Canary: "v3", Weight: 10})
		require.NoError(t, err)
		snap.apply(plan)
		toLegacyState(t, snap.object("VirtualService", "reviews"), "reviews")
		toLegacyState(t, snap.object("DestinationRule", "reviews"), "reviews")
		return snap
	}

	t.Run("abort restores the spec recorded inside the state", func(t *testing.T) {
		snap := started(t)
		plan, err := Compute(*snap, Intent{Action: ActionAbort})
		require.NoError(t, err)
		snap.apply(plan)
		for _, kind := range []string{"VirtualService", "DestinationRule"} {
			obj := snap.object(kind, "reviews")
			assert.Equal(t, normalize(t, original.object(kind, "reviews").Object["spec"]), normalize(t, obj.Object["spec"]), kind)
			assert.NotContains(t, obj.GetAnnotations(), PreStartKey("reviews"), kind)
			assert.NotContains(t, obj.GetAnnotations()[StateKey("reviews")], "preStartSpec", kind)
		}
	})

	t.Run("a command that changes nothing writes nothing", func(t *testing.T) {
		snap := started(t)
		plan, err := computeChecked(t, *snap, Intent{Action: ActionWeight, Weight: 10})
		require.NoError(t, err)
		assert.False(t, plan.Changed(), "weight to the same weight rewrote the state")
	})

	// That version never removed the annotation: after one of ours started
	// and one of theirs aborted and started again on an edited object, the
	// annotation is older than the spec inside the state.
	t.Run("the spec inside the state wins over a stale annotation", func(t *testing.T) {
		snap := started(t)
		vs := snap.object("VirtualService", "reviews")
		annotations := vs.GetAnnotations()
		annotations[PreStartKey("reviews")] = `{"hosts":["reviews"],"http":[{"route":[{"destination":{"host":"reviews","subset":"stale"}}]}]}`
		vs.SetAnnotations(annotations)
		plan, err := computeChecked(t, *snap, Intent{Action: ActionAbort})
		require.NoError(t, err)
		snap.apply(plan)
		assert.Equal(t, normalize(t, original.object("VirtualService", "reviews").Object["spec"]), normalize(t, snap.object("VirtualService", "reviews").Object["spec"]))
		assert.NotContains(t, snap.object("VirtualService", "reviews").GetAnnotations(), PreStartKey("reviews"), "abort leaves the stale annotation")
	})

	t.Run("weight moves the spec to its annotation, and abort still restores", func(t *testing.T) {
		snap := started(t)
		plan, err := Compute(*snap, Intent{Action: ActionWeight, Weight: 30})
		require.NoError(t, err)
		require.Len(t, plan.Changes, 1)
		vs := plan.Changes[0].Desired
		assert.NotContains(t, vs.GetAnnotations()[StateKey("reviews")], "preStartSpec")
		var spec map[string]interface{}
		require.NoError(t, json.Unmarshal([]byte(vs.GetAnnotations()[PreStartKey("reviews")]), &spec))
		assert.Equal(t, normalize(t, original.object("VirtualService", "reviews").Object["spec"]), normalize(t, spec))
		snap.apply(plan)

		plan, err = Compute(*snap, Intent{Action: ActionAbort})
		require.NoError(t, err)
		snap.apply(plan)
		for _, kind := range []string{"VirtualService", "DestinationRule"} {
			assert.Equal(t, normalize(t, original.object(kind, "reviews").Object["spec"]), normalize(t, snap.object(kind, "reviews").Object["spec"]), kind)
		}
	})
}

// normalize puts a spec through JSON so that int64 and float64 numbers
// compare equal.
func normalize(t *testing.T, v interface{}) interface{} {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	var out interface{}
	require.NoError(t, json.Unmarshal(data, &out))
	return out
}

// testdata/routing/recorded-state/cluster.yaml holds a canary as the release
// of commit abe2f88 recorded it (spec hashes, a match fingerprint, pre-start
// specs full of characters JSON escapes); abort.yaml is that release's abort
// plan. Both were written once by that release: never regenerate them. A
// canary started before an upgrade must abort exactly as it would have.
func TestACanaryRecordedByAnEarlierReleaseAbortsExactly(t *testing.T) {
	snap := loadSnapshot(t, "recorded-state")
	plan, err := computeChecked(t, *snap, abort)
	require.NoError(t, err)
	assert.Empty(t, plan.Warnings, "a recorded spec hash no longer matches the spec it was taken of")
	want, err := os.ReadFile(testutil.Testdata("routing", "recorded-state", "abort.yaml"))
	require.NoError(t, err)
	assert.Equal(t, string(want), string(renderPlan(t, plan)))

	before := snapshotOf(t, testutil.ReadObjects(t, testutil.Testdata("routing", "recorded-state", "before.yaml")))
	snap.apply(plan)
	for _, kind := range []string{"VirtualService", "DestinationRule"} {
		assert.Equal(t, before.object(kind, "reviews").Object["spec"], snap.object(kind, "reviews").Object["spec"], "%s restored", kind)
	}
}

// The same recorded canary: its last command again writes nothing, so the
// spec hashes and the match fingerprint this release computes are the
// recorded ones (the unnamed managed route is found by its fingerprint).
func TestACanaryRecordedByAnEarlierReleaseTakesItsLastCommandAsDone(t *testing.T) {
	snap := loadSnapshot(t, "recorded-state")
	plan, err := computeChecked(t, *snap, weight(30))
	require.NoError(t, err)
	assert.False(t, plan.Changed(), "weight 30 again must write nothing")
}
