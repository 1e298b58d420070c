package routing

// istioBackend plans a canary in Istio's routing objects: the subsets of
// the Service's DestinationRule name the versions, and the routes of every
// VirtualService that routes the Service are split between the stable and
// the canary subset. Match rules and stickiness add routes before the
// split ones; a mirror shadows their traffic; an ingress gateway's hosts
// get a VirtualService of their own.
type istioBackend struct {
	*planner
	vss []*object
	drs []*object
	// dr is the DestinationRule whose subsets name the versions, once
	// prepareStart has found or planned it.
	dr *object
	// apiVersion is the networking.istio.io version of the objects the plan creates.
	apiVersion string
}

var _ backend = (*istioBackend)(nil)

func newIstioBackend(p *planner) *istioBackend {
	b := &istioBackend{planner: p, apiVersion: p.snap.APIVersion}
	if b.apiVersion == "" {
		b.apiVersion = "networking.istio.io/v1"
	}
	for _, vs := range p.snap.VirtualServices {
		b.vss = append(b.vss, &object{live: vs, desired: vs.DeepCopy(), stage: StageRoutes})
	}
	for _, dr := range p.snap.DestinationRules {
		b.drs = append(b.drs, &object{live: dr, desired: dr.DeepCopy(), stage: StageSubsets})
	}
	return b
}

// objects lists the VirtualServices first: their state speaks for the canary.
func (b *istioBackend) objects() []*object {
	return append(append([]*object{}, b.vss...), b.drs...)
}
