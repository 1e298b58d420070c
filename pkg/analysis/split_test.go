package analysis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShareInterval(t *testing.T) {
	cases := []struct {
		name      string
		p, n      float64
		oneSided  bool
		low, high float64
	}{
		// 2.5758 * sqrt(0.09/1000) + 0.0005 = 0.0249
		{"10% of 1000", 0.1, 1000, false, 0.0751, 0.1249},
		{"10% of 100", 0.1, 100, false, 0.0177, 0.1823},
		{"50% of 10000", 0.5, 10000, false, 0.4871, 0.5129},
		// No weight: one request is already outside.
		{"0% of 100", 0, 100, false, 0, 0.005},
		{"100% of 100", 1, 100, false, 0.995, 1},
		// Rules may add canary traffic: no upper bound, a tighter lower one.
		{"one-sided 10% of 1000", 0.1, 1000, true, 0.0774, 1},
	}
	for _, c := range cases {
		low, high := ShareInterval(c.p, c.n, c.oneSided)
		assert.InDelta(t, c.low, low, 0.0001, c.name)
		assert.InDelta(t, c.high, high, 0.0001, c.name)
	}
}

func TestRequestsNeeded(t *testing.T) {
	for p, want := range map[float64]float64{0.1: 100, 0.5: 20, 0.9: 100, 0.01: 1000, 0: 10, 1: 10, 0.25: 40} {
		assert.Equal(t, want, RequestsNeeded(p), "p=%v", p)
	}
}

func TestExpectedShare(t *testing.T) {
	assert.InDelta(t, 0.1, Routing{Weight: 10}.ExpectedShare(), 1e-9)
	// 20% copies on top of a 0% weight: 0.2 of 1.2 answered requests.
	assert.InDelta(t, 0.2/1.2, Routing{Mirror: 20}.ExpectedShare(), 1e-9)
	assert.InDelta(t, 0.3/1.2, Routing{Weight: 10, Mirror: 20}.ExpectedShare(), 1e-9)
	assert.InDelta(t, 1, Routing{Weight: 100}.ExpectedShare(), 1e-9)
}

// mesh is a client with a sidecar whose requests reach the canary at share.
func mesh(workload, ns string, requests, share float64) SourceTraffic {
	return SourceTraffic{Workload: workload, Namespace: ns, Requests: requests, CanaryRequests: requests * share, InMesh: true}
}

// manySmall is n mesh clients, each with too few requests to judge alone.
func manySmall(n int, requests, share float64) []SourceTraffic {
	var out []SourceTraffic
	for i := 0; i < n; i++ {
		out = append(out, mesh(fmt.Sprintf("client-%d", i), "shop", requests, share))
	}
	return out
}

func splitOf(window time.Duration, sources ...SourceTraffic) Split {
	s := Split{Window: window, Sources: sources}
	for _, src := range sources {
		s.Canary += src.CanaryRequests
		s.Stable += src.Requests - src.CanaryRequests
	}
	return s
}

func TestJudgeSplit(t *testing.T) {
	ten := Routing{Weight: 10, CanaryPods: 1, Pods: 2, VirtualServices: []ExportedRoute{{Namespace: "shop", Name: "reviews"}}}
	outside := SourceTraffic{Workload: "unknown", Namespace: "unknown", Requests: 250, CanaryRequests: 125}
	exportedHere := ten
	exportedHere.VirtualServices = []ExportedRoute{{Namespace: "shop", Name: "reviews", ExportTo: []string{"."}}}
	withRules := ten
	withRules.CanaryRules = true
	mirrored := Routing{Weight: 0, Mirror: 20}
	rulesOnly := Routing{CanaryRules: true}
	cases := []struct {
		name    string
		split   Split
		routing Routing
		verdict SplitVerdict
		cause   string
		reason  []string
	}{
		{name: "exact", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 1000, 0.1)), routing: ten, verdict: SplitMatches,
			reason: []string{"the canary answered 10.0% of 1000 requests in the last 1m, 10.0% expected (99% interval 7.5% to 12.5%)"}},
		{name: "within noise", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 1000, 0.12)), routing: ten, verdict: SplitMatches},
		{name: "outside: too many", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 1000, 0.13)), routing: ten, verdict: SplitMismatch, cause: "source-off-weight"},
		{name: "no source stands out", split: splitOf(time.Minute, manySmall(20, 50, 0.13)...), routing: ten, verdict: SplitMismatch, cause: "unexplained"},
		{name: "outside: too few", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 1000, 0.07)), routing: ten, verdict: SplitMismatch},
		{name: "too few requests", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 99, 0.5)), routing: ten, verdict: SplitUnknown,
			reason: []string{"99 requests reached the Service's pods in the last 1m; telling a 10.0% share from noise needs 100"}},
		{name: "clients outside the mesh", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 750, 0.1), outside), routing: ten, verdict: SplitMismatch, cause: "outside-mesh",
			reason: []string{"the canary answered 20.0% of 1000 requests", "250 requests (25.0%) reached the pods without passing a mesh proxy (clients without a sidecar (source_workload \"unknown\"): 250)", "the canary has 1 of 2 ready pods", "without them the canary's share is 10.0%"}},
		{name: "a mesh client whose proxy did not report", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 750, 0.1), SourceTraffic{Workload: "batch", Namespace: "jobs", Requests: 250, CanaryRequests: 125}),
			routing: ten, verdict: SplitMismatch, cause: "outside-mesh", reason: []string{"workload jobs/batch: 250"}},
		{name: "namespace not exported to", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 750, 0.1), mesh("frontend", "web", 250, 0.5)), routing: exportedHere, verdict: SplitMismatch, cause: "not-exported",
			reason: []string{"250 requests came from sidecars in namespace web", "VirtualService shop/reviews is exported to ."}},
		{name: "a mesh client off the weight", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 750, 0.1), mesh("frontend", "web", 250, 0.5)), routing: ten, verdict: SplitMismatch, cause: "source-off-weight",
			reason: []string{"workload web/frontend sent 250 requests, 50.0% of them to the canary"}},
		{name: "header rules add canary traffic", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 1000, 0.3)), routing: withRules, verdict: SplitMatches,
			reason: []string{"at least 10.0% expected with its request rules"}},
		{name: "header rules cannot explain too little", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 1000, 0.05)), routing: withRules, verdict: SplitMismatch},
		{name: "rules only: any share", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 1000, 0.3)), routing: rulesOnly, verdict: SplitMatches},
		{name: "mirrored copies count for the canary", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 1200, 0.2/1.2)), routing: mirrored, verdict: SplitMatches},
		{name: "mirror expected but no copies", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 1000, 0)), routing: mirrored, verdict: SplitMismatch},
		{name: "no weight, canary answers anyway", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 100, 0.02)), routing: Routing{}, verdict: SplitMismatch},
		{name: "full weight, stable answers nothing", split: splitOf(time.Minute, mesh("productpage-v1", "shop", 100, 1)), routing: Routing{Weight: 100}, verdict: SplitMatches},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := JudgeSplit(c.split, c.routing)
			assert.Equal(t, c.verdict, rep.Verdict, rep.Reason)
			for _, r := range c.reason {
				assert.Contains(t, rep.Reason, r)
			}
			if c.verdict == SplitMismatch {
				require.NotEmpty(t, rep.Causes)
				assert.NotEmpty(t, rep.Causes[0].Fix)
			}
			if c.cause != "" {
				assert.Equal(t, c.cause, rep.Causes[0].Cause)
			}
		})
	}
}

// A mismatch holds the verdict at inconclusive, unless ignored; a failure
// still fails.
func TestJudgeWithSplit(t *testing.T) {
	mismatch := &SplitReport{Verdict: SplitMismatch, Reason: "the canary answered 20.0%"}
	r := Result{Stable: healthy(1000), Canary: healthy(100), Split: mismatch}
	d := Judge(r, DefaultThresholds)
	assert.Equal(t, Inconclusive, d.Verdict)
	assert.Equal(t, "traffic-split", d.Metric)
	assert.Contains(t, d.Reason, "traffic split does not match the weight: the canary answered 20.0%")
	assert.Contains(t, d.Reason, "--ignore-split-mismatch")

	ignoring := DefaultThresholds
	ignoring.IgnoreSplitMismatch = true
	assert.Equal(t, Pass, Judge(r, ignoring).Verdict)

	r.Canary.SuccessRate = 0.5
	assert.Equal(t, Fail, Judge(r, DefaultThresholds).Verdict, "a failure wins")

	for _, v := range []SplitVerdict{SplitMatches, SplitUnknown} {
		r := Result{Stable: healthy(1000), Canary: healthy(100), Split: &SplitReport{Verdict: v}}
		assert.Equal(t, Pass, Judge(r, DefaultThresholds).Verdict, v)
	}
}

func TestSplitWindow(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	// Changed long ago: the whole window.
	w, why := SplitWindow(5*time.Minute, now.Add(-time.Hour), now, 30*time.Second, time.Minute)
	assert.Equal(t, 5*time.Minute, w)
	assert.Empty(t, why)
	// Changed 2m ago: the 90s after settling.
	w, _ = SplitWindow(5*time.Minute, now.Add(-2*time.Minute), now, 30*time.Second, time.Minute)
	assert.Equal(t, 90*time.Second, w)
	// Changed 70s ago: 40s is too short to tell.
	w, why = SplitWindow(5*time.Minute, now.Add(-70*time.Second), now, 30*time.Second, time.Minute)
	assert.Zero(t, w)
	assert.Equal(t, "the routing changed 1m10s ago; the split is measured on the traffic after it, once 30s of it has settled and 1m more is in Prometheus", why)
	// No change recorded: the window.
	w, _ = SplitWindow(time.Minute, time.Time{}, now, 30*time.Second, time.Minute)
	assert.Equal(t, time.Minute, w)
}

// FetchSplit sorts the answered requests by version and client, and marks
// the clients whose own proxy reported sending theirs.
func TestFetchSplit(t *testing.T) {
	answered := func(version, workload, ns string, v float64) string {
		return sample(map[string]string{"destination_version": version, "source_workload": workload, "source_workload_namespace": ns}, v)
	}
	f := &fakePrometheus{answer: func(q string) string {
		if strings.Contains(q, `reporter="source"`) {
			return "[" + sample(map[string]string{"source_workload": "productpage-v1", "source_workload_namespace": "shop"}, 750) + "]"
		}
		return "[" + strings.Join([]string{
			answered("v1", "productpage-v1", "shop", 675), answered("v2", "productpage-v1", "shop", 75),
			answered("v1", "unknown", "unknown", 125), answered("v2", "unknown", "unknown", 125),
			answered("v3", "productpage-v1", "shop", 10),
		}, ",") + "]"
	}}
	s, err := FetchSplit(context.Background(), serve(t, f), reviews, VersionLabel, 90*time.Second, time.Now(), "test")
	require.NoError(t, err)
	assert.Equal(t, Split{Window: 90 * time.Second, Stable: 800, Canary: 200, Other: 10, Sources: []SourceTraffic{
		{Workload: "productpage-v1", Namespace: "shop", Requests: 760, CanaryRequests: 75, InMesh: true},
		{Workload: "unknown", Namespace: "unknown", Requests: 250, CanaryRequests: 125},
	}}, s)
	require.Len(t, f.queries, 2)
	answeredQuery, sentQuery := SplitQueries(reviews, VersionLabel, 90*time.Second)
	assert.Equal(t, `sum by (destination_version, source_workload, source_workload_namespace) (increase(istio_requests_total{reporter="destination",destination_service_namespace="shop",destination_service_name="reviews"}[1m30s]))`, answeredQuery)
	assert.Equal(t, `sum by (source_workload, source_workload_namespace) (increase(istio_requests_total{reporter="source",destination_service_namespace="shop",destination_service_name="reviews"}[1m30s]))`, sentQuery)
	assert.ElementsMatch(t, []string{answeredQuery, sentQuery}, f.queries)
}
