package routing

// setWeight moves a running canary to a new weight (and mirror).
func (p *planner) setWeight() (*State, error) {
	if err := validateWeight(p.intent.Weight); err != nil {
		return nil, err
	}
	active, err := p.activeState()
	if err != nil {
		return nil, err
	}
	if active == nil {
		return nil, p.noCanaryError()
	}
	first, err := p.backend.setCanaryWeight(active)
	if err != nil {
		return nil, err
	}
	if first == nil {
		return nil, p.noCanaryError()
	}
	return first, nil
}

// changeMatches replaces the match rules of a running canary; the split of
// the managed routes stays as it is.
func (p *planner) changeMatches() (*State, error) {
	active, err := p.activeState()
	if err != nil {
		return nil, err
	}
	if active == nil {
		return nil, p.noCanaryError()
	}
	first, err := p.backend.setCanaryMatches()
	if err != nil {
		return nil, err
	}
	if first == nil {
		return nil, p.noCanaryError()
	}
	return first, nil
}
