package kube

import (
	"context"
	"fmt"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// ArgoCDNamespace is where Argo CD keeps its Applications unless a
// tracking id names another namespace.
const ArgoCDNamespace = "argocd"

var argoCDApplications = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// readArgoCDApplications reads the Argo CD Applications that the routing
// objects of the Service name, one GET each, all at once. An Application
// that cannot be read is recorded with the reason: the check then warns
// instead of refusing.
func (c *Clients) readArgoCDApplications(ctx context.Context, objects []*unstructured.Unstructured) map[string]routing.ArgoCDApplication {
	names := routing.ArgoCDApplicationsNamed(objects, ArgoCDNamespace)
	if len(names) == 0 {
		return nil
	}
	apps := make([]routing.ArgoCDApplication, len(names))
	var wg sync.WaitGroup
	for i, key := range names {
		wg.Go(func() {
			ns, name, _ := strings.Cut(key, "/")
			apps[i] = c.readArgoCDApplication(ctx, ns, name)
		})
	}
	wg.Wait()
	out := map[string]routing.ArgoCDApplication{}
	for i, key := range names {
		out[key] = apps[i]
	}
	return out
}

func (c *Clients) readArgoCDApplication(ctx context.Context, namespace, name string) routing.ArgoCDApplication {
	app := routing.ArgoCDApplication{Namespace: namespace, Name: name}
	obj, err := c.Dynamic.Resource(argoCDApplications).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		app.Unreadable = fmt.Sprintf("no Application %s/%s, or no Argo CD in the cluster", namespace, name)
	case apierrors.IsForbidden(err):
		app.Unreadable = fmt.Sprintf("not allowed to get applications.argoproj.io in namespace %s", namespace)
	case err != nil:
		app.Unreadable = err.Error()
	default:
		app.Found = true
		automated, _, _ := unstructured.NestedMap(obj.Object, "spec", "syncPolicy", "automated")
		app.Automated = automated != nil
		app.SelfHeal, _, _ = unstructured.NestedBool(obj.Object, "spec", "syncPolicy", "automated", "selfHeal")
		// Argo CD 3 turns automated sync off with enabled: false.
		if enabled, found, _ := unstructured.NestedBool(obj.Object, "spec", "syncPolicy", "automated", "enabled"); found && !enabled {
			app.Automated, app.SelfHeal = false, false
		}
	}
	return app
}

// routingOfService keeps the VirtualServices and DestinationRules whose
// hosts name the Service: the objects a change may write.
func routingOfService(objects []*unstructured.Unstructured, namespace, service string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, obj := range objects {
		spec, _ := obj.Object["spec"].(map[string]interface{})
		hosts, _, _ := unstructured.NestedStringSlice(spec, "hosts")
		if host, ok := spec["host"].(string); ok {
			hosts = append(hosts, host)
		}
		for _, h := range hosts {
			if h == service || h == service+"."+namespace || strings.HasPrefix(h, service+"."+namespace+".svc") {
				out = append(out, obj)
				break
			}
		}
	}
	return out
}
