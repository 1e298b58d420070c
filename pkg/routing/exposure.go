package routing

// RaisesCanaryShare says whether a change gives the canary more of the
// Service's traffic than the routing gives it before the change: only such
// a change needs a ready canary. Lowering the canary's exposure (weight
// down or to 0, abort, no match rules or narrower ones, less mirror, no
// stickiness) must go through even, and above all, when the canary fails.
//
// before is the canary in progress before the change, with its live share
// (LiveCanary; nil when none runs: the canary then gets nothing); after is
// the state the change's plan records.
func RaisesCanaryShare(before *State, after State) bool {
	switch after.Phase {
	case PhaseAborted:
		return false
	case PhasePromoted:
		// Promote sends the canary everything.
		return true
	}
	if before == nil || before.Phase != PhaseProgressing || before.Canary != after.Canary {
		before = &State{}
	}
	if after.Weight > before.Weight || after.Mirror > before.Mirror || (after.Sticky && !before.Sticky) {
		return true
	}
	// The rules given together must all match: a set with a rule more
	// matches fewer requests, one with a rule less (or a first set) more.
	if len(after.Matches) > 0 {
		if len(before.Matches) == 0 {
			return true
		}
		kept := make(map[MatchRule]bool, len(after.Matches))
		for _, m := range after.Matches {
			kept[m] = true
		}
		for _, m := range before.Matches {
			if !kept[m] {
				return true
			}
		}
	}
	return false
}

// LiveCanary is the canary in progress on the snapshot's Service
// (RunningCanary; clusterDomain as Intent.ClusterDomain), its Weight the
// canary's share as the live managed routes give it where they can be
// read: the lowest over the routes, so that a change raising any of them
// counts as raising. A managed route someone changed past recognition is
// left out; with none left, the recorded weight stands. The live routes
// are read as status and check read them (drift.go).
func LiveCanary(snap Snapshot, clusterDomain string) (*State, error) {
	svc := snap.Service
	p := newPlanner(snap, Intent{ClusterDomain: clusterDomain}, serviceRef{name: svc.Name, namespace: svc.Namespace, clusterDomain: clusterDomain})
	st, err := p.activeState()
	if err != nil || st == nil {
		return st, err
	}
	if live, _ := p.live(); live.lowest != nil {
		st.Weight = *live.lowest
	}
	return st, nil
}
