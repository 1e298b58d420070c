package routing

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRaisesCanaryShare(t *testing.T) {
	header := MatchRule{Name: "x-tester", Op: "exact", Value: "yes"}
	cookie := MatchRule{Cookie: true, Name: "beta", Op: "exact", Value: "on"}
	running := func(edit func(st *State)) *State {
		st := &State{Canary: "v2", Stable: "v1", Phase: PhaseProgressing, Weight: 30}
		if edit != nil {
			edit(st)
		}
		return st
	}
	after := func(edit func(st *State)) State { return *running(edit) }
	cases := []struct {
		name   string
		before *State
		after  State
		want   bool
	}{
		{"weight down", running(nil), after(func(st *State) { st.Weight = 10 }), false},
		{"weight unchanged", running(nil), after(nil), false},
		{"weight 0", running(nil), after(func(st *State) { st.Weight = 0 }), false},
		{"weight up", running(nil), after(func(st *State) { st.Weight = 50 }), true},
		{"abort", running(nil), State{Canary: "v2", Phase: PhaseAborted}, false},
		{"promote", running(nil), State{Stable: "v2", Phase: PhasePromoted}, true},
		{"promote at 100", running(func(st *State) { st.Weight = 100 }), State{Stable: "v2", Phase: PhasePromoted}, true},
		{"start at 0", nil, after(func(st *State) { st.Weight = 0 }), false},
		{"start at 10", nil, after(func(st *State) { st.Weight = 10 }), true},
		{"start at 0 with a header rule", nil, after(func(st *State) { st.Weight, st.Matches = 0, []MatchRule{header} }), true},
		{"start at 0 with a mirror", nil, after(func(st *State) { st.Weight, st.Mirror = 0, 5 }), true},
		{"start at 0 sticky", nil, after(func(st *State) { st.Weight, st.Sticky = 0, true }), true},
		{"start after a promoted canary", &State{Stable: "v2", Phase: PhasePromoted}, after(func(st *State) { st.Weight = 10 }), true},
		{"start again as it runs", running(nil), after(nil), false},
		{"another canary", running(nil), after(func(st *State) { st.Canary, st.Weight = "v3", 10 }), true},
		{"header rule removed", running(func(st *State) { st.Matches = []MatchRule{header} }), after(nil), false},
		{"header rule added", running(nil), after(func(st *State) { st.Matches = []MatchRule{header} }), true},
		{"header rule replaced", running(func(st *State) { st.Matches = []MatchRule{header} }), after(func(st *State) { st.Matches = []MatchRule{cookie} }), true},
		{"one of two rules removed matches more", running(func(st *State) { st.Matches = []MatchRule{header, cookie} }), after(func(st *State) { st.Matches = []MatchRule{cookie} }), true},
		{"a rule added to the set matches less", running(func(st *State) { st.Matches = []MatchRule{header} }), after(func(st *State) { st.Matches = []MatchRule{cookie, header} }), false},
		{"mirror down", running(func(st *State) { st.Mirror = 20 }), after(func(st *State) { st.Mirror = 5 }), false},
		{"mirror up", running(func(st *State) { st.Mirror = 5 }), after(func(st *State) { st.Mirror = 20 }), true},
		{"mirror kept, weight 0", running(func(st *State) { st.Mirror = 20 }), after(func(st *State) { st.Mirror, st.Weight = 20, 0 }), false},
		{"sticky dropped", running(func(st *State) { st.Sticky = true }), after(nil), false},
		{"sticky on", running(nil), after(func(st *State) { st.Sticky = true }), true},
		{"weight down, sticky on", running(nil), after(func(st *State) { st.Weight, st.Sticky = 10, true }), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, RaisesCanaryShare(c.before, c.after))
		})
	}
}

// After a promote, the version it retired is still deployed: start never
// takes it as the canary unasked, on either routing API, and says what was
// promoted from what and when; named, it is canaried again.
func TestStartAfterPromoteDoesNotPickTheRetiredStable(t *testing.T) {
	for name, load := range map[string]func() *Snapshot{
		"istio":       func() *Snapshot { return loadSnapshot(t, "no-istio") },
		"gateway api": func() *Snapshot { return loadGatewaySnapshot(t, "mesh-new") },
	} {
		t.Run(name, func(t *testing.T) {
			snap := load()
			for _, intent := range []Intent{start(10), promote} {
				plan, err := Compute(*snap, intent)
				require.NoError(t, err)
				applyInStages(t, snap, plan)
			}
			promotedAt := snap.Now.Add(-time.Minute).UTC().Format(time.RFC3339)
			_, err := Compute(*snap, start(10))
			require.Error(t, err)
			assert.Equal(t, "version=v2 of service shop/reviews was promoted at "+promotedAt+", replacing version=v1, which is still deployed and the only other version; start does not canary a retired version unasked: to canary version=v1 again, pass canary v1, or deploy the new version to canary", err.Error())
			var intentErr *IntentError
			require.ErrorAs(t, err, &intentErr)
			assert.Contains(t, intentErr.Text.Render(func(f Field) string { return "--" + strings.ToLower(string(f)) }), "pass --canary v1")

			plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v1"})
			require.NoError(t, err, "named, the retired version is canaried again")
			assert.Equal(t, "v2", plan.State.Stable)
			assert.Equal(t, "v1", plan.State.Canary)
		})
	}
}

// With a third version deployed beside the retired one, start does not
// choose either: it lists both, saying which one the promote retired.
func TestStartAfterPromoteDoesNotChooseBesideTheRetiredStable(t *testing.T) {
	snap := loadSnapshot(t, "no-istio")
	for _, intent := range []Intent{start(10), promote} {
		plan, err := Compute(*snap, intent)
		require.NoError(t, err)
		snap.apply(plan)
	}
	v3 := snap.Deployments[1].DeepCopy()
	v3.Name = "reviews-v3"
	v3.Spec.Template.Labels = map[string]string{"app": "reviews", "version": "v3"}
	snap.Deployments = append(snap.Deployments, *v3)
	_, err := Compute(*snap, start(10))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "version=v2 of service shop/reviews was promoted at 2026-03-01T12:01:00Z, replacing version=v1, which is still deployed; start does not choose the canary beside a retired version: pass canary with one of v1, v3")
	plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10, Canary: "v3"})
	require.NoError(t, err)
	assert.Equal(t, "v3", plan.State.Canary)

	// Once the retired version is scaled down and deleted, the one other
	// version is the canary again.
	snap.Deployments = append(snap.Deployments[1:2:2], *v3)
	plan, err = Compute(*snap, start(10))
	require.NoError(t, err)
	assert.Equal(t, "v3", plan.State.Canary)
}

// TestLiveCanaryReadsTheManagedRoutes: the share a change is compared with
// is the live one; weights patched by hand below the recorded one make a
// weight between them a raise.
func TestLiveCanaryReadsTheManagedRoutes(t *testing.T) {
	for name, c := range map[string]struct {
		snap  func() *Snapshot
		kind  string
		patch func(route map[string]interface{})
	}{
		"istio": {func() *Snapshot { return loadSnapshot(t, "no-istio") }, "VirtualService", func(route map[string]interface{}) {
			dests := destinationsOf(route)
			asMap(dests[0])["weight"], asMap(dests[1])["weight"] = int64(95), int64(5)
		}},
		"gateway api": {func() *Snapshot { return loadGatewaySnapshot(t, "mesh-new") }, "HTTPRoute", func(rule map[string]interface{}) {
			refs := backendRefsOf(rule)
			asMap(refs[0])["weight"], asMap(refs[1])["weight"] = int64(95), int64(5)
		}},
	} {
		t.Run(name, func(t *testing.T) {
			snap := c.snap()
			plan, err := Compute(*snap, start(30))
			require.NoError(t, err)
			applyInStages(t, snap, plan)
			live, err := LiveCanary(*snap, "")
			require.NoError(t, err)
			require.NotNil(t, live)
			assert.Equal(t, 30, live.Weight)

			obj := snap.object(c.kind, "reviews")
			list := "http"
			if c.kind == "HTTPRoute" {
				list = gatewayRules
			}
			c.patch(asMap(asSlice(asMap(obj.Object["spec"])[list])[0]))
			live, err = LiveCanary(*snap, "")
			require.NoError(t, err)
			assert.Equal(t, 5, live.Weight, "the hand-patched weight")
			recorded, err := RunningCanary(*snap, "reviews")
			require.NoError(t, err)
			assert.Equal(t, 30, recorded.Weight)

			plan, err = Compute(*snap, weight(10))
			require.NoError(t, err)
			assert.True(t, RaisesCanaryShare(live, plan.State), "10%% raises the live 5%%")
			assert.False(t, RaisesCanaryShare(recorded, plan.State), "though not the recorded 30%%")
		})
	}
}
