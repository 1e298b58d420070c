package cmd

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// edit changes a live object behind the plugin's back, as kubectl would.
func (f *fakeCluster) edit(gvr schema.GroupVersionResource, name string, change func(obj *unstructured.Unstructured)) {
	f.t.Helper()
	obj := f.get(gvr, name)
	change(obj)
	_, err := f.dynamic.Resource(gvr).Namespace(f.namespace).Update(context.Background(), obj, metav1UpdateOptions)
	require.NoError(f.t, err)
}

// reapplyAllV1 is the all-v1 VirtualService applied again over the
// canary's, its annotations kept (a client-side apply).
func reapplyAllV1(obj *unstructured.Unstructured) {
	http, _, _ := unstructured.NestedSlice(obj.Object, "spec", "http")
	http[0].(map[string]interface{})["route"] = []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "reviews.shop.svc.cluster.local", "subset": "v1"}}}
	_ = unstructured.SetNestedSlice(obj.Object, http, "spec", "http")
}

func withoutSubsetV2(obj *unstructured.Unstructured) {
	subsets, _, _ := unstructured.NestedSlice(obj.Object, "spec", "subsets")
	var kept []interface{}
	for _, s := range subsets {
		if s.(map[string]interface{})["name"] != "v2" {
			kept = append(kept, s)
		}
	}
	_ = unstructured.SetNestedSlice(obj.Object, kept, "spec", "subsets")
}

// status shows the live weight first and the recorded one beside it, a
// DRIFT column in a few words, the details on standard error; -o json
// carries liveWeight and the drift list.
func TestStatusShowsDrift(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews", "--weight", "25")
	require.NoError(t, err)
	stdout, stderr, err := f.run("status", "-o", "json")
	require.NoError(t, err)
	var clean struct {
		Items []map[string]any `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &clean))
	require.Len(t, clean.Items, 1)
	assert.Equal(t, float64(25), clean.Items[0]["liveWeight"])
	assert.Equal(t, []any{}, clean.Items[0]["drift"], "an empty list, never null")
	assert.Empty(t, stderr)

	f.edit(vsGVR, "reviews", reapplyAllV1)
	f.edit(drGVR, "reviews", withoutSubsetV2)

	stdout, stderr, err = f.run("status")
	require.NoError(t, err)
	assert.Regexp(t, `^SERVICE\s+STABLE\s+CANARY\s+WEIGHT\s+DRIFT\s+PHASE\s+STABLE READY\s+CANARY READY\s+AGE\s+ROUTING\n`+
		`reviews\s+v1\s+v2\s+0% \(recorded 25%\)\s+split changed, subset gone\s+Progressing\s+3/3\s+1/1\s+\S+\s+-\n$`, stdout)
	assert.Equal(t, "Warning: shop/reviews drifted: VirtualService/reviews http route #0: recorded v1 75 / v2 25, live v1 100\n"+
		"Warning: shop/reviews drifted: DestinationRule/reviews subset v2: recorded selects version=v2, live gone\n"+
		"kubectl canary check SERVICE says what to do about each drift.\n", stderr)

	stdout, _, err = f.run("status", "reviews", "-o", "json")
	require.NoError(t, err)
	var st routing.CanaryStatus
	require.NoError(t, json.Unmarshal([]byte(stdout), &st))
	assert.Equal(t, 25, st.Weight)
	require.NotNil(t, st.LiveWeight)
	assert.Equal(t, 0, *st.LiveWeight)
	assert.Equal(t, []routing.Drift{
		{Object: "VirtualService/reviews", Route: "http route #0", What: routing.DriftWeight, Recorded: "v1 75 / v2 25", Live: "v1 100"},
		{Object: "DestinationRule/reviews", Route: "subset v2", What: routing.DriftSubsetGone, Recorded: "selects version=v2", Live: "gone"},
	}, st.Drift)
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &raw))
	assert.Equal(t, map[string]any{"object": "VirtualService/reviews", "route": "http route #0", "what": "Weight", "recorded": "v1 75 / v2 25", "live": "v1 100"}, raw["drift"].([]any)[0])

	// YAML carries the same.
	stdout, _, err = f.run("status", "reviews", "-o", "yaml")
	require.NoError(t, err)
	assert.Contains(t, stdout, "liveWeight: 0\n")
	assert.Contains(t, stdout, "- live: v1 100\n  object: VirtualService/reviews\n  recorded: v1 75 / v2 25\n  route: 'http route #0'\n  what: Weight\n")
}

// check reports each drift as a finding with its fix; weight re-asserts
// the split, restores the subset, and says what it replaced; the summary
// never says unchanged where the live split was another.
func TestCheckAndWeightOnDrift(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	f.edit(vsGVR, "reviews", reapplyAllV1)
	f.edit(drGVR, "reviews", withoutSubsetV2)

	stdout, _, err := f.run("check", "reviews", "-o", "json")
	require.Error(t, err, "a subset gone fails requests: an error")
	var report struct{ Findings []routing.Finding }
	require.NoError(t, json.Unmarshal([]byte(stdout), &report))
	var messages []string
	for _, f := range report.Findings {
		messages = append(messages, string(f.Severity)+" "+f.Object+": "+f.Message)
	}
	all := strings.Join(messages, "\n")
	assert.Contains(t, all, "warning VirtualService shop/reviews: http route #0 sends v1 100, not the recorded v1 90 / v2 10: someone changed the split (a hand edit, a re-applied manifest or a GitOps sync). kubectl canary weight reviews N re-asserts a split on the live routes; kubectl canary abort reviews sends everything to stable")
	assert.Contains(t, all, "error DestinationRule shop/reviews: subset v2 of the running canary (it selects version=v2) is gone, so the routes that name it fail those requests. kubectl canary weight reviews N adds it back; kubectl canary abort reviews sends everything to stable")
	assert.NotContains(t, all, "which no DestinationRule of the Service defines", "the drift finding speaks for the canary's own subset")

	// route and promote refuse (promote would route to the missing subset).
	_, _, err = f.run("route", "reviews", "--header", "x-tester=yes")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "so route would not act on what is live; nothing was changed")
	_, _, err = f.run("promote", "reviews")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DestinationRule shop/reviews subset v2: recorded selects version=v2, live gone")

	stdout, stderr, err := f.run("weight", "reviews", "10")
	require.NoError(t, err)
	assert.Contains(t, stderr, "Warning: DestinationRule shop/reviews had lost subset(s) v2 of the running canary; they are added back")
	assert.Equal(t, "destinationrule.networking.istio.io/reviews configured\n"+
		"virtualservice.networking.istio.io/reviews configured\n"+
		"VirtualService/reviews http route #0 sent v1 100, not the recorded v1 90 / v2 10 (changed by someone else); it now sends v1 90 / v2 10\n"+
		"canary shop/reviews reweighted: canary version=v2 gets 10%, stable version=v1 gets 90%\n", stdout)
	assert.Equal(t, []int64{90, 10}, weightsOf(t, f.get(vsGVR, "reviews"), "http", 0))

	stdout, stderr, err = f.run("status")
	require.NoError(t, err)
	assert.Regexp(t, `\n reviews\s+v1\s+v2\s+10%\s+-\s+Progressing`, "\n "+strings.SplitN(stdout, "\n", 2)[1])
	assert.Empty(t, stderr)

	// Again: now it is unchanged, and says so truthfully.
	stdout, _, err = f.run("weight", "reviews", "10")
	require.NoError(t, err)
	assert.Contains(t, stdout, "canary shop/reviews unchanged (progressing): canary version=v2 gets 10%")
}

// --watch prints a canary's row again when its live routing drifts, though
// its record did not change.
func TestStatusWatchPrintsDrift(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	out, stop := f.startWatch("status", "--watch")
	waitForOutput(t, out, "the first row", func(s string) bool { return strings.Contains(s, "10%") })
	f.edit(vsGVR, "reviews", reapplyAllV1)
	waitForOutput(t, out, "the drifted row", func(s string) bool { return strings.Contains(s, "split changed") })
	require.NoError(t, stop())
	var rows []string
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		// A header again where a wider cell widens its column.
		if !strings.HasPrefix(line, "SERVICE ") {
			rows = append(rows, line)
		}
	}
	require.Len(t, rows, 2, "the row, then the drifted row:\n%s", out)
	assert.Regexp(t, `^reviews\s+v1\s+v2\s+0% \(recorded 10%\)\s+split changed\s+Progressing\s`, rows[1])
	assert.NotContains(t, out.String(), "Warning:", "--watch keeps to its rows")
}

// A change that loses a race after some of its writes plans again from a
// new read, where those objects are as wanted: the report still names
// them, and the warnings that came with them (weight restored a subset,
// then its VirtualService write conflicted).
func TestReportKeepsTheWritesOfALostRace(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	f.edit(drGVR, "reviews", withoutSubsetV2)
	conflicts := 0
	f.dynamic.PrependReactor("update", "virtualservices", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if conflicts > 0 || isDryRun(action) {
			return false, nil, nil
		}
		conflicts++
		return true, nil, apierrors.NewConflict(vsGVR.GroupResource(), "reviews", nil)
	})
	stdout, stderr, err := f.run("weight", "reviews", "30")
	require.NoError(t, err)
	assert.Equal(t, 1, conflicts)
	assert.Equal(t, "destinationrule.networking.istio.io/reviews configured\n"+
		"virtualservice.networking.istio.io/reviews configured\n"+
		"canary shop/reviews reweighted: canary version=v2 gets 30%, stable version=v1 gets 70%\n", stdout)
	assert.Contains(t, stderr, "Warning: DestinationRule shop/reviews had lost subset(s) v2 of the running canary; they are added back")
}

// With the VirtualService deleted, only the DestinationRule records the
// canary, and it does not record the weight: the table says it is not
// known rather than 0 %.
func TestStatusWithTheVirtualServiceDeleted(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews", "--weight", "30")
	require.NoError(t, err)
	require.NoError(t, f.dynamic.Resource(vsGVR).Namespace("shop").Delete(context.Background(), "reviews", metav1DeleteOptions))
	stdout, _, err := f.run("status")
	require.NoError(t, err)
	assert.Regexp(t, `\nreviews\s+v1\s+v2\s+\?\s+VirtualService gone\s+Progressing\s`, stdout)
	_, _, err = f.run("weight", "reviews", "10")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "live no VirtualService records the canary; no VirtualService routes the Service, which balances over every version's pods")
}

// --contexts and -A: each cluster's canary is judged on its own objects;
// the warning names the cluster.
func TestStatusDriftAcrossContextsAndNamespaces(t *testing.T) {
	clusters := map[string]*fakeCluster{"east": newFakeCluster(t, "no-istio", "shop"), "west": newFakeCluster(t, "no-istio", "shop")}
	_, stderr, err := runOnContexts(clusters, "start", "reviews", "--contexts", "east,west")
	require.NoError(t, err, stderr)
	clusters["west"].edit(vsGVR, "reviews", reapplyAllV1)

	out, stderr, err := runOnContexts(clusters, "status", "--contexts", "east,west")
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, rows, 3, out)
	assert.Regexp(t, `^CLUSTER\s+SERVICE\s+STABLE\s+CANARY\s+WEIGHT\s+DRIFT\s+PHASE`, rows[0])
	assert.Regexp(t, `^east\s+reviews\s+v1\s+v2\s+10%\s+-\s+Progressing`, rows[1])
	assert.Regexp(t, `^west\s+reviews\s+v1\s+v2\s+0% \(recorded 10%\)\s+split changed\s+Progressing`, rows[2])
	assert.Contains(t, stderr, "Warning: shop/reviews in west drifted: VirtualService/reviews http route #0: recorded v1 90 / v2 10, live v1 100\n")
	assert.NotContains(t, stderr, "in east")

	out, _, err = clusters["west"].run("status", "-A")
	require.NoError(t, err)
	assert.Regexp(t, `\nshop\s+reviews\s+v1\s+v2\s+0% \(recorded 10%\)\s+split changed\s+Progressing`, out)
}

// The commands drift's refusals and findings suggest carry the flags that
// chose the Service, like every other hint.
func TestDriftHintsCarryTheTargetFlags(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	f.edit(vsGVR, "reviews", reapplyAllV1)

	_, _, err = f.runWithKubectlFlags("route", "reviews", "--header", "x-tester=yes", "-n", "shop", "--context", "prod")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Run kubectl canary weight reviews N -n shop --context prod first: it re-asserts the split")
	assert.Contains(t, err.Error(), "or kubectl canary abort reviews -n shop --context prod to send everything to stable")

	stdout, _, _ := f.runWithKubectlFlags("check", "reviews", "-n", "shop", "--context", "prod")
	assert.Contains(t, stdout, "kubectl canary weight reviews N -n shop --context prod re-asserts a split on the live routes; kubectl canary abort reviews -n shop --context prod sends everything to stable")
}
