package routing

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
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
	// Message says what is wrong and what to do, naming the parts of the
	// request in the core's words (Text.String()).
	Message string `json:"message"`
	// Text is the same message with the parts of the request it names as
	// placeholders (FieldOverride, FieldVersionLabel), for the caller to
	// word as its users give them. The JSON form carries Message alone.
	Text Text `json:"-"`
}

func newFinding(sev Severity, object string, text Text) Finding {
	return Finding{Severity: sev, Object: object, Message: text.String(), Text: text}
}

// CheckOptions tune the preflight.
type CheckOptions struct {
	// MinAvailable is the fewest available canary replicas that may take
	// traffic; below it (and always at zero) the check reports an error.
	MinAvailable int32
	// IdleCanary skips the canary's readiness: the change gets it no more
	// traffic than it has now (RaisesCanaryShare is false), so a canary
	// that is not ready only gets less of it.
	IdleCanary bool
	// Drift adds the findings about the live routing's drift from the
	// canary's record (kubectl canary check). The preflight of weight,
	// route and promote leaves them out: those verbs act on drift
	// themselves before they plan (actOnDrift).
	Drift bool
	// PlanStart also plans the start the intent describes, as start would
	// and writing nothing, when no canary is in progress, and reports its
	// refusal as the first finding in start's words: a check without
	// errors then means start would go ahead (kubectl canary check).
	PlanStart bool
}

// DefaultStartWeight is the canary's share a start without a weight asks for.
const DefaultStartWeight = 10

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
	snap     Snapshot
	intent   Intent
	p        *planner
	active   *State
	svcRef   string
	findings []Finding
}

func newChecker(snap Snapshot, intent Intent) *checker {
	svc := snap.Service
	p := newPlanner(snap, intent, serviceRef{name: svc.Name, namespace: svc.Namespace, clusterDomain: intent.ClusterDomain})
	c := &checker{snap: snap, intent: intent, p: p, svcRef: "Service " + svc.Namespace + "/" + svc.Name}
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
	if opts.PlanStart && c.active == nil {
		c.checkStartPlan()
	}
	c.p.backend.check(c, opts)
	if opts.Drift {
		c.driftFindings()
	}
	c.findings = uniqueFindings(c.findings)
	sort.SliceStable(c.findings, func(i, j int) bool { return c.findings[i].Severity < c.findings[j].Severity })
	return c.findings
}

// checkStartPlan plans the start of the checker's intent and reports
// start's refusal, if any, with start's own words: the planning finds
// what the preflight's checks do not (several canary candidates, routes
// that split between other versions or mix in other hosts, an object in
// the way of one start would create).
func (c *checker) checkStartPlan() {
	intent := c.intent
	intent.Action = ActionStart
	if intent.Weight == 0 {
		intent.Weight = DefaultStartWeight
	}
	if _, err := Compute(c.snap, intent); err != nil {
		c.addError(c.svcRef, err)
	}
}

// uniqueFindings drops a finding said already: start's planning and the
// preflight reach some problems (a single version, say) the same way.
func uniqueFindings(findings []Finding) []Finding {
	seen := map[string]bool{}
	out := findings[:0]
	for _, f := range findings {
		key := string(f.Severity) + "\x00" + f.Message
		if !seen[key] {
			seen[key] = true
			out = append(out, f)
		}
	}
	return out
}

// checkOwners reports the routing objects of the Service another tool manages.
func (c *checker) checkOwners(objects []*unstructured.Unstructured) {
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

// checkReadiness reports a canary with too few available replicas to take
// traffic, and a stable version with none.
func (c *checker) checkReadiness(versions *Versions, opts CheckOptions) {
	if c.snap.ReadinessUnknown {
		return
	}
	canary, stable := "", ""
	if c.active != nil {
		canary, stable = c.active.Canary, c.active.Stable
	} else if err := c.p.backend.prepareStart(); err == nil {
		if stable, err = c.p.chooseStable(versions, nil); err == nil {
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
