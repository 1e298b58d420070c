package routing

// setCanaryWeight creates again the canary's Services if they went
// missing, then splits each route's managed rules at the new weight.
func (b *gatewayAPIBackend) setCanaryWeight(active *State) (*State, error) {
	b.restoreServices(active)
	return b.editProgressing(b.routes, func(route *object, st *State) error {
		if err := b.splitRules(route, st.Routes, targetsOf(st), int64(b.intent.Weight)); err != nil {
			return err
		}
		st.Weight = b.intent.Weight
		if b.intent.Mirror != nil {
			st.Mirror = *b.intent.Mirror
		}
		return b.shapeExtras(route, st)
	})
}

// setCanaryMatches replaces the match rules of each route that carries
// the canary.
func (b *gatewayAPIBackend) setCanaryMatches() (*State, error) {
	return b.editProgressing(b.routes, func(route *object, st *State) error {
		st.Matches = b.intent.Matches
		return b.shapeExtras(route, st)
	})
}
