package routing

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// GitOps tools reconcile objects from Git: an edit made in the cluster
// alone is reverted (Argo CD self-heal, Flux drift correction) or reset by
// the next release (Helm). They are recognised by the marks they leave.
const (
	ArgoCDTrackingID      = "argocd.argoproj.io/tracking-id"
	argoCDInstanceLabel   = "app.kubernetes.io/instance"
	fluxKustomizeName     = "kustomize.toolkit.fluxcd.io/name"
	fluxKustomizeNS       = "kustomize.toolkit.fluxcd.io/namespace"
	fluxReconcile         = "kustomize.toolkit.fluxcd.io/reconcile"
	fluxSSA               = "kustomize.toolkit.fluxcd.io/ssa"
	fluxHelmName          = "helm.toolkit.fluxcd.io/name"
	fluxHelmNS            = "helm.toolkit.fluxcd.io/namespace"
	fluxHelmDrift         = "helm.toolkit.fluxcd.io/driftDetection"
	helmReleaseAnnotation = "meta.helm.sh/release-name"
)

// ArgoCDApplication is what the reader found of an Argo CD Application a
// routing object names.
type ArgoCDApplication struct {
	Namespace, Name string
	// Found says the Application was read; Unreadable says why not.
	Found      bool
	Unreadable string
	// Automated is an automated sync policy; SelfHeal reverts changes
	// made in the cluster within seconds.
	Automated, SelfHeal bool
}

// ArgoCDApplicationRef is the Application an Argo CD tracking id names:
// "APP:GROUP/KIND:NAMESPACE/NAME", where APP is NAMESPACE_NAME for an
// Application outside Argo CD's own namespace.
func ArgoCDApplicationRef(trackingID, controlNamespace string) (namespace, name string, ok bool) {
	app, _, found := strings.Cut(trackingID, ":")
	if !found || app == "" {
		return "", "", false
	}
	if ns, name, found := strings.Cut(app, "_"); found {
		return ns, name, true
	}
	return controlNamespace, app, true
}

// ArgoCDApplicationsNamed lists the Applications the objects may belong
// to, by tracking id or by the instance label of label tracking, as
// namespace/name: the reader looks each up.
func ArgoCDApplicationsNamed(objects []*unstructured.Unstructured, controlNamespace string) []string {
	set := map[string]bool{}
	for _, obj := range objects {
		if ns, name, ok := ArgoCDApplicationRef(obj.GetAnnotations()[ArgoCDTrackingID], controlNamespace); ok {
			set[ns+"/"+name] = true
		} else if instance := obj.GetLabels()[argoCDInstanceLabel]; instance != "" {
			set[controlNamespace+"/"+instance] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// GitOpsManager is a tool that reconciles a routing object from Git.
type GitOpsManager struct {
	// Tool names the tool and its object: "Argo CD application argocd/shop".
	Tool string
	// Evidence is the mark the object carries.
	Evidence string
	// Reverts says the tool undoes an edit made in the cluster on its own.
	Reverts bool
	// Why says what happens to the canary; Remedy how to avoid it.
	Why, Remedy string
}

// GitOpsManagers lists who reconciles obj from Git. apps holds the Argo CD
// Applications the reader found, by namespace/name.
func GitOpsManagers(obj *unstructured.Unstructured, apps map[string]ArgoCDApplication, service string) []GitOpsManager {
	var out []GitOpsManager
	if m, ok := argoCDManager(obj, apps, service); ok {
		out = append(out, m)
	}
	if m, ok := fluxManager(obj); ok {
		out = append(out, m)
	}
	if m, ok := helmManager(obj); ok && len(out) == 0 {
		out = append(out, m)
	}
	return out
}

func argoCDManager(obj *unstructured.Unstructured, apps map[string]ArgoCDApplication, service string) (GitOpsManager, bool) {
	var app ArgoCDApplication
	evidence := ""
	if id := obj.GetAnnotations()[ArgoCDTrackingID]; id != "" {
		for _, a := range apps {
			if ns, name, _ := ArgoCDApplicationRef(id, a.Namespace); ns == a.Namespace && name == a.Name {
				app = a
			}
		}
		evidence = "annotation " + ArgoCDTrackingID + "=" + id
		if app.Name == "" {
			ns, name, _ := ArgoCDApplicationRef(id, "")
			app = ArgoCDApplication{Namespace: ns, Name: name, Unreadable: "not looked up"}
		}
	} else if instance := obj.GetLabels()[argoCDInstanceLabel]; instance != "" {
		// Label tracking: the label alone is common; an Application of
		// that name makes it Argo CD's.
		for _, a := range apps {
			if a.Name == instance && a.Found {
				app, evidence = a, "label "+argoCDInstanceLabel+"="+instance
			}
		}
	}
	if evidence == "" {
		return GitOpsManager{}, false
	}
	m := GitOpsManager{Tool: "Argo CD application " + strings.TrimPrefix(app.Namespace+"/"+app.Name, "/"), Evidence: evidence,
		Remedy: argoCDIgnoreDifferences(obj, service)}
	switch {
	case app.SelfHeal:
		m.Reverts = true
		m.Why = "its automated sync heals drift within seconds and would undo the canary, or an abort"
	case app.Automated:
		m.Why = "its automated sync overwrites the routing with Git's at the next change in Git"
	case app.Found:
		m.Why = "the next sync overwrites the routing with Git's"
	default:
		m.Why = fmt.Sprintf("the application could not be read (%s), so whether it self-heals is unknown; if it does, it undoes the canary", app.Unreadable)
	}
	return m, true
}

// argoCDIgnoreDifferences is the ignoreDifferences entry that keeps the
// fields the plugin writes on obj out of Argo CD's comparison.
func argoCDIgnoreDifferences(obj *unstructured.Unstructured, service string) string {
	escape := strings.NewReplacer("~", "~0", "/", "~1").Replace
	var pointers []string
	spec := asMap(obj.Object["spec"])
	for _, field := range []string{"http", "tcp", "tls", "subsets"} {
		if _, ok := spec[field]; ok {
			pointers = append(pointers, "/spec/"+field)
		}
	}
	if obj.GetKind() == "DestinationRule" && len(pointers) == 0 {
		pointers = append(pointers, "/spec/subsets")
	}
	pointers = append(pointers, "/metadata/annotations/"+escape(StateAnnotationPrefix+service), "/metadata/annotations/"+escape(PreStartAnnotationPrefix+service))
	group, _, _ := strings.Cut(obj.GetAPIVersion(), "/")
	return fmt.Sprintf("add to the Application's spec.ignoreDifferences {group: %s, kind: %s, name: %s, namespace: %s, jsonPointers: [%s]} and to its syncPolicy.syncOptions RespectIgnoreDifferences=true, or make the change in Git",
		group, obj.GetKind(), obj.GetName(), obj.GetNamespace(), strings.Join(pointers, ", "))
}

func fluxManager(obj *unstructured.Unstructured) (GitOpsManager, bool) {
	labels, annotations := obj.GetLabels(), obj.GetAnnotations()
	if name := labels[fluxKustomizeName]; name != "" {
		// Opted out: Flux leaves the object, or fields it does not own, alone.
		if annotations[fluxReconcile] == "disabled" || annotations[fluxSSA] == "IfNotPresent" || annotations[fluxSSA] == "Ignore" {
			return GitOpsManager{}, false
		}
		return GitOpsManager{Tool: fmt.Sprintf("Flux Kustomization %s/%s", labels[fluxKustomizeNS], name), Reverts: true,
			Evidence: fmt.Sprintf("label %s=%s", fluxKustomizeName, name),
			Why:      "Flux corrects drift at its next reconciliation and would undo the canary, or an abort",
			Remedy:   fmt.Sprintf("make the change in Git, or opt the object out of reconciliation with the annotation %s: disabled (or %s: IfNotPresent)", fluxReconcile, fluxSSA)}, true
	}
	if name := labels[fluxHelmName]; name != "" {
		if annotations[fluxHelmDrift] == "disabled" {
			return GitOpsManager{}, false
		}
		return GitOpsManager{Tool: fmt.Sprintf("Flux HelmRelease %s/%s", labels[fluxHelmNS], name), Reverts: true,
			Evidence: fmt.Sprintf("label %s=%s", fluxHelmName, name),
			Why:      "Flux's drift detection and its next upgrade would undo the canary, or an abort",
			Remedy:   fmt.Sprintf("make the change in the chart's values in Git, or exclude the object from drift detection with the annotation %s: disabled", fluxHelmDrift)}, true
	}
	return GitOpsManager{}, false
}

func helmManager(obj *unstructured.Unstructured) (GitOpsManager, bool) {
	release := obj.GetAnnotations()[helmReleaseAnnotation]
	evidence := "annotation " + helmReleaseAnnotation + "=" + release
	if release == "" {
		if obj.GetLabels()[ManagedByLabel] != "Helm" {
			return GitOpsManager{}, false
		}
		evidence = "label " + ManagedByLabel + "=Helm"
	}
	return GitOpsManager{Tool: strings.TrimSpace("Helm release " + release), Evidence: evidence,
		Why:    "the next helm upgrade resets the routing to the chart's",
		Remedy: "make the change in the chart's values, or finish the canary (promote or abort) before the next upgrade"}, true
}

// checkGitOps reports the routing objects a GitOps tool reconciles: an
// error where the tool reverts edits on its own, else a warning.
func (c *checker) checkGitOps(objects []*unstructured.Unstructured) {
	if c.snap.InManifests {
		// Editing the manifests is the remedy the findings point to.
		return
	}
	for _, obj := range objects {
		for _, m := range GitOpsManagers(obj, c.snap.ArgoCDApplications, c.snap.Service.Name) {
			if m.Reverts {
				c.add(SeverityError, objectRef(obj), "is managed by %s (%s): %s. To run the canary anyway, %s; or pass {Override} to write all the same", m.Tool, m.Evidence, m.Why, m.Remedy)
				continue
			}
			c.add(SeverityWarning, objectRef(obj), "is managed by %s (%s): %s; %s", m.Tool, m.Evidence, m.Why, m.Remedy)
		}
	}
}
