package routing

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Who reconciles a routing object from Git, and whether the check refuses
// (the tool reverts edits on its own) or warns.
func TestCheckGitOpsManagers(t *testing.T) {
	selfHealing := map[string]ArgoCDApplication{"argocd/bookinfo": {Namespace: "argocd", Name: "bookinfo", Found: true, Automated: true, SelfHeal: true}}
	manual := map[string]ArgoCDApplication{"argocd/bookinfo": {Namespace: "argocd", Name: "bookinfo", Found: true}}
	unreadable := map[string]ArgoCDApplication{"argocd/bookinfo": {Namespace: "argocd", Name: "bookinfo", Unreadable: "not allowed to get applications.argoproj.io in namespace argocd"}}
	tracked := map[string]string{ArgoCDTrackingID: "bookinfo:networking.istio.io/VirtualService:bookinfo/reviews"}
	cases := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		apps        map[string]ArgoCDApplication
		want        []string // a finding containing each; none when empty
	}{
		{name: "Argo CD self-heal refuses", annotations: tracked, apps: selfHealing, want: []string{
			"error VirtualService bookinfo/reviews: is managed by Argo CD application argocd/bookinfo (annotation argocd.argoproj.io/tracking-id=bookinfo:networking.istio.io/VirtualService:bookinfo/reviews): its automated sync heals drift within seconds and would undo the canary, or an abort. To run the canary anyway, add to the Application's spec.ignoreDifferences {group: networking.istio.io, kind: VirtualService, name: reviews, namespace: bookinfo, jsonPointers: [/spec/http, /spec/tcp, /metadata/annotations/kubectl-canary.io~1reviews, /metadata/annotations/pre-start.kubectl-canary.io~1reviews]} and to its syncPolicy.syncOptions RespectIgnoreDifferences=true, or make the change in Git; or pass an override to write all the same"}},
		{name: "Argo CD without self-heal warns", annotations: tracked, apps: manual, want: []string{"warning VirtualService bookinfo/reviews: is managed by Argo CD application argocd/bookinfo", "the next sync overwrites the routing with Git's"}},
		{name: "Argo CD application unreadable warns", annotations: tracked, apps: unreadable, want: []string{"warning VirtualService bookinfo/reviews: is managed by Argo CD application argocd/bookinfo", "could not be read (not allowed to get applications.argoproj.io in namespace argocd)"}},
		{name: "Argo CD label tracking with an application", labels: map[string]string{"app.kubernetes.io/instance": "bookinfo"}, apps: selfHealing, want: []string{"error VirtualService bookinfo/reviews: is managed by Argo CD application argocd/bookinfo (label app.kubernetes.io/instance=bookinfo)"}},
		{name: "instance label without an application is no Argo CD", labels: map[string]string{"app.kubernetes.io/instance": "bookinfo"}},
		{name: "Flux Kustomization refuses", labels: map[string]string{"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}, want: []string{
			"error VirtualService bookinfo/reviews: is managed by Flux Kustomization flux-system/apps (label kustomize.toolkit.fluxcd.io/name=apps): Flux corrects drift at its next reconciliation and would undo the canary, or an abort. To run the canary anyway, make the change in Git, or opt the object out of reconciliation with the annotation kustomize.toolkit.fluxcd.io/reconcile: disabled (or kustomize.toolkit.fluxcd.io/ssa: IfNotPresent)"}},
		{name: "Flux opt-out: reconcile disabled", labels: map[string]string{"kustomize.toolkit.fluxcd.io/name": "apps"}, annotations: map[string]string{"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}},
		{name: "Flux opt-out: ssa IfNotPresent", labels: map[string]string{"kustomize.toolkit.fluxcd.io/name": "apps"}, annotations: map[string]string{"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"}},
		{name: "Flux opt-out: ssa Ignore", labels: map[string]string{"kustomize.toolkit.fluxcd.io/name": "apps"}, annotations: map[string]string{"kustomize.toolkit.fluxcd.io/ssa": "Ignore"}},
		{name: "Flux HelmRelease refuses", labels: map[string]string{"helm.toolkit.fluxcd.io/name": "reviews", "helm.toolkit.fluxcd.io/namespace": "bookinfo", "app.kubernetes.io/managed-by": "Helm"}, want: []string{"error VirtualService bookinfo/reviews: is managed by Flux HelmRelease bookinfo/reviews", "helm.toolkit.fluxcd.io/driftDetection: disabled"}},
		{name: "Helm warns", labels: map[string]string{"app.kubernetes.io/managed-by": "Helm"}, annotations: map[string]string{"meta.helm.sh/release-name": "bookinfo"}, want: []string{"warning VirtualService bookinfo/reviews: is managed by Helm release bookinfo (annotation meta.helm.sh/release-name=bookinfo): the next helm upgrade resets the routing to the chart's"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := loadSnapshot(t, "bookinfo-adopted")
			snap.VirtualServices[0].SetLabels(c.labels)
			snap.VirtualServices[0].SetAnnotations(c.annotations)
			snap.ArgoCDApplications = c.apps
			got := findingMessages(Check(*snap, Intent{}, CheckOptions{}))
			for _, want := range c.want {
				assert.True(t, containsOne(got, want), "want a finding containing %q, got %q", want, got)
			}
			if len(c.want) == 0 {
				assert.False(t, containsOne(got, "is managed by"), "want no manager, got %q", got)
			}
		})
	}
}

func TestArgoCDApplicationRef(t *testing.T) {
	for id, want := range map[string][2]string{
		"bookinfo:networking.istio.io/VirtualService:bookinfo/reviews": {"argocd", "bookinfo"},
		"team-a_shop:networking.istio.io/DestinationRule:shop/reviews": {"team-a", "shop"},
	} {
		ns, name, ok := ArgoCDApplicationRef(id, "argocd")
		assert.True(t, ok, id)
		assert.Equal(t, want, [2]string{ns, name}, id)
	}
	_, _, ok := ArgoCDApplicationRef("", "argocd")
	assert.False(t, ok)
}
