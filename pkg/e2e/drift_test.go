//go:build e2e

package e2e

// Drift: someone changes the routing objects of a running canary behind
// the plugin's back (a re-applied manifest, a hand patch, a GitOps sync,
// a deleted object or subset). status and check tell the live state from
// the recorded one, weight re-asserts or refuses as designed
// (pkg/routing/drift.go), and istiod serves what the messages say. The
// tests play a sidecar, so they do not call t.Parallel (see mesh_test.go).

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubectl-canary/kubectl-canary/pkg/e2e/xds"
)

// driftJSON is the part of `status SVC -o json` about the live routing.
type driftJSON struct {
	Weight     int
	LiveWeight *int
	Drift      []struct{ Object, Route, What, Recorded, Live string }
}

func (c *cluster) driftStatus(t *testing.T, ns, svc string) driftJSON {
	t.Helper()
	out := c.mustCanary(t, "status", svc, "-n", ns, "-o", "json")
	var st driftJSON
	require.NoError(t, json.Unmarshal([]byte(out), &st), "status -o json printed:\n%s", out)
	require.NotNil(t, st.Drift, "drift is a list, also when empty:\n%s", out)
	return st
}

// driftRow is reviews' row of the status table, with what status said on
// standard error.
func (c *cluster) driftRow(t *testing.T, ns string) (map[string]string, string) {
	t.Helper()
	r := c.canary(t, nil, "status", "-n", ns)
	require.NoError(t, r.err, "%s", r)
	rows := table(t, r.stdout)
	require.Len(t, rows, 1, "%s", r.stdout)
	return rows[0], r.stderr
}

// checkFindings runs check and returns its findings by severity; check
// exits non-zero when one is an error.
func (c *cluster) checkFindings(t *testing.T, ns string) (map[string][]string, bool) {
	t.Helper()
	r := c.canary(t, nil, "check", "reviews", "-n", ns, "-o", "json")
	var report struct {
		Findings []struct{ Severity, Object, Message string }
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &report), "%s", r)
	out := map[string][]string{}
	for _, f := range report.Findings {
		out[f.Severity] = append(out[f.Severity], f.Object+": "+f.Message)
	}
	return out, r.err != nil
}

func intPtr(i int) *int { return &i }

// TestDriftIstio: on bookinfo's reviews (jason pinned to v2, everyone else
// on v1), a canary of v2 at 10 % goes through each drift in turn; after
// each, status (table and JSON) and check say what is live, and weight
// re-asserts the split (istiod serves it) or refuses.
func TestDriftIstio(t *testing.T) {
	s := newMeshScene(t, bookinfoReviews(), "v1", "v2")
	ns, host, productpage := s.ns, s.host, s.productpage
	original := fillNamespace(virtualService("reviews", httpRoutes(jasonRoute, defaultRoute("v1"))), ns)
	serves := func(want map[string]uint32) {
		t.Helper()
		served(t, productpage, "9080", host, hasSplit(want))
	}
	shared.mustCanary(t, "start", "reviews", "-n", ns)
	serves(map[string]uint32{"v1": 90, "v2": 10})
	st := shared.driftStatus(t, ns, "reviews")
	assert.Equal(t, intPtr(10), st.LiveWeight)
	assert.Empty(t, st.Drift, "right after start the live routing is the recorded one")
	row, stderr := shared.driftRow(t, ns)
	assert.Equal(t, "10%", row["WEIGHT"])
	assert.Equal(t, "-", row["DRIFT"])
	assert.Empty(t, stderr)

	t.Run("original VirtualService re-applied", func(t *testing.T) {
		// A teammate's kubectl apply of the all-v1 file: a client-side
		// apply keeps the annotations it does not know.
		shared.kubectl(t, original, "apply", "-n", ns, "-f", "-")
		serves(map[string]uint32{"v1": 100})
		st := shared.driftStatus(t, ns, "reviews")
		assert.Equal(t, 10, st.Weight, "the record")
		assert.Equal(t, intPtr(0), st.LiveWeight, "the live routes")
		require.Len(t, st.Drift, 1)
		assert.Equal(t, "VirtualService/reviews", st.Drift[0].Object)
		assert.Equal(t, `http route "default"`, st.Drift[0].Route)
		assert.Equal(t, "Weight", st.Drift[0].What)
		assert.Equal(t, "v1 90 / v2 10", st.Drift[0].Recorded)
		assert.Equal(t, "v1 100", st.Drift[0].Live)
		row, stderr := shared.driftRow(t, ns)
		assert.Equal(t, "0% (recorded 10%)", row["WEIGHT"])
		assert.Equal(t, "split changed", row["DRIFT"])
		assert.Contains(t, stderr, `Warning: `+ns+`/reviews drifted: VirtualService/reviews http route "default": recorded v1 90 / v2 10, live v1 100`)
		findings, failed := shared.checkFindings(t, ns)
		assert.False(t, failed, "a changed split is a warning: %v", findings)
		assert.Contains(t, strings.Join(findings["warning"], "\n"), `VirtualService `+ns+`/reviews: http route "default" sends v1 100, not the recorded v1 90 / v2 10: someone changed the split`)

		// weight to the recorded 10 % is a real write, said as such.
		out := shared.mustCanary(t, "weight", "reviews", "10", "-n", ns)
		assert.Contains(t, out, `VirtualService/reviews http route "default" sent v1 100, not the recorded v1 90 / v2 10 (changed by someone else); it now sends v1 90 / v2 10`)
		assert.Contains(t, out, "reweighted: canary version=v2 gets 10%")
		assert.NotContains(t, out, "unchanged")
		serves(map[string]uint32{"v1": 90, "v2": 10})
		assert.Empty(t, shared.driftStatus(t, ns, "reviews").Drift)
	})

	t.Run("weights hand-patched", func(t *testing.T) {
		shared.kubectl(t, "", "patch", "virtualservice", "reviews", "-n", ns, "--type", "json",
			"-p", `[{"op":"replace","path":"/spec/http/1/route/0/weight","value":70},{"op":"replace","path":"/spec/http/1/route/1/weight","value":30}]`)
		serves(map[string]uint32{"v1": 70, "v2": 30})
		st := shared.driftStatus(t, ns, "reviews")
		assert.Equal(t, intPtr(30), st.LiveWeight)
		require.Len(t, st.Drift, 1)
		assert.Equal(t, "v1 70 / v2 30", st.Drift[0].Live)
		row, _ := shared.driftRow(t, ns)
		assert.Equal(t, "30% (recorded 10%)", row["WEIGHT"])

		// route would keep the split while its summary states the record.
		r := shared.failCanary(t, "route", "reviews", "--header", "x-tester=yes", "-n", ns)
		assert.Contains(t, r.stderr, "so route would not act on what is live; nothing was changed")
		assert.Contains(t, r.stderr, "Run kubectl canary weight reviews N -n "+ns+" first")
		serves(map[string]uint32{"v1": 70, "v2": 30})

		out := shared.mustCanary(t, "weight", "reviews", "50", "-n", ns)
		assert.Contains(t, out, "sent v1 70 / v2 30, not the recorded v1 90 / v2 10 (changed by someone else); it now sends v1 50 / v2 50")
		serves(map[string]uint32{"v1": 50, "v2": 50})
	})

	t.Run("pre-canary manifest re-applied by a GitOps sync", func(t *testing.T) {
		// Argo CD's way: a server-side apply that takes the fields over.
		shared.kubectl(t, original, "apply", "--server-side", "--force-conflicts", "--field-manager", "argocd-controller", "-n", ns, "-f", "-")
		serves(map[string]uint32{"v1": 100})
		st := shared.driftStatus(t, ns, "reviews")
		assert.Equal(t, intPtr(0), st.LiveWeight)
		require.Len(t, st.Drift, 1)
		assert.Equal(t, "v1 50 / v2 50", st.Drift[0].Recorded)
		assert.Equal(t, "v1 100", st.Drift[0].Live)
		out := shared.mustCanary(t, "weight", "reviews", "20", "-n", ns)
		assert.Contains(t, out, "sent v1 100, not the recorded v1 50 / v2 50 (changed by someone else); it now sends v1 80 / v2 20")
		serves(map[string]uint32{"v1": 80, "v2": 20})
	})

	t.Run("subset deleted", func(t *testing.T) {
		shared.kubectl(t, "", "patch", "destinationrule", "reviews", "-n", ns, "--type", "json", "-p", `[{"op":"remove","path":"/spec/subsets/1"}]`)
		st := shared.driftStatus(t, ns, "reviews")
		require.Len(t, st.Drift, 1, "%+v", st.Drift)
		assert.Equal(t, "SubsetGone", st.Drift[0].What)
		assert.Equal(t, "DestinationRule/reviews", st.Drift[0].Object)
		assert.Equal(t, "subset v2", st.Drift[0].Route)
		row, _ := shared.driftRow(t, ns)
		assert.Equal(t, "subset gone", row["DRIFT"])
		assert.Equal(t, "20%", row["WEIGHT"], "the routes still give v2 its 20 %%, which fails now")
		findings, failed := shared.checkFindings(t, ns)
		assert.True(t, failed, "requests fail: an error")
		assert.Contains(t, strings.Join(findings["error"], "\n"), "subset v2 of the running canary (it selects version=v2) is gone, so the routes that name it fail those requests. kubectl canary weight reviews N -n "+ns+" adds it back")
		r := shared.failCanary(t, "promote", "reviews", "-n", ns)
		assert.Contains(t, r.stderr, "DestinationRule "+ns+"/reviews subset v2: recorded selects version=v2, live gone")

		// weight adds it back (its own selector) and sets the split.
		r = shared.canary(t, nil, "weight", "reviews", "30", "-n", ns)
		require.NoError(t, r.err, "%s", r)
		assert.Contains(t, r.stderr, "had lost subset(s) v2 of the running canary; they are added back")
		serves(map[string]uint32{"v1": 70, "v2": 30})
		assert.Empty(t, shared.driftStatus(t, ns, "reviews").Drift)
	})

	t.Run("VirtualService deleted", func(t *testing.T) {
		shared.kubectl(t, "", "delete", "virtualservice", "reviews", "-n", ns)
		// Without routing, istiod sends to the Service's cluster, which
		// balances over every version's pods.
		served(t, productpage, "9080", host, func(routes []xds.Route) bool {
			return fmt.Sprint(last(routes).Weights()) == fmt.Sprint(map[string]uint32{"outbound|9080||" + host: 100})
		})
		st := shared.driftStatus(t, ns, "reviews")
		assert.Nil(t, st.LiveWeight)
		require.Len(t, st.Drift, 1, "%+v", st.Drift)
		assert.Equal(t, "ObjectGone", st.Drift[0].What)
		assert.Contains(t, st.Drift[0].Live, "no VirtualService records the canary; no VirtualService routes the Service, which balances over every version's pods")
		row, _ := shared.driftRow(t, ns)
		assert.Equal(t, "?", row["WEIGHT"], "the DestinationRule does not record the weight")
		assert.Equal(t, "VirtualService gone", row["DRIFT"])
		findings, failed := shared.checkFindings(t, ns)
		assert.True(t, failed)
		assert.Contains(t, strings.Join(findings["error"], "\n"), "VirtualService of Service "+ns+"/reviews: recorded: canary version=v2")
		for _, verb := range [][]string{{"weight", "reviews", "10"}, {"promote", "reviews"}} {
			r := shared.failCanary(t, append(verb, "-n", ns)...)
			assert.Contains(t, r.stderr, "live no VirtualService records the canary", "%v", verb)
			assert.Contains(t, r.stderr, "run kubectl canary abort reviews -n "+ns+" (all traffic to stable version=v1) and start again", "%v", verb)
		}
	})
}

// TestDriftIstioReplacedAndPromoted: a VirtualService replaced whole
// (kubectl replace drops the plugin's annotations) is named as routing the
// Service without the record; promote on a changed split re-asserts the
// canary at 100 % and says what it replaced.
func TestDriftIstioReplacedAndPromoted(t *testing.T) {
	s := newMeshScene(t, bookinfoReviews(), "v1", "v2")
	ns, host, productpage := s.ns, s.host, s.productpage
	original := fillNamespace(virtualService("reviews", httpRoutes(jasonRoute, defaultRoute("v1"))), ns)
	shared.mustCanary(t, "start", "reviews", "-n", ns, "--weight", "40")

	shared.kubectl(t, original, "apply", "-n", ns, "-f", "-")
	served(t, productpage, "9080", host, hasSplit(map[string]uint32{"v1": 100}))
	out := shared.mustCanary(t, "promote", "reviews", "-n", ns)
	assert.Contains(t, out, `VirtualService/reviews http route "default" sent v1 100, not the recorded v1 60 / v2 40 (changed by someone else); it now sends v2 100`)
	assert.Contains(t, out, "promoted: version=v2 is stable and gets 100% of the traffic")
	served(t, productpage, "9080", host, hasSplit(map[string]uint32{"v2": 100}))

	// A new canary, then the VirtualService replaced without its record.
	shared.mustCanary(t, "start", "reviews", "-n", ns, "--canary", "v1")
	shared.kubectl(t, original, "replace", "-n", ns, "-f", "-")
	st := shared.driftStatus(t, ns, "reviews")
	require.Len(t, st.Drift, 1, "%+v", st.Drift)
	assert.Equal(t, "ObjectGone", st.Drift[0].What)
	assert.Contains(t, st.Drift[0].Live, "VirtualService/reviews routes the Service without the record (replaced?)")
	r := shared.failCanary(t, "weight", "reviews", "30", "-n", ns)
	assert.Contains(t, r.stderr, "VirtualService/reviews routes the Service without the record (replaced?)")
}

// TestDriftGatewayAPI: the same on a mesh HTTPRoute to per-version
// Services (reviews-v1 the user's, reviews-v2 created by start).
func TestDriftGatewayAPI(t *testing.T) {
	s := newMeshScene(t, versionService("reviews", "v1")+bookinfoHTTPRoute, "v1", "v2")
	ns, productpage := s.ns, s.productpage
	serves := func(want map[string]uint32) {
		t.Helper()
		w := clusterWeights(ns, want)
		served(t, productpage, "9080", s.host, func(routes []xds.Route) bool {
			return fmt.Sprint(nonZero(last(routes).Weights())) == fmt.Sprint(w)
		})
	}
	shared.mustCanary(t, "start", "reviews", "-n", ns)
	serves(map[string]uint32{"reviews-v1": 90, "reviews-v2": 10})
	st := shared.driftStatus(t, ns, "reviews")
	assert.Empty(t, st.Drift, "right after start the live routing is the recorded one (server defaults included)")
	assert.Equal(t, intPtr(10), st.LiveWeight)

	t.Run("HTTPRoute re-applied", func(t *testing.T) {
		shared.kubectl(t, fillNamespace(bookinfoHTTPRoute, ns), "apply", "-n", ns, "-f", "-")
		serves(map[string]uint32{"reviews-v1": 100})
		st := shared.driftStatus(t, ns, "reviews")
		assert.Equal(t, intPtr(0), st.LiveWeight)
		require.Len(t, st.Drift, 2, "both managed rules: %+v", st.Drift)
		for i, rule := range []string{`rule "health"`, `rule "default"`} {
			assert.Equal(t, "HTTPRoute/reviews", st.Drift[i].Object)
			assert.Equal(t, rule, st.Drift[i].Route)
			assert.Equal(t, "Weight", st.Drift[i].What)
			assert.Equal(t, "v1 90 / v2 10", st.Drift[i].Recorded)
			assert.Equal(t, "v1 100", st.Drift[i].Live)
		}
		row, _ := shared.driftRow(t, ns)
		assert.Equal(t, "0% (recorded 10%)", row["WEIGHT"])
		assert.Equal(t, "split changed", row["DRIFT"])
		findings, failed := shared.checkFindings(t, ns)
		assert.False(t, failed, "%v", findings)
		assert.Contains(t, strings.Join(findings["warning"], "\n"), `HTTPRoute `+ns+`/reviews: rule "default" sends v1 100, not the recorded v1 90 / v2 10`)

		out := shared.mustCanary(t, "weight", "reviews", "10", "-n", ns)
		assert.Contains(t, out, `HTTPRoute/reviews rule "default" sent v1 100, not the recorded v1 90 / v2 10 (changed by someone else); it now sends v1 90 / v2 10`)
		serves(map[string]uint32{"reviews-v1": 90, "reviews-v2": 10})
		assert.Empty(t, shared.driftStatus(t, ns, "reviews").Drift)
	})

	t.Run("HTTPRoute weights patched", func(t *testing.T) {
		shared.kubectl(t, "", "patch", "httproute", "reviews", "-n", ns, "--type", "json",
			"-p", `[{"op":"replace","path":"/spec/rules/1/backendRefs/0/weight","value":70},{"op":"replace","path":"/spec/rules/1/backendRefs/1/weight","value":30}]`)
		st := shared.driftStatus(t, ns, "reviews")
		assert.Nil(t, st.LiveWeight, "the rules differ: 10 %% and 30 %%")
		require.Len(t, st.Drift, 1, "%+v", st.Drift)
		assert.Equal(t, "v1 70 / v2 30", st.Drift[0].Live)
		row, _ := shared.driftRow(t, ns)
		assert.Equal(t, "? (recorded 10%)", row["WEIGHT"])
		out := shared.mustCanary(t, "weight", "reviews", "50", "-n", ns)
		assert.Contains(t, out, `HTTPRoute/reviews rule "default" sent v1 70 / v2 30`)
		serves(map[string]uint32{"reviews-v1": 50, "reviews-v2": 50})
	})

	t.Run("per-version Service deleted", func(t *testing.T) {
		shared.kubectl(t, "", "delete", "service", "reviews-v2", "-n", ns)
		st := shared.driftStatus(t, ns, "reviews")
		require.Len(t, st.Drift, 1, "%+v", st.Drift)
		assert.Equal(t, "ServiceGone", st.Drift[0].What)
		assert.Equal(t, "Service/reviews-v2", st.Drift[0].Object)
		row, _ := shared.driftRow(t, ns)
		assert.Equal(t, "Service gone", row["DRIFT"])
		findings, failed := shared.checkFindings(t, ns)
		assert.True(t, failed)
		assert.Contains(t, strings.Join(findings["error"], "\n"), "per-version Service reviews-v2 of the running canary")
		r := shared.failCanary(t, "promote", "reviews", "-n", ns)
		assert.Contains(t, r.stderr, "Service "+ns+"/reviews-v2: recorded selects version=v2 for the routes, live gone")

		// istiod writes the route's status meanwhile: the route's write
		// may lose that race after the Service's, and is planned again.
		r = shared.canary(t, nil, "weight", "reviews", "40", "-n", ns)
		require.NoError(t, r.err, "%s", r)
		assert.Contains(t, r.stdout, "service/reviews-v2 created\n")
		assert.Contains(t, r.stderr, "reviews-v2 of the running canary were missing; they are created again")
		serves(map[string]uint32{"reviews-v1": 60, "reviews-v2": 40})
		assert.Empty(t, shared.driftStatus(t, ns, "reviews").Drift)
	})
}

// TestDriftInManifests: with -f the files are the live objects: a file
// edited by hand after the canary started is drift too.
func TestDriftInManifests(t *testing.T) {
	ns := shared.newNamespace(t)
	shared.deployVersions(t, ns, "reviews", "v1", "v2")
	dir := t.TempDir()
	file := dir + "/reviews.yaml"
	inNamespace := func(doc string) string {
		return strings.Replace(doc, "metadata: {name: reviews}", "metadata: {name: reviews, namespace: "+ns+"}", 1)
	}
	writeFile(t, file, yamlStream(inNamespace(virtualService("reviews", httpRoutes(defaultRoute("v1")))), inNamespace(reviewsDestinationRule("v1", "v2"))))
	shared.mustCanary(t, "start", "reviews", "-n", ns, "-f", file)
	st := statusOfFiles(t, ns, file)
	assert.Empty(t, st.Drift)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	edited := strings.Replace(string(data), "weight: 10\n", "weight: 0\n", 1)
	edited = strings.Replace(edited, "weight: 90\n", "weight: 100\n", 1)
	require.NotEqual(t, string(data), edited, "the file as start wrote it:\n%s", data)
	writeFile(t, file, edited)
	st = statusOfFiles(t, ns, file)
	assert.Equal(t, intPtr(0), st.LiveWeight)
	require.Len(t, st.Drift, 1, "%+v", st.Drift)
	assert.Equal(t, "v1 100 / v2 0", st.Drift[0].Live)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
}

func statusOfFiles(t *testing.T, ns, file string) driftJSON {
	t.Helper()
	out := shared.mustCanary(t, "status", "reviews", "-n", ns, "-f", file, "-o", "json")
	var st driftJSON
	require.NoError(t, json.Unmarshal([]byte(out), &st), "%s", out)
	return st
}
