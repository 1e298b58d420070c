//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// concurrentRounds is how many times each race is run.
const concurrentRounds = 5

// maxConcurrentRounds bounds the extra rounds TestConcurrentWeights runs
// until two runs really collide.
const maxConcurrentRounds = 40

// together runs `kubectl canary ARGS` once per argument list, all at the same
// instant, and returns their results in the same order.
func together(t *testing.T, c *cluster, argLists ...[]string) []result {
	t.Helper()
	results := make([]result, len(argLists))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, args := range argLists {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = run(t, c.commandEnv(), "", append([]string{"canary"}, args...)...)
		}()
	}
	close(start)
	wg.Wait()
	return results
}

// requireCleanFailure checks that a command that lost a race failed the way
// a user can read: an error message, exit code 1, no crash, nothing on stdout
// that claims success.
func requireCleanFailure(t *testing.T, r result) {
	t.Helper()
	requireExitCode(t, r, 1)
	assert.True(t, strings.HasPrefix(r.stderr, "error: ") || strings.Contains(r.stderr, "\nerror: "), "no error message:\n%s", r)
	assert.NotContains(t, r.stderr, "panic")
	assert.NotContains(t, r.stderr, "goroutine ")
}

// TestConcurrentWeights: two `kubectl canary weight` runs for the same
// Service at the same instant both succeed (the loser of the race re-reads
// and re-applies) or one fails cleanly; the VirtualService ends with one of
// the two weights, consistently: the routes sum to 100, the recorded state
// says the same weight, and running that weight again changes nothing.
func TestConcurrentWeights(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.create(t, ns, bookinfoReviews()) // jason pinned to v2, default on v1
	c.mustCanary(t, "start", "reviews", "-n", ns)
	jason := toJSON(t, route(t, c.get(t, vsV1, ns, "reviews"), "http", 0))
	dr := c.get(t, drV1, ns, "reviews").GetResourceVersion()

	// Runs that happen not to collide prove nothing: go on (bounded) until
	// the API server has refused at least one of their updates.
	rounds := 0
	for round := 0; round < concurrentRounds || (round < maxConcurrentRounds && pluginConflicts(t, c, ns) == 0); round++ {
		rounds++
		a, b := 30+round%20, 70+round%20
		results := together(t, c,
			[]string{"weight", "reviews", strconv.Itoa(a), "-n", ns},
			[]string{"weight", "reviews", strconv.Itoa(b), "-n", ns})
		succeeded := map[int]bool{}
		for i, w := range []int{a, b} {
			if results[i].err == nil {
				succeeded[w] = true
				assert.Contains(t, results[i].stdout, fmt.Sprintf("gets %d%%", w), "round %d: weight %d printed", round, w)
			} else {
				requireCleanFailure(t, results[i])
			}
		}
		require.NotEmpty(t, succeeded, "round %d: both weight runs failed:\n%s\n%s", round, results[0], results[1])

		vs := c.get(t, vsV1, ns, "reviews")
		got := weights(t, vs, "http", 1)
		w := int(got["v2"])
		require.True(t, succeeded[w], "round %d: the VirtualService has weight %d, want one that succeeded (%v): %v", round, w, succeeded, got)
		assert.Equal(t, map[string]int64{"v1": int64(100 - w), "v2": int64(w)}, got, "round %d: the weights must sum to 100", round)
		assert.Len(t, route(t, vs, "http", 1)["route"], 2, "round %d: destinations", round)
		assert.Equal(t, w, stateOf(t, vs, "reviews").Weight, "round %d: the recorded weight is not the routes' weight", round)
		assert.Equal(t, jason, toJSON(t, route(t, vs, "http", 0)), "round %d: the route pinned to v2 changed", round)
		assert.Equal(t, w, c.status(t, ns, "reviews").Weight, "round %d: status", round)
		requireSecondRunUnchanged(t, c, ns, "weight", "reviews", strconv.Itoa(w), "-n", ns)
	}
	assert.Equal(t, dr, c.get(t, drV1, ns, "reviews").GetResourceVersion(), "weight wrote the DestinationRule")
	// The runs did race: the API server refused some of their updates.
	conflicts := pluginConflicts(t, c, ns)
	t.Logf("%d plugin updates refused with 409 Conflict over %d rounds", conflicts, rounds)
	assert.Greater(t, conflicts, 0, "the weight runs never raced; the test proved nothing")
}

// TestConcurrentStarts: two `start`s with different canaries of a
// three-version Service at the same instant: exactly one canary results, and
// the other command fails saying a canary is already in progress, having
// left nothing of its own behind (no subset, no state). Two starts with the
// same intent both succeed. Run with and without existing routing objects.
func TestConcurrentStarts(t *testing.T) {
	t.Parallel()
	c := shared
	for round := 0; round < concurrentRounds; round++ {
		for _, adopted := range []bool{false, true} {
			t.Run(fmt.Sprintf("round %d adopted %v", round, adopted), func(t *testing.T) {
				t.Parallel()
				ns := c.newNamespace(t)
				c.deployVersions(t, ns, "reviews", "v1", "v2", "v3")
				if adopted {
					// Subsets v1 and v2 exist, v3 does not.
					c.create(t, ns, bookinfoReviews())
				}
				results := together(t, c,
					[]string{"start", "reviews", "--canary", "v2", "-n", ns},
					[]string{"start", "reviews", "--canary", "v3", "-n", ns})
				var winner, loser string
				for i, canary := range []string{"v2", "v3"} {
					if results[i].err == nil {
						require.Empty(t, winner, "both starts succeeded with different canaries:\n%s\n%s", results[0], results[1])
						winner = canary
					} else {
						requireCleanFailure(t, results[i])
						assert.Contains(t, results[i].stderr, "already in progress", "the loser says why")
						loser = canary
					}
				}
				require.NotEmpty(t, winner, "both starts failed:\n%s\n%s", results[0], results[1])
				require.NotEmpty(t, loser)

				// One canary, the winner's, on every object that records one.
				states := 0
				for _, gvr := range []struct {
					name string
					list func() []unstructured.Unstructured
				}{
					{"VirtualService", func() []unstructured.Unstructured { return c.list(t, vsV1, ns) }},
					{"DestinationRule", func() []unstructured.Unstructured { return c.list(t, drV1, ns) }},
				} {
					for _, obj := range gvr.list() {
						if _, ok := obj.GetAnnotations()["kubectl-canary.io/reviews"]; !ok {
							continue
						}
						states++
						st := stateOf(t, &obj, "reviews")
						assert.Equal(t, winner, st.Canary, "%s %s records canary %s, the winner is %s", gvr.name, obj.GetName(), st.Canary, winner)
						assert.Equal(t, "v1", st.Stable, "%s %s", gvr.name, obj.GetName())
						assert.Equal(t, "Progressing", st.Phase, "%s %s", gvr.name, obj.GetName())
					}
				}
				assert.Greater(t, states, 0, "no object records the canary")
				js := c.status(t, ns, "reviews")
				assert.Equal(t, winner, js.Canary)
				assert.Equal(t, 10, js.Weight)

				vs := c.get(t, vsV1, ns, "reviews")
				i := 0
				if adopted {
					i = 1 // after jason's route
				}
				assert.Equal(t, map[string]int64{"v1": 90, winner: 10}, weights(t, vs, "http", i))
				// The loser's subset is there only if it was there before.
				wantSubsets := map[string]bool{"v1": true, winner: true}
				if adopted {
					wantSubsets["v2"] = true
				}
				got := map[string]bool{}
				for name := range subsets(c.get(t, drV1, ns, "reviews")) {
					got[name] = true
				}
				assert.Equal(t, wantSubsets, got, "subsets after the race (loser %s)", loser)

				// The same intent twice at once: both succeed, one canary.
				c.mustCanary(t, "abort", "reviews", "-n", ns)
				results = together(t, c,
					[]string{"start", "reviews", "--canary", loser, "-n", ns},
					[]string{"start", "reviews", "--canary", loser, "-n", ns})
				for _, r := range results {
					require.NoError(t, r.err, "a start with the same intent as a concurrent one failed:\n%s", r)
				}
				js = c.status(t, ns, "reviews")
				assert.Equal(t, loser, js.Canary)
				assert.Equal(t, "Progressing", js.Phase)
				assert.Equal(t, map[string]int64{"v1": 90, loser: 10}, weights(t, c.get(t, vsV1, ns, "reviews"), "http", i))
			})
		}
	}
}

// TestConcurrentStartsInterleaved is the race of TestConcurrentStarts in the
// one order that the rounds above meet only now and then, forced by delaying
// proxies in front of the API server: start --canary v3 adds its subset to
// the DestinationRule, then start --canary v2 (which needs no new subset)
// splits the VirtualService, then v3's update of the VirtualService conflicts.
// v3 must fail, and leave nothing of its own behind.
func TestConcurrentStartsInterleaved(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2", "v3")
	c.create(t, ns, bookinfoReviews()) // subsets v1 and v2
	dr0 := c.get(t, drV1, ns, "reviews")

	// Writes only; dry runs (start sends every write as one first) pass at once.
	delayWrites := func(resource string, d time.Duration) func(*http.Request) time.Duration {
		return func(r *http.Request) time.Duration {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/"+resource+"/") && r.URL.Query().Get("dryRun") == "" {
				return d
			}
			return 0
		}
	}
	v2 := delayingProxy(t, c, delayWrites("virtualservices", 700*time.Millisecond))
	v3 := delayingProxy(t, c, func(r *http.Request) time.Duration {
		// The DestinationRule once v2 has read it, the VirtualService once
		// v2 has written it.
		return delayWrites("destinationrules", 300*time.Millisecond)(r) + delayWrites("virtualservices", 1500*time.Millisecond)(r)
	})
	results := make([]result, 2)
	var wg sync.WaitGroup
	begin := make(chan struct{})
	for i, kc := range []struct{ kubeconfig, canary string }{{v2, "v2"}, {v3, "v3"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-begin
			results[i] = run(t, c.commandEnv("KUBECONFIG="+kc.kubeconfig), "", "canary", "start", "reviews", "--canary", kc.canary, "-n", ns)
		}()
	}
	close(begin)
	wg.Wait()

	require.NoError(t, results[0].err, "start --canary v2 should have won:\n%s", results[0])
	requireCleanFailure(t, results[1])
	assert.Contains(t, results[1].stderr, "already in progress")
	js := c.status(t, ns, "reviews")
	assert.Equal(t, "v2", js.Canary)
	assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, c.get(t, vsV1, ns, "reviews"), "http", 1))
	dr := c.get(t, drV1, ns, "reviews")
	assert.Equal(t, spec(dr0), spec(dr), "the failed start --canary v3 left its change in the DestinationRule")
	if st, ok := dr.GetAnnotations()["kubectl-canary.io/reviews"]; ok {
		assert.NotContains(t, st, `"canary":"v3"`, "the DestinationRule records the failed start's canary")
	}
}

// list lists the objects of a resource in ns.
func (c *cluster) list(t *testing.T, gvr schema.GroupVersionResource, ns string) []unstructured.Unstructured {
	t.Helper()
	l, err := c.dyn.Resource(gvr).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	return l.Items
}
