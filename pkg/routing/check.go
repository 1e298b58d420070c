package routing

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Severity says whether a finding stops a write.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Finding is one result of the preflight check: what is wrong, with which
// object, and what to do.
type Finding struct {
	Severity Severity `json:"severity"`
	Object   string   `json:"object"`
	// Message says what is wrong and what to do. It names the parts of the
	// request the way the command line does (--force, --version-label), as
	// it always has, until every caller words Text itself; then it can hold
	// Text.String().
	Message string `json:"message"`
	// Text is the same message with the parts of the request it names as
	// placeholders (FieldOverride, FieldVersionLabel), for the caller to
	// word. The JSON form carries Message alone.
	Text Text `json:"-"`
}

// legacyFlags are the flags Message names fields by until every caller
// words Text itself (pkg/cmd's findingMessage): the only fields a finding
// names.
var legacyFlags = map[Field]string{FieldOverride: "--force", FieldVersionLabel: "--version-label"}

func newFinding(sev Severity, object string, text Text) Finding {
	message := text.Render(func(f Field) string {
		if flag, ok := legacyFlags[f]; ok {
			return flag
		}
		return f.Word()
	})
	return Finding{Severity: sev, Object: object, Message: message, Text: text}
}

// CheckOptions tune the preflight.
type CheckOptions struct {
	// MinAvailable is the fewest available canary replicas that may take
	// traffic; below it (and always at zero) the check reports an error.
	MinAvailable int32
	// IdleCanary skips the canary's readiness: it is about to get no traffic
	// (weight 0 with no match rule, mirror or stickiness).
	IdleCanary bool
}

// foreignMark is how an object shows that another tool manages it, and
// what to do about it besides running the canary with that tool.
type foreignMark struct {
	evidence string
	remedy   string
}

// foreignOwners recognise routing objects another tool manages, each by a
// mark that tool leaves on them: a canary run by hand would fight it. mark
// returns nil when obj carries none.
var foreignOwners = []struct {
	tool string
	mark func(obj *unstructured.Unstructured) *foreignMark
}{
	{"Flagger", flaggerMark},
	{"Argo Rollouts", func(obj *unstructured.Unstructured) *foreignMark {
		if m := ownerMark(obj, "argoproj.io/"); m != nil {
			return m
		}
		if name, ok := obj.GetAnnotations()["argo-rollouts.argoproj.io/managed-by-rollouts"]; ok {
			return &foreignMark{evidence: "annotation argo-rollouts.argoproj.io/managed-by-rollouts=" + name}
		}
		return nil
	}},
	{"a Kiali wizard", func(obj *unstructured.Unstructured) *foreignMark {
		if wizard, ok := obj.GetLabels()["kiali_wizard"]; ok {
			return &foreignMark{evidence: "label kiali_wizard=" + wizard}
		}
		return nil
	}},
}

// flaggerOriginalConfig is the annotation in which Flagger's Istio router
// saves the spec of a VirtualService it takes over (unless kubectl's
// last-applied-configuration already holds it), to restore it when its
// Canary is deleted. The restore keeps the annotation.
const flaggerOriginalConfig = "flagger.kubernetes.io/original-configuration"

// flaggerMark recognises what Flagger leaves on routing objects: an owner
// reference to its Canary on those it creates, its annotation on a
// VirtualService it took over.
func flaggerMark(obj *unstructured.Unstructured) *foreignMark {
	if m := ownerMark(obj, "flagger.app/"); m != nil {
		return m
	}
	if obj.GetLabels()["app.kubernetes.io/managed-by"] == "flagger" {
		return &foreignMark{evidence: "label app.kubernetes.io/managed-by=flagger"}
	}
	if _, ok := obj.GetAnnotations()[flaggerOriginalConfig]; ok {
		return &foreignMark{
			evidence: "annotation " + flaggerOriginalConfig + ", the spec Flagger saved when it took the object over",
			remedy:   "If no Flagger Canary targets the Service any more (kubectl get canaries.flagger.app -A; Flagger leaves the annotation behind when it gives the object back), remove the annotation",
		}
	}
	return nil
}

// ownerMark is an owner reference of obj to an object of an API group
// (apiVersionPrefix "group/").
func ownerMark(obj *unstructured.Unstructured, apiVersionPrefix string) *foreignMark {
	for _, ref := range obj.GetOwnerReferences() {
		if strings.HasPrefix(ref.APIVersion, apiVersionPrefix) {
			return &foreignMark{evidence: fmt.Sprintf("owner reference to %s %s (%s)", ref.Kind, ref.Name, ref.APIVersion)}
		}
	}
	return nil
}

// checker gathers the findings of one Check.
type checker struct {
	snap   Snapshot
	intent Intent
	p      *planner
	active *State
	svcRef string
	// routing are the VirtualServices that route to the Service, claiming
	// those that claim its host without routing to it (Flagger's, which
	// route to <service>-primary and <service>-canary), rules the
	// DestinationRules of its host.
	routing, claiming, rules []*unstructured.Unstructured
	findings                 []Finding
}

func newChecker(snap Snapshot, intent Intent) *checker {
	svc := snap.Service
	p := &planner{snap: snap, intent: intent, svc: serviceRef{name: svc.Name, namespace: svc.Namespace, clusterDomain: intent.ClusterDomain}}
	if p.svc.clusterDomain == "" {
		p.svc.clusterDomain = DefaultClusterDomain
	}
	c := &checker{snap: snap, intent: intent, p: p, svcRef: "Service " + svc.Namespace + "/" + svc.Name}
	for _, vs := range snap.VirtualServices {
		p.vss = append(p.vss, &object{live: vs, desired: vs})
		switch spec := asMap(vs.Object["spec"]); {
		case routesToService(spec, p.svc, vs.GetNamespace()):
			c.routing = append(c.routing, vs)
		case claimsHost(spec, p.svc, vs.GetNamespace()):
			c.claiming = append(c.claiming, vs)
		}
	}
	for _, dr := range snap.DestinationRules {
		p.drs = append(p.drs, &object{live: dr, desired: dr})
		if p.svc.isHost(asString(asMap(dr.Object["spec"])["host"]), dr.GetNamespace()) {
			c.rules = append(c.rules, dr)
		}
	}
	c.active, _ = p.activeState()
	return c
}

// add records a finding; format names fields as {Override}.
func (c *checker) add(sev Severity, object, format string, args ...interface{}) {
	c.findings = append(c.findings, newFinding(sev, object, textf(format, args...)))
}

// addError records an error as a finding, keeping the fields an
// IntentError names.
func (c *checker) addError(object string, err error) {
	text := textf("%v", err)
	var intentErr *IntentError
	if errors.As(err, &intentErr) {
		text = intentErr.Text
	}
	c.findings = append(c.findings, newFinding(SeverityError, object, text))
}

// Check inspects a Service and its routing before any write (and for
// `kubectl canary check`). It never fails: every problem is a finding. A
// problem with the Service's versions does not hide the others: only the
// checks that need the versions are skipped.
func Check(snap Snapshot, intent Intent, opts CheckOptions) []Finding {
	c := newChecker(snap, intent)
	c.checkOwners()
	c.checkRuleCount()
	deployments, versions := c.versions()
	definedSubsets := c.checkSubsets(deployments)
	c.findings = append(c.findings, checkRoutes(c.routing, c.p.svc, definedSubsets)...)
	if snap.Services != nil {
		c.findings = append(c.findings, checkBackedHosts(snap.VirtualServices, snap.Services, c.p.svc)...)
	}
	c.findings = append(c.findings, checkHostScopes(snap.VirtualServices, c.p.svc)...)
	if versions != nil {
		c.checkReadiness(versions, opts)
	}
	sort.SliceStable(c.findings, func(i, j int) bool { return c.findings[i].Severity < c.findings[j].Severity })
	return c.findings
}

// checkOwners reports the routing objects of the Service another tool manages.
func (c *checker) checkOwners() {
	objects := append(append(append([]*unstructured.Unstructured{}, c.routing...), c.claiming...), c.rules...)
	for _, obj := range objects {
		for _, owner := range foreignOwners {
			m := owner.mark(obj)
			if m == nil {
				continue
			}
			remedy := "Run the canary with " + owner.tool
			if m.remedy != "" {
				remedy += ". " + m.remedy
			}
			c.add(SeverityError, objectRef(obj), "is managed by %s (%s); a canary run by kubectl canary would fight it. %s, or pass {Override} if you are sure", owner.tool, m.evidence, remedy)
		}
	}
}

// checkRuleCount reports several DestinationRules for the Service's host.
func (c *checker) checkRuleCount() {
	if len(c.rules) < 2 {
		return
	}
	names := make([]string, 0, len(c.rules))
	for _, dr := range c.rules {
		names = append(names, dr.GetName())
	}
	c.add(SeverityError, c.svcRef, "DestinationRules %s all apply to its host and Istio uses only one; merge them into one", strings.Join(names, ", "))
}

// versions returns the Deployments behind the Service and its versions.
// Either is nil when it cannot be told, with a finding that says why.
func (c *checker) versions() ([]*appsv1.Deployment, *Versions) {
	deployments, err := backingDeployments(c.snap.Service, c.snap.Deployments)
	if err != nil {
		c.addError(c.svcRef, err)
		return nil, nil
	}
	// chooseCanary finds the intent's canary deployment among them.
	c.p.deployments = deployments
	label := c.intent.VersionLabel
	if label == "" && c.active != nil {
		label = c.active.VersionLabel
	}
	versions, err := inferVersions(c.snap.Service, deployments, label)
	if err != nil {
		c.addError(c.svcRef, err)
		return deployments, nil
	}
	return deployments, versions
}

// checkSubsets reports subsets defined twice and, when the Deployments
// behind the Service are known, subsets that select none of them. It
// returns the names of all subsets defined for the Service's host.
func (c *checker) checkSubsets(deployments []*appsv1.Deployment) map[string]bool {
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

// checkReadiness reports a canary with too few available replicas to take
// traffic, and a stable version with none.
func (c *checker) checkReadiness(versions *Versions, opts CheckOptions) {
	canary, stable := "", ""
	if c.active != nil {
		canary, stable = c.active.Canary, c.active.Stable
	} else if dr, err := c.p.destinationRule(); err == nil {
		if stable, err = c.p.chooseStable(versions, dr, nil); err == nil {
			canary, _ = c.p.chooseCanary(versions, stable)
		}
	}
	ns := c.snap.Service.Namespace
	if v := versions.ByName[canary]; v != nil && !opts.IdleCanary {
		available, desired := v.readiness()
		min := opts.MinAvailable
		if min < 1 {
			min = 1
		}
		if available < min {
			c.add(SeverityError, "Deployment "+ns+"/"+joinDeploymentNames(v), "canary %s=%s has %d available replica(s) of %d desired, fewer than %d; traffic sent to it would fail. Wait until it is ready (kubectl rollout status), or pass {Override}", versions.Label, canary, available, desired, min)
		}
	}
	if v := versions.ByName[stable]; v != nil {
		if available, desired := v.readiness(); available == 0 {
			c.add(SeverityWarning, "Deployment "+ns+"/"+joinDeploymentNames(v), "stable %s=%s has no available replica (%d desired); it serves no traffic now", versions.Label, stable, desired)
		}
	}
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

func joinDeploymentNames(v *Version) string {
	names := make([]string, 0, len(v.Deployments))
	for _, d := range v.Deployments {
		names = append(names, d.Name)
	}
	return strings.Join(names, ",")
}

func objectRef(obj *unstructured.Unstructured) string {
	return obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
}

// Errors counts the findings that stop a write.
func Errors(findings []Finding) int {
	n := 0
	for _, f := range findings {
		if f.Severity == SeverityError {
			n++
		}
	}
	return n
}
