package routing

// gatewayAPIBackend plans a canary in Kubernetes Gateway API routes
// (HTTPRoutes, GRPCRoutes, TCPRoutes, TLSRoutes). A route cannot name a
// subset of a Service, so each version is addressed through a Service of
// its own (gatewayapi_services.go); the managed rules of every route that
// carries the Service split their backendRefs between the stable and the
// canary version's Service. The state is recorded on the routes alone:
// State.StableSubset and CanarySubset name the per-version Services, and
// AddedSubsets those start created, which promote and abort prune.
type gatewayAPIBackend struct {
	*planner
	routes []*object
	// services are the per-version Services the plan creates or deletes.
	services []*object
}

var _ backend = (*gatewayAPIBackend)(nil)

func newGatewayAPIBackend(p *planner) *gatewayAPIBackend {
	b := &gatewayAPIBackend{planner: p}
	for _, route := range p.snap.GatewayAPIRoutes {
		b.routes = append(b.routes, &object{live: route, desired: route.DeepCopy(), stage: StageRoutes})
	}
	return b
}

// objects lists the routes first: their state speaks for the canary.
func (b *gatewayAPIBackend) objects() []*object {
	return append(append([]*object{}, b.routes...), b.services...)
}

// prepareStart has nothing to find: the per-version Services depend on the
// versions, which start knows only later.
func (b *gatewayAPIBackend) prepareStart() error { return nil }

// routedVersions are the versions the routes' backendRefs send the
// Service's traffic to, through the per-version Services. Catch-all rules
// speak for the Service; only when there are none do rules with matches
// count.
func (b *gatewayAPIBackend) routedVersions(versions *Versions) []string {
	byService := map[string]string{}
	for _, value := range versions.Values() {
		if s := b.versionServiceOf(versions.Label, value); s != nil {
			byService[s.Name] = value
		}
	}
	catchAll, matched := map[string]int64{}, map[string]int64{}
	for _, route := range b.routes {
		for _, raw := range rulesOf(route.spec()) {
			rule := asMap(raw)
			tally := matched
			if isCatchAllRule(rule) {
				tally = catchAll
			}
			for _, ref := range backendRefsOf(rule) {
				name, ok := b.namedService(route, asMap(ref))
				if v, known := byService[name]; ok && known && backendWeight(asMap(ref)) > 0 {
					tally[v] += backendWeight(asMap(ref))
				}
			}
		}
	}
	tally := catchAll
	if len(tally) == 0 {
		tally = matched
	}
	return sortedKeys(tally)
}

// isCatchAllRule reports whether a rule takes every request of its route:
// no matches, or only the match the API defaults to (path prefix "/").
func isCatchAllRule(rule map[string]interface{}) bool {
	for _, raw := range asSlice(rule["matches"]) {
		m := asMap(raw)
		path := asMap(m["path"])
		if len(m) != 1 || path == nil || asString(path["value"]) != "/" || (asString(path["type"]) != "PathPrefix" && asString(path["type"]) != "") {
			return false
		}
	}
	return true
}
