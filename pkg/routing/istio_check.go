package routing

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// istioCheck is one Check of the Service's VirtualServices and
// DestinationRules.
type istioCheck struct {
	*checker
	// routing are the VirtualServices that route to the Service, claiming
	// those that claim its host without routing to it (Flagger's, which
	// route to <service>-primary and <service>-canary), rules the
	// DestinationRules of its host.
	routing, claiming, rules []*unstructured.Unstructured
}

// check runs the preflight over the Service's VirtualServices and
// DestinationRules, the generic checks (owners, versions, readiness) among
// them in the order their findings have always come.
func (b *istioBackend) check(c *checker, opts CheckOptions) {
	ic := b.newIstioCheck(c)
	objects := append(append(append([]*unstructured.Unstructured{}, ic.routing...), ic.claiming...), ic.rules...)
	ic.checkOwners(objects)
	ic.checkGitOps(objects)
	ic.checkGatewayAPIRoutes(ic.routing)
	ic.checkAmbient()
	ic.checkRuleCount()
	deployments, versions := ic.versions()
	definedSubsets := ic.checkSubsets(deployments)
	if c.active != nil {
		// The running canary's own subsets, when gone, are drift: check
		// reports them with their fix (driftFindings) and weight adds them
		// back, so its preflight must not stop it for them.
		definedSubsets = withSubsets(definedSubsets, c.active.StableSubset, c.active.CanarySubset)
	}
	ic.findings = append(ic.findings, checkRoutes(ic.routing, b.svc, definedSubsets)...)
	if b.snap.Services != nil {
		ic.findings = append(ic.findings, checkBackedHosts(b.snap.VirtualServices, b.snap.Services, b.svc)...)
	}
	ic.findings = append(ic.findings, checkHostScopes(b.snap.VirtualServices, b.svc)...)
	if versions != nil {
		ic.checkReadiness(versions, opts)
	}
}

// newIstioCheck sorts the live objects by how they relate to the Service.
func (b *istioBackend) newIstioCheck(c *checker) *istioCheck {
	ic := &istioCheck{checker: c}
	for _, vs := range b.snap.VirtualServices {
		switch spec := asMap(vs.Object["spec"]); {
		case routesToService(spec, b.svc, vs.GetNamespace()):
			ic.routing = append(ic.routing, vs)
		case claimsHost(spec, b.svc, vs.GetNamespace()):
			ic.claiming = append(ic.claiming, vs)
		}
	}
	for _, dr := range b.snap.DestinationRules {
		if b.svc.isHost(asString(asMap(dr.Object["spec"])["host"]), dr.GetNamespace()) {
			ic.rules = append(ic.rules, dr)
		}
	}
	return ic
}

// checkAmbient warns that in an ambient namespace Istio applies
// VirtualServices only on waypoints, and only as an alpha feature.
func (c *istioCheck) checkAmbient() {
	if !inAmbientNamespace(c.snap) {
		return
	}
	c.add(SeverityWarning, c.svcRef, "is in ambient namespace %s (label %s=%s), where Istio applies VirtualServices only on waypoints and only as an alpha feature; consider {RoutingAPI} %s, which Istio supports there", c.snap.Service.Namespace, AmbientModeLabel, AmbientMode, RoutingAPIGatewayAPI)
}

// checkRuleCount reports several DestinationRules for the Service's host.
func (c *istioCheck) checkRuleCount() {
	if len(c.rules) < 2 {
		return
	}
	names := make([]string, 0, len(c.rules))
	for _, dr := range c.rules {
		names = append(names, dr.GetName())
	}
	c.add(SeverityError, c.svcRef, "DestinationRules %s all apply to its host and Istio uses only one; merge them into one", strings.Join(names, ", "))
}

// checkSubsets reports subsets defined twice and, when the Deployments
// behind the Service are known, subsets that select none of them. It
// returns the names of all subsets defined for the Service's host.
func (c *istioCheck) checkSubsets(deployments []*appsv1.Deployment) map[string]bool {
	defined := map[string]bool{}
	for _, dr := range c.rules {
		seen := map[string]bool{}
		for _, raw := range subsetsOf(asMap(dr.Object["spec"])) {
			s := asMap(raw)
			name := asString(s["name"])
			if seen[name] {
				c.add(SeverityError, objectRef(dr), "defines subset %q twice; Istio rejects it: remove one of them", name)
			}
			seen[name], defined[name] = true, true
			if deployments == nil {
				continue
			}
			checkSubsetSelects(s, c.snap.Service.Spec.Selector, deployments, func(format string, args ...interface{}) {
				c.add(SeverityWarning, objectRef(dr), "subset %q %s", name, fmt.Sprintf(format, args...))
			})
		}
	}
	return defined
}

// claimsHost reports whether a VirtualService lists the Service's host.
func claimsHost(spec map[string]interface{}, svc serviceRef, objectNamespace string) bool {
	for _, h := range asSlice(spec["hosts"]) {
		if svc.isHost(asString(h), objectNamespace) {
			return true
		}
	}
	return false
}

// checkSubsetSelects warns when a subset's labels pick no Deployment behind
// the Service, or contradict the Service's own selector.
func checkSubsetSelects(subset map[string]interface{}, selector map[string]string, deployments []*appsv1.Deployment, warn func(string, ...interface{})) {
	lbls := asMap(subset["labels"])
	for k, v := range lbls {
		if want, ok := selector[k]; ok && want != asString(v) {
			warn("selects %s=%s, but the Service only selects pods with %s=%s: it can never have endpoints", k, asString(v), k, want)
			return
		}
	}
	for _, d := range deployments {
		matches := true
		for k, v := range lbls {
			if d.Spec.Template.Labels[k] != asString(v) {
				matches = false
			}
		}
		if matches {
			return
		}
	}
	warn("selects no Deployment behind the Service; traffic routed to it would fail")
}

// checkRoutes reports routes Istio would reject or that would send traffic nowhere.
func checkRoutes(virtualServices []*unstructured.Unstructured, svc serviceRef, definedSubsets map[string]bool) []Finding {
	var findings []Finding
	for _, vs := range virtualServices {
		spec := asMap(vs.Object["spec"])
		for _, kind := range routeKinds {
			for i, raw := range routesOf(spec, kind) {
				route := asMap(raw)
				where := routeRefFor(kind, i, route).String()
				dests := destinationsOf(route)
				var sum int64
				weighted := false
				for _, rd := range dests {
					d := asMap(rd)
					if w, ok := asInt(d["weight"]); ok {
						weighted = true
						sum += w
						if w < 0 {
							findings = append(findings, newFinding(SeverityError, objectRef(vs), textf("%s has a negative weight (%d); set it from 0 to 100", where, w)))
						}
					}
					subset := destinationSubset(d)
					if subset != "" && svc.isHost(destinationHost(d), vs.GetNamespace()) && !definedSubsets[subset] {
						findings = append(findings, newFinding(SeverityError, objectRef(vs), textf("%s sends traffic to subset %q, which no DestinationRule of the Service defines: those requests fail. Define the subset or fix the route", where, subset)))
					}
				}
				if len(dests) > 1 && weighted && sum != 100 {
					findings = append(findings, newFinding(SeverityError, objectRef(vs), textf("%s has weights summing to %d, not 100; fix the weights", where, sum)))
				}
			}
		}
	}
	return findings
}

// checkBackedHosts warns about route destinations that name a Service of
// the namespace that does not exist: Istio answers those requests with 503.
func checkBackedHosts(virtualServices []*unstructured.Unstructured, services []corev1.Service, svc serviceRef) []Finding {
	exists := map[string]bool{}
	for _, s := range services {
		exists[s.Name] = true
	}
	var findings []Finding
	for _, vs := range virtualServices {
		if vs.GetNamespace() != svc.namespace {
			continue
		}
		seen := map[string]bool{}
		for _, kind := range routeKinds {
			for _, raw := range routesOf(asMap(vs.Object["spec"]), kind) {
				for _, d := range destinationsOf(asMap(raw)) {
					host := strings.ToLower(destinationHost(asMap(d)))
					name, ok := serviceOfNamespace(host, svc.namespace, svc.clusterDomain)
					if ok && !exists[name] && !seen[host] {
						seen[host] = true
						findings = append(findings, newFinding(SeverityWarning, objectRef(vs), textf("routes to host %s, but no Service %s exists in namespace %s: those requests fail. Create the Service or fix the host", host, name, svc.namespace)))
					}
				}
			}
		}
	}
	return findings
}

// serviceOfNamespace returns the Service name a host means when it names a
// Service of namespace (short, name.ns, name.ns.svc or the FQDN).
func serviceOfNamespace(host, namespace, clusterDomain string) (string, bool) {
	if host == "" || strings.Contains(host, "*") {
		return "", false
	}
	parts := strings.SplitN(host, ".", 2)
	switch {
	case len(parts) == 1:
		return parts[0], true
	case parts[1] == namespace, parts[1] == namespace+".svc", parts[1] == namespace+".svc."+clusterDomain:
		return parts[0], true
	}
	return "", false
}

// checkHostScopes warns when several VirtualServices claim the Service's
// host in the same gateway scope: Istio then applies only one of them.
func checkHostScopes(virtualServices []*unstructured.Unstructured, svc serviceRef) []Finding {
	claims := map[string][]string{}
	for _, vs := range virtualServices {
		spec := asMap(vs.Object["spec"])
		gateways := asSlice(spec["gateways"])
		if len(gateways) == 0 {
			gateways = []interface{}{"mesh"}
		}
		for _, h := range asSlice(spec["hosts"]) {
			if !svc.isHost(asString(h), vs.GetNamespace()) {
				continue
			}
			for _, g := range gateways {
				key := asString(g)
				claims[key] = appendUnique(claims[key], vs.GetName())
			}
		}
	}
	var findings []Finding
	for gateway, names := range claims {
		if len(names) > 1 {
			findings = append(findings, newFinding(SeverityWarning, "Service "+svc.namespace+"/"+svc.name, textf("VirtualServices %s all claim its host for %s; Istio applies only one. Merge them into one", strings.Join(names, ", "), gateway)))
		}
	}
	sort.Slice(findings, func(i, j int) bool { return findings[i].Message < findings[j].Message })
	return findings
}

// withSubsets is defined with names added, in a copy.
func withSubsets(defined map[string]bool, names ...string) map[string]bool {
	out := make(map[string]bool, len(defined)+len(names))
	for name, ok := range defined {
		out[name] = ok
	}
	for _, name := range names {
		if name != "" {
			out[name] = true
		}
	}
	return out
}
