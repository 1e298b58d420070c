package routing

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func findingMessages(findings []Finding) []string {
	var out []string
	for _, f := range findings {
		out = append(out, string(f.Severity)+" "+f.Object+": "+f.Message)
	}
	return out
}

func TestCheckFindings(t *testing.T) {
	spec := func(obj *unstructured.Unstructured) map[string]interface{} {
		return obj.Object["spec"].(map[string]interface{})
	}
	cases := []struct {
		name    string
		cluster string
		mutate  func(*Snapshot)
		opts    CheckOptions
		want    string
	}{
		{"unready canary", "no-istio", func(s *Snapshot) { s.Deployments[1].Status.AvailableReplicas = 0 }, CheckOptions{},
			"error Deployment shop/reviews-v2: canary version=v2 has 0 available replica(s) of 1 desired, fewer than 1"},
		{"fewer than --min-available", "no-istio", nil, CheckOptions{MinAvailable: 2},
			"error Deployment shop/reviews-v2: canary version=v2 has 1 available replica(s) of 1 desired, fewer than 2"},
		{"unready stable", "no-istio", func(s *Snapshot) { s.Deployments[0].Status.AvailableReplicas = 0 }, CheckOptions{},
			"warning Deployment shop/reviews-v1: stable version=v1 has no available replica (3 desired)"},
		{"subset selecting nothing", "bookinfo-adopted", func(s *Snapshot) {
			subsets := spec(s.DestinationRules[0])["subsets"].([]interface{})
			spec(s.DestinationRules[0])["subsets"] = append(subsets, map[string]interface{}{"name": "v9", "labels": map[string]interface{}{"version": "v9"}})
		}, CheckOptions{}, `warning DestinationRule bookinfo/reviews: subset "v9" selects no Deployment behind the Service`},
		{"subset outside the selector", "bookinfo-adopted", func(s *Snapshot) {
			subsets := spec(s.DestinationRules[0])["subsets"].([]interface{})
			spec(s.DestinationRules[0])["subsets"] = append(subsets, map[string]interface{}{"name": "other", "labels": map[string]interface{}{"app": "ratings"}})
		}, CheckOptions{}, `subset "other" selects app=ratings, but the Service only selects pods with app=reviews`},
		{"duplicate subset", "bookinfo-adopted", func(s *Snapshot) {
			subsets := spec(s.DestinationRules[0])["subsets"].([]interface{})
			spec(s.DestinationRules[0])["subsets"] = append(subsets, subsets[0])
		}, CheckOptions{}, `error DestinationRule bookinfo/reviews: defines subset "v1" twice`},
		{"dangling subset", "bookinfo-adopted", func(s *Snapshot) {
			spec(s.DestinationRules[0])["subsets"] = spec(s.DestinationRules[0])["subsets"].([]interface{})[:1]
		}, CheckOptions{}, `error VirtualService bookinfo/reviews: http route "jason" sends traffic to subset "v2", which no DestinationRule of the Service defines`},
		{"weights not summing to 100", "hosts-and-gateway", func(s *Snapshot) {
			mixed := spec(s.VirtualServices[1])["http"].([]interface{})[1].(map[string]interface{})
			mixed["route"].([]interface{})[1].(map[string]interface{})["weight"] = int64(30)
		}, CheckOptions{}, `error VirtualService prod/web-ingress: http route "mixed" has weights summing to 110, not 100`},
		{"negative weight", "hosts-and-gateway", func(s *Snapshot) {
			mixed := spec(s.VirtualServices[1])["http"].([]interface{})[1].(map[string]interface{})
			mixed["route"].([]interface{})[1].(map[string]interface{})["weight"] = int64(-20)
		}, CheckOptions{}, `http route "mixed" has a negative weight (-20)`},
		{"two VirtualServices for the host", "hosts-and-gateway", func(s *Snapshot) {
			dup := s.VirtualServices[0].DeepCopy()
			dup.SetName("web-mesh-2")
			s.VirtualServices = append(s.VirtualServices, dup)
		}, CheckOptions{}, "warning Service prod/web: VirtualServices web-mesh, web-mesh-2 all claim its host for mesh"},
		{"Kiali wizard", "bookinfo-adopted", func(s *Snapshot) {
			s.VirtualServices[0].SetLabels(map[string]string{"kiali_wizard": "request_routing"})
		},
			CheckOptions{}, "error VirtualService bookinfo/reviews: is managed by a Kiali wizard"},
		{"Argo Rollouts", "bookinfo-adopted", func(s *Snapshot) {
			s.DestinationRules[0].SetAnnotations(map[string]string{"argo-rollouts.argoproj.io/managed-by-rollouts": "reviews"})
		}, CheckOptions{}, "error DestinationRule bookinfo/reviews: is managed by Argo Rollouts"},
		{"route to a host no Service backs", "bookinfo-adopted", func(s *Snapshot) {
			s.Services = []corev1.Service{*s.Service}
			spec(s.VirtualServices[0])["http"] = append(spec(s.VirtualServices[0])["http"].([]interface{}), map[string]interface{}{
				"match": []interface{}{map[string]interface{}{"uri": map[string]interface{}{"prefix": "/old"}}},
				"route": []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "reviews-legacy.bookinfo.svc.cluster.local"}}},
			})
		}, CheckOptions{}, "warning VirtualService bookinfo/reviews: routes to host reviews-legacy.bookinfo.svc.cluster.local, but no Service reviews-legacy exists in namespace bookinfo"},
		{"one version only", "no-istio", func(s *Snapshot) { s.Deployments = s.Deployments[:1] }, CheckOptions{},
			"error Service shop/reviews: service shop/reviews has only one version behind it"},
		{"Flagger's saved configuration", "bookinfo-adopted", func(s *Snapshot) {
			s.VirtualServices[0].SetAnnotations(map[string]string{"flagger.kubernetes.io/original-configuration": `{"hosts":["reviews"]}`})
		}, CheckOptions{}, "error VirtualService bookinfo/reviews: is managed by Flagger (annotation flagger.kubernetes.io/original-configuration"},
		{"Flagger's saved configuration names the way out", "bookinfo-adopted", func(s *Snapshot) {
			s.VirtualServices[0].SetAnnotations(map[string]string{"flagger.kubernetes.io/original-configuration": `{"hosts":["reviews"]}`})
		}, CheckOptions{}, "remove the annotation, or pass an override"},
		{"Flagger's owner reference", "bookinfo-adopted", func(s *Snapshot) {
			s.DestinationRules[0].SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "flagger.app/v1beta1", Kind: "Canary", Name: "reviews", UID: "u1"}})
		}, CheckOptions{}, "error DestinationRule bookinfo/reviews: is managed by Flagger (owner reference to Canary reviews (flagger.app/v1beta1))"},
		{"Flagger's apex VirtualService, routed to its own Services", "bookinfo-adopted", func(s *Snapshot) {
			// What Flagger's Istio router creates: the Service's host, routed
			// to <service>-primary and <service>-canary.
			vs := s.VirtualServices[0]
			vs.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "flagger.app/v1beta1", Kind: "Canary", Name: "reviews", UID: "u1"}})
			spec(vs)["http"] = []interface{}{map[string]interface{}{"route": []interface{}{
				map[string]interface{}{"destination": map[string]interface{}{"host": "reviews-primary"}, "weight": int64(100)},
				map[string]interface{}{"destination": map[string]interface{}{"host": "reviews-canary"}, "weight": int64(0)},
			}}}
			delete(spec(vs), "tcp")
		}, CheckOptions{}, "error VirtualService bookinfo/reviews: is managed by Flagger (owner reference to Canary reviews"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := loadSnapshot(t, c.cluster)
			if c.mutate != nil {
				c.mutate(snap)
			}
			got := findingMessages(Check(*snap, Intent{}, c.opts))
			found := false
			for _, msg := range got {
				if strings.Contains(msg, c.want) {
					found = true
				}
			}
			assert.True(t, found, "want a finding containing %q, got %q", c.want, got)
		})
	}
}

func TestCleanServiceHasNoFindings(t *testing.T) {
	for _, cluster := range []string{"no-istio", "hosts-and-gateway", "app-kubernetes-version", "unnamed-label"} {
		snap := loadSnapshot(t, cluster)
		assert.Empty(t, Check(*snap, Intent{}, CheckOptions{}), cluster)
	}
}

// TestCheckReportsRoutingWhenVersionsAreUnknown: a Service whose versions
// cannot be told still gets every finding that does not need them; only
// the canary's readiness is skipped.
func TestCheckReportsRoutingWhenVersionsAreUnknown(t *testing.T) {
	// reviews with v1 only, a route to subset v9 that no DestinationRule
	// defines and a split summing to 90.
	broken := func(s *Snapshot) {
		s.Deployments = s.Deployments[:1]
		s.VirtualServices = append(s.VirtualServices, objectOf(map[string]interface{}{
			"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
			"metadata": map[string]interface{}{"name": "reviews", "namespace": "shop"},
			"spec": map[string]interface{}{"hosts": []interface{}{"reviews"}, "http": []interface{}{
				map[string]interface{}{"name": "beta", "route": []interface{}{
					map[string]interface{}{"destination": map[string]interface{}{"host": "reviews", "subset": "v9"}},
				}},
				map[string]interface{}{"name": "default", "route": []interface{}{
					map[string]interface{}{"destination": map[string]interface{}{"host": "reviews", "subset": "v1"}, "weight": int64(70)},
					map[string]interface{}{"destination": map[string]interface{}{"host": "reviews", "subset": "v2"}, "weight": int64(20)},
				}},
			}},
		}))
		s.DestinationRules = append(s.DestinationRules, objectOf(map[string]interface{}{
			"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
			"metadata": map[string]interface{}{"name": "reviews", "namespace": "shop"},
			"spec": map[string]interface{}{"host": "reviews", "subsets": []interface{}{
				map[string]interface{}{"name": "v1", "labels": map[string]interface{}{"version": "v1"}},
				map[string]interface{}{"name": "v2", "labels": map[string]interface{}{"version": "v2"}},
				map[string]interface{}{"name": "v2", "labels": map[string]interface{}{"version": "v2"}},
			}},
		}))
	}
	routingFindings := []string{
		`error VirtualService shop/reviews: http route "beta" sends traffic to subset "v9", which no DestinationRule of the Service defines`,
		`error VirtualService shop/reviews: http route "default" has weights summing to 90, not 100`,
		`error DestinationRule shop/reviews: defines subset "v2" twice`,
	}
	cases := []struct {
		name   string
		mutate func(*Snapshot)
		intent Intent
		want   []string
		absent []string
	}{
		{
			name:   "one Deployment",
			mutate: broken,
			want: append([]string{
				"error Service shop/reviews: service shop/reviews has only one version behind it",
				// The Deployments are known: subsets are still held against them.
				`warning DestinationRule shop/reviews: subset "v2" selects no Deployment behind the Service`,
			}, routingFindings...),
		},
		{
			name: "one Deployment, not ready",
			mutate: func(s *Snapshot) {
				broken(s)
				s.Deployments[0].Status.AvailableReplicas = 0
			},
			want:   routingFindings,
			absent: []string{"available replica"},
		},
		{
			name:   "a version label the Deployments lack",
			mutate: broken,
			intent: Intent{VersionLabel: "track"},
			want:   append([]string{`error Service shop/reviews: version label "track" is missing`}, routingFindings...),
		},
		{
			name: "no Deployment behind the Service",
			mutate: func(s *Snapshot) {
				broken(s)
				s.Deployments = nil
			},
			want: append([]string{"error Service shop/reviews: no Deployment in namespace shop has pods matching the selector"}, routingFindings...),
			// Without Deployments every subset would select nothing: no
			// warning that repeats the error.
			absent: []string{"selects no Deployment"},
		},
		{
			name: "headless Service, managed by Flagger",
			mutate: func(s *Snapshot) {
				broken(s)
				s.Service.Spec.ClusterIP = corev1.ClusterIPNone
				s.VirtualServices[0].SetAnnotations(map[string]string{"flagger.kubernetes.io/original-configuration": "{}"})
			},
			want: append([]string{
				"error Service shop/reviews: service shop/reviews is headless",
				"error VirtualService shop/reviews: is managed by Flagger",
			}, routingFindings...),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := loadSnapshot(t, "no-istio")
			c.mutate(snap)
			findings := Check(*snap, c.intent, CheckOptions{})
			got := findingMessages(findings)
			for _, want := range c.want {
				assert.True(t, containsOne(got, want), "want a finding containing %q, got %q", want, got)
			}
			for _, absent := range c.absent {
				assert.False(t, containsOne(got, absent), "want no finding containing %q, got %q", absent, got)
			}
			assert.Positive(t, Errors(findings), "the errors keep check's exit code non-zero")
		})
	}
}

// TestCheckCanaryDeploymentReadiness: --canary-deployment names the canary
// as well as --canary does, for its readiness too.
func TestCheckCanaryDeploymentReadiness(t *testing.T) {
	snap := loadSnapshot(t, "no-istio")
	snap.Deployments[1].Status.AvailableReplicas = 0
	for _, intent := range []Intent{{Canary: "v2"}, {CanaryDeployment: "reviews-v2"}} {
		got := findingMessages(Check(*snap, intent, CheckOptions{}))
		assert.True(t, containsOne(got, "error Deployment shop/reviews-v2: canary version=v2 has 0 available replica(s)"), "%+v: got %q", intent, got)
	}
}

// TestCheckIgnoresWhatFlaggerDoesNotOwn: only Flagger's own marks count, not
// the Flux annotation Flagger also sets (Flux users set it too) nor a
// Flagger owner reference on another Service's objects.
func TestCheckIgnoresWhatFlaggerDoesNotOwn(t *testing.T) {
	snap := loadSnapshot(t, "bookinfo-adopted")
	snap.VirtualServices[0].SetAnnotations(map[string]string{"kustomize.toolkit.fluxcd.io/reconcile": "disabled"})
	snap.VirtualServices[1].SetAnnotations(map[string]string{"flagger.kubernetes.io/original-configuration": "{}"})
	got := findingMessages(Check(*snap, Intent{}, CheckOptions{}))
	assert.False(t, containsOne(got, "Flagger"), "got %q", got)
}

func containsOne(messages []string, part string) bool {
	for _, m := range messages {
		if strings.Contains(m, part) {
			return true
		}
	}
	return false
}

func objectOf(obj map[string]interface{}) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: obj}
}
