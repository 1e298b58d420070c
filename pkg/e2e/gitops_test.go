//go:build e2e

package e2e

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// argoCDApplicationCRD is enough of Argo CD's Application CRD for the API
// server to store Applications: the plugin reads their spec.syncPolicy.
const argoCDApplicationCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: applications.argoproj.io}
spec:
  group: argoproj.io
  scope: Namespaced
  names: {kind: Application, listKind: ApplicationList, plural: applications, singular: application, shortNames: [app]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: v1
kind: Namespace
metadata: {name: argocd}
`

// gitOpsVirtualService is reviews' VirtualService with the given metadata
// lines (labels and annotations), as a GitOps tool would have applied it.
func gitOpsVirtualService(metadata string) string {
	return yamlStream(fmt.Sprintf(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
%s
spec:
  hosts: [reviews]
  http:
  - name: default
    route:
    - destination: {host: reviews, subset: v1}
`, metadata), reviewsDestinationRule("v1"))
}

// A VirtualService that Argo CD (self-heal) or Flux reconciles from Git
// would be reverted: start refuses and writes nothing, unless the object
// opts out or --force is given; Helm, and Argo CD without self-heal, only
// warn. check reports the same, status names the manager.
func TestGitOpsManagedRouting(t *testing.T) {
	t.Parallel()
	c := shared
	c.kubectl(t, argoCDApplicationCRD, "apply", "-f", "-")
	c.kubectl(t, "", "wait", "--for", "condition=established", "crd/applications.argoproj.io", "--timeout", "30s")
	application := func(name string, selfHeal bool) {
		c.kubectl(t, fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: %s, namespace: argocd}
spec:
  project: default
  source: {repoURL: "https://git.example/shop.git", path: istio}
  destination: {namespace: shop}
  syncPolicy:
    automated: {prune: true, selfHeal: %t}
`, name, selfHeal), "apply", "-f", "-")
	}
	// managed deploys reviews with a VirtualService carrying metadata.
	managed := func(t *testing.T, metadata string) string {
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		c.create(t, ns, gitOpsVirtualService(metadata))
		return ns
	}
	refused := func(t *testing.T, ns, finding string) {
		t.Helper()
		before := c.versionsOf(t, ns)
		vsRef := "VirtualService " + ns + "/reviews"
		r := c.failCanary(t, "check", "reviews", "-n", ns)
		requireExitCode(t, r, 3)
		assertFindings(t, []checkFinding{{"error", vsRef, finding}}, rowsOf(t, r.stdout))
		r = c.failCanary(t, "start", "reviews", "-n", ns)
		assert.Contains(t, r.stderr, "preflight check of service "+ns+"/reviews failed, nothing was changed")
		assert.Contains(t, r.stderr, vsRef+": "+finding)
		assert.Equal(t, before, c.versionsOf(t, ns), "a refused start wrote")
		r = c.canary(t, nil, "start", "reviews", "--force", "-n", ns)
		require.NoError(t, r.err, "%s", r)
		assert.Contains(t, r.stderr, "Warning: "+vsRef+": "+finding)
		assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, c.get(t, vsV1, ns, "reviews"), "http", 0))
	}
	warned := func(t *testing.T, ns, finding string) {
		t.Helper()
		r := c.canary(t, nil, "start", "reviews", "-n", ns)
		require.NoError(t, r.err, "%s", r)
		assert.Contains(t, r.stderr, "Warning: VirtualService "+ns+"/reviews: "+finding)
		assert.Equal(t, map[string]int64{"v1": 90, "v2": 10}, weights(t, c.get(t, vsV1, ns, "reviews"), "http", 0))
	}

	t.Run("Flux Kustomization", func(t *testing.T) {
		t.Parallel()
		ns := managed(t, "  labels: {kustomize.toolkit.fluxcd.io/name: apps, kustomize.toolkit.fluxcd.io/namespace: flux-system}")
		// run goes through the same preflight: it refuses before its first step.
		before := c.versionsOf(t, ns)
		r := c.failCanary(t, "run", "reviews", "-n", ns, "--steps", "50,100", "--interval", "10s", "--prometheus-url", "http://127.0.0.1:1")
		assert.Contains(t, r.stderr, "VirtualService "+ns+"/reviews: is managed by Flux Kustomization flux-system/apps")
		assert.Equal(t, before, c.versionsOf(t, ns), "a refused run wrote")
		refused(t, ns, "is managed by Flux Kustomization flux-system/apps (label kustomize.toolkit.fluxcd.io/name=apps): Flux corrects drift")
		// status names the manager of the canary's objects.
		assert.Contains(t, c.statusTable(t, "reviews", "-n", ns)[0]["ROUTING"], "managed by Flux Kustomization flux-system/apps")
		assert.Contains(t, c.mustCanary(t, "status", "reviews", "-n", ns, "-o", "json"), `"VirtualService/reviews: Flux Kustomization flux-system/apps"`)
	})

	t.Run("Flux opt-out", func(t *testing.T) {
		t.Parallel()
		ns := managed(t, "  labels: {kustomize.toolkit.fluxcd.io/name: apps, kustomize.toolkit.fluxcd.io/namespace: flux-system}\n  annotations: {kustomize.toolkit.fluxcd.io/reconcile: disabled}")
		r := c.canary(t, nil, "start", "reviews", "-n", ns)
		require.NoError(t, r.err, "%s", r)
		assert.NotContains(t, r.stderr, "managed by")
	})

	t.Run("Helm", func(t *testing.T) {
		t.Parallel()
		ns := managed(t, "  labels: {app.kubernetes.io/managed-by: Helm}\n  annotations: {meta.helm.sh/release-name: shop}")
		warned(t, ns, "is managed by Helm release shop (annotation meta.helm.sh/release-name=shop): the next helm upgrade resets the routing")
	})

	t.Run("Argo CD with self-heal", func(t *testing.T) {
		t.Parallel()
		app := "shop-heal"
		ns := managed(t, fmt.Sprintf("  annotations: {argocd.argoproj.io/tracking-id: \"%s:networking.istio.io/VirtualService:x/reviews\"}", app))
		application(app, true)
		refused(t, ns, "is managed by Argo CD application argocd/"+app)
		r := c.failCanary(t, "check", "reviews", "-n", ns)
		assert.Contains(t, r.stdout, "its automated sync heals drift within seconds")
		assert.Contains(t, r.stdout, "jsonPointers: [/spec/http, /metadata/annotations/kubectl-canary.io~1reviews, /metadata/annotations/pre-start.kubectl-canary.io~1reviews]")
		assert.Contains(t, r.stdout, "RespectIgnoreDifferences=true")
	})

	t.Run("Argo CD without self-heal", func(t *testing.T) {
		t.Parallel()
		app := "shop-noheal"
		ns := managed(t, fmt.Sprintf("  annotations: {argocd.argoproj.io/tracking-id: \"%s:networking.istio.io/VirtualService:x/reviews\"}", app))
		application(app, false)
		warned(t, ns, "is managed by Argo CD application argocd/"+app)
	})

	t.Run("Argo CD application not found", func(t *testing.T) {
		t.Parallel()
		ns := managed(t, "  annotations: {argocd.argoproj.io/tracking-id: \"gone:networking.istio.io/VirtualService:x/reviews\"}")
		warned(t, ns, "is managed by Argo CD application argocd/gone (annotation argocd.argoproj.io/tracking-id=gone:networking.istio.io/VirtualService:x/reviews): the application could not be read (no Application argocd/gone")
	})

	t.Run("Argo CD with self-heal on an HTTPRoute", func(t *testing.T) {
		t.Parallel()
		app := "shop-heal-route"
		application(app, true)
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		c.create(t, ns, fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
  annotations: {argocd.argoproj.io/tracking-id: "%s:gateway.networking.k8s.io/HTTPRoute:x/reviews"}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules: [{backendRefs: [{name: reviews, port: 9080}]}]
`, app))
		before := c.gatewayAPIObjectsOf(t, ns)
		r := c.failCanary(t, "start", "reviews", "-n", ns)
		assert.Contains(t, r.stderr, "HTTPRoute "+ns+"/reviews: is managed by Argo CD application argocd/"+app)
		assert.Contains(t, r.stderr, "its automated sync heals drift within seconds")
		assert.Equal(t, before, c.gatewayAPIObjectsOf(t, ns), "a refused start wrote")
	})
}
