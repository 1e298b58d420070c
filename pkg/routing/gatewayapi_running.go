package routing

// setCanaryWeight creates again the canary's Services if they went
// missing, then splits each route's managed rules at the new weight.
func (b *gatewayAPIBackend) setCanaryWeight(active *State) (*State, error) {
	b.restoreServices(active)
	var first *State
	for _, route := range b.routes {
		st := b.progressingState(route)
		if st == nil {
			continue
		}
		if err := b.splitRules(route, st.Routes, targetsOf(st), int64(b.intent.Weight)); err != nil {
			return nil, err
		}
		st.Weight = b.intent.Weight
		if b.intent.Mirror != nil {
			st.Mirror = *b.intent.Mirror
		}
		if err := b.shapeExtras(route, st); err != nil {
			return nil, err
		}
		b.setState(route, st)
		if first == nil {
			first = st
		}
	}
	return first, nil
}

// setCanaryMatches replaces the match rules of each route that carries
// the canary.
func (b *gatewayAPIBackend) setCanaryMatches() (*State, error) {
	var first *State
	for _, route := range b.routes {
		st := b.progressingState(route)
		if st == nil {
			continue
		}
		st.Matches = b.intent.Matches
		if err := b.shapeExtras(route, st); err != nil {
			return nil, err
		}
		b.setState(route, st)
		if first == nil {
			first = st
		}
	}
	return first, nil
}
