package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/pager"
	"k8s.io/client-go/util/retry"
)

var (
	vsGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	drGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"}
)

// clients are the bench's own API clients: high QPS, user agent
// canary-bench (never counted).
type clients struct {
	core   kubernetes.Interface
	proto  kubernetes.Interface // protobuf, for the bulk creates
	dyn    dynamic.Interface
	marker kubernetes.Interface
}

func newClients(config *rest.Config) (*clients, error) {
	config = rest.CopyConfig(config)
	config.QPS, config.Burst = 5000, 10000
	config.UserAgent = benchAgent
	core, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	protoConfig := rest.CopyConfig(config)
	protoConfig.ContentType = "application/vnd.kubernetes.protobuf"
	protoConfig.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	proto, err := kubernetes.NewForConfig(protoConfig)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	markerConfig := rest.CopyConfig(config)
	markerConfig.UserAgent = benchAgent + "-marker"
	marker, err := kubernetes.NewForConfig(markerConfig)
	if err != nil {
		return nil, err
	}
	return &clients{core: core, proto: proto, dyn: dyn, marker: marker}, nil
}

// The objects of one Service as a team would have them before its first
// canary: two versions, each with available replicas, and Istio routing
// that sends everything to v1 through a subset.

func serviceObject(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 9080}},
		},
	}
}

func deploymentObject(ns, service, version string) *appsv1.Deployment {
	labels := map[string]string{"app": service, "version": version}
	replicas := int32(2)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: service + "-" + version, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: service, Image: "example.invalid/" + service + ":" + version,
					Ports: []corev1.ContainerPort{{ContainerPort: 9080}},
				}}},
			},
		},
	}
}

// availableStatus is what a controller would write for 2 ready replicas;
// the local cluster has no controller, and the plugin's preflight refuses a
// canary without available replicas.
const availableStatus = `{"status":{"replicas":2,"updatedReplicas":2,"availableReplicas":2,"readyReplicas":2}}`

func virtualServiceObject(ns, service string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]interface{}{"name": service, "namespace": ns},
		"spec": map[string]interface{}{
			"hosts": []interface{}{service},
			"http": []interface{}{map[string]interface{}{
				"name":    "default",
				"timeout": "5s",
				"retries": map[string]interface{}{"attempts": int64(3), "perTryTimeout": "2s"},
				"route": []interface{}{map[string]interface{}{
					"destination": map[string]interface{}{"host": service, "subset": "v1"},
				}},
			}},
		},
	}}
}

func destinationRuleObject(ns, service string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]interface{}{"name": service, "namespace": ns},
		"spec": map[string]interface{}{
			"host":          service,
			"trafficPolicy": map[string]interface{}{"connectionPool": map[string]interface{}{"http": map[string]interface{}{"http1MaxPendingRequests": int64(100)}}},
			"subsets": []interface{}{map[string]interface{}{
				"name": "v1", "labels": map[string]interface{}{"version": "v1"},
			}},
		},
	}}
}

// createService creates a Service, its v1 and v2 Deployments with status,
// its VirtualService and its DestinationRule: 7 requests.
func (c *clients) createService(ctx context.Context, ns, name string) error {
	if err := c.createWorkload(ctx, ns, name); err != nil {
		return err
	}
	if _, err := c.dyn.Resource(vsGVR).Namespace(ns).Create(ctx, virtualServiceObject(ns, name), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create virtualservice %s/%s: %w", ns, name, err)
	}
	if _, err := c.dyn.Resource(drGVR).Namespace(ns).Create(ctx, destinationRuleObject(ns, name), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create destinationrule %s/%s: %w", ns, name, err)
	}
	return nil
}

// createWorkload creates a Service and its v1 and v2 Deployments with
// status, and no routing: 5 requests.
func (c *clients) createWorkload(ctx context.Context, ns, name string) error {
	if _, err := c.proto.CoreV1().Services(ns).Create(ctx, serviceObject(ns, name), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service %s/%s: %w", ns, name, err)
	}
	for _, v := range []string{"v1", "v2"} {
		d := deploymentObject(ns, name, v)
		if _, err := c.proto.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create deployment %s/%s: %w", ns, d.Name, err)
		}
		if _, err := c.proto.AppsV1().Deployments(ns).Patch(ctx, d.Name, types.MergePatchType, []byte(availableStatus), metav1.PatchOptions{}, "status"); err != nil {
			return fmt.Errorf("patch status of deployment %s/%s: %w", ns, d.Name, err)
		}
	}
	return nil
}

func (c *clients) createNamespace(ctx context.Context, ns string) error {
	_, err := c.proto.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// widenServiceCIDR adds a /16 for Service cluster IPs: cluster.sh serves a
// /24, too small for thousands of Services.
func (c *clients) widenServiceCIDR(ctx context.Context) error {
	_, err := c.core.NetworkingV1().ServiceCIDRs().Create(ctx, &networkingv1.ServiceCIDR{
		ObjectMeta: metav1.ObjectMeta{Name: "canary-bench"},
		Spec:       networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/16"}},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// routingState is the VirtualService and DestinationRule of one Service as
// they were at some point, to put back before each measured run.
type routingState struct {
	ns, name string
	vs, dr   *unstructured.Unstructured
}

func (c *clients) captureRouting(ctx context.Context, ns, name string) (*routingState, error) {
	vs, err := c.dyn.Resource(vsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	dr, err := c.dyn.Resource(drGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return &routingState{ns: ns, name: name, vs: vs, dr: dr}, nil
}

// restore writes the state's spec, labels and annotations over the live
// objects, so every run starts from the same routing.
func (c *clients) restore(ctx context.Context, st *routingState) error {
	if err := c.restoreObject(ctx, drGVR, st.dr); err != nil {
		return err
	}
	return c.restoreObject(ctx, vsGVR, st.vs)
}

// restoreObject writes want's spec, labels and annotations over the live
// object of that name.
func (c *clients) restoreObject(ctx context.Context, gvr schema.GroupVersionResource, want *unstructured.Unstructured) error {
	client := c.dyn.Resource(gvr).Namespace(want.GetNamespace())
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live, err := client.Get(ctx, want.GetName(), metav1.GetOptions{})
		if err != nil {
			return err
		}
		live.Object["spec"] = runtime.DeepCopyJSONValue(want.Object["spec"])
		live.SetAnnotations(want.GetAnnotations())
		live.SetLabels(want.GetLabels())
		_, err = client.Update(ctx, live, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("restore %s %s/%s: %w", gvr.Resource, want.GetNamespace(), want.GetName(), err)
	}
	return nil
}

// population is what populate created and how fast.
type population struct {
	Namespaces       int     `json:"namespaces"`
	Services         int     `json:"services"`
	Deployments      int     `json:"deployments"`
	VirtualServices  int     `json:"virtualServices"`
	DestinationRules int     `json:"destinationRules"`
	Requests         int64   `json:"requests"`
	Seconds          float64 `json:"seconds"`
	Workers          int     `json:"workers"`
}

// populate creates services Services (each with 2 Deployments, a
// VirtualService and a DestinationRule) in namespaces of perNamespace.
func (c *clients) populate(ctx context.Context, services, perNamespace, workers int) (population, error) {
	t0 := time.Now()
	p := population{Workers: workers}
	nsCount := (services + perNamespace - 1) / perNamespace
	for i := 0; i < nsCount; i++ {
		if err := c.createNamespace(ctx, bigNamespace(i)); err != nil {
			return p, err
		}
	}
	p.Namespaces = nsCount
	jobs := make(chan int)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	var done atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := c.createService(ctx, bigNamespace(i/perNamespace), bigService(i)); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		}()
	}
feed:
	for i := 0; i < services; i++ {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return p, firstErr
	}
	n := int(done.Load())
	p.Services, p.Deployments, p.VirtualServices, p.DestinationRules = n, 2*n, n, n
	p.Requests = int64(nsCount) + 7*int64(n)
	p.Seconds = time.Since(t0).Seconds()
	return p, nil
}

func bigNamespace(i int) string { return fmt.Sprintf("big-%03d", i) }
func bigService(i int) string   { return fmt.Sprintf("svc-%04d", i) }

// objectCounts is how many objects of each kind the cluster holds.
type objectCounts struct {
	Namespaces       int `json:"namespaces"`
	Services         int `json:"services"`
	Deployments      int `json:"deployments"`
	VirtualServices  int `json:"virtualServices"`
	DestinationRules int `json:"destinationRules"`
	// Routes are the Gateway API routes by resource (httproutes), one
	// entry for each kind served.
	Routes map[string]int `json:"gatewayAPIRoutes,omitempty"`
}

func (c *clients) count(ctx context.Context, routes []schema.GroupVersionResource) (objectCounts, error) {
	var oc objectCounts
	countList := func(list func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error)) (int, error) {
		n := 0
		err := pager.New(list).EachListItem(ctx, metav1.ListOptions{}, func(runtime.Object) error { n++; return nil })
		return n, err
	}
	var err error
	if oc.Namespaces, err = countList(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.proto.CoreV1().Namespaces().List(ctx, o)
	}); err != nil {
		return oc, err
	}
	if oc.Services, err = countList(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.proto.CoreV1().Services("").List(ctx, o)
	}); err != nil {
		return oc, err
	}
	if oc.Deployments, err = countList(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.proto.AppsV1().Deployments("").List(ctx, o)
	}); err != nil {
		return oc, err
	}
	if oc.VirtualServices, err = countList(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.dyn.Resource(vsGVR).List(ctx, o)
	}); err != nil {
		return oc, err
	}
	if oc.DestinationRules, err = countList(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return c.dyn.Resource(drGVR).List(ctx, o)
	}); err != nil {
		return oc, err
	}
	for _, gvr := range routes {
		n, err := countList(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.dyn.Resource(gvr).List(ctx, o)
		})
		if err != nil {
			return oc, err
		}
		if oc.Routes == nil {
			oc.Routes = map[string]int{}
		}
		oc.Routes[gvr.Resource] = n
	}
	return oc, nil
}

// routeOf returns the destinations of the first HTTP route of a
// VirtualService, and the weight each subset gets (a lone destination
// without weight gets 100).
func routeOf(vs *unstructured.Unstructured) ([]interface{}, map[string]int64, error) {
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	if len(http) == 0 {
		return nil, nil, fmt.Errorf("virtualservice %s/%s has no http route", vs.GetNamespace(), vs.GetName())
	}
	route, _, _ := unstructured.NestedSlice(http[0].(map[string]interface{}), "route")
	weights := map[string]int64{}
	for _, r := range route {
		m := r.(map[string]interface{})
		subset, _, _ := unstructured.NestedString(m, "destination", "subset")
		w, found, _ := unstructured.NestedInt64(m, "weight")
		if !found && len(route) == 1 {
			w = 100
		}
		weights[subset] += w
	}
	return route, weights, nil
}
