package kube

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IstiodReplica is one ready istiod pod behind its Service's port, and the
// pod's port that Service port leads to.
type IstiodReplica struct {
	Pod  string
	Port int32
}

// IstiodReplicas lists the ready pods behind port of istiod's Service, from
// its EndpointSlices: each replica has its own proxies and push counter, so
// --wait must read every one. Errors are the API's, for the caller to word.
func (c *Clients) IstiodReplicas(ctx context.Context, namespace, service string, port int) ([]IstiodReplica, error) {
	svc, err := c.Core.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	portName, found := "", false
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, strconv.Itoa(int(p.Port)))
		if int(p.Port) == port {
			portName, found = p.Name, true
		}
	}
	if !found {
		return nil, fmt.Errorf("service %s/%s has no port %d (it has %s)", namespace, service, port, strings.Join(ports, ", "))
	}
	slices, err := c.Core.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
	if err != nil {
		return nil, err
	}
	var replicas []IstiodReplica
	seen := map[string]bool{}
	for _, slice := range slices.Items {
		var target *int32
		for _, p := range slice.Ports {
			if p.Name != nil && *p.Name == portName && p.Port != nil {
				target = p.Port
			}
		}
		if target == nil {
			continue
		}
		for _, e := range slice.Endpoints {
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready
			// A pod may be listed in more than one slice: read it once.
			if ready && e.TargetRef != nil && e.TargetRef.Kind == "Pod" && !seen[e.TargetRef.Name] {
				seen[e.TargetRef.Name] = true
				replicas = append(replicas, IstiodReplica{Pod: e.TargetRef.Name, Port: *target})
			}
		}
	}
	sort.Slice(replicas, func(i, j int) bool { return replicas[i].Pod < replicas[j].Pod })
	return replicas, nil
}

// IstiodSyncStatus reads istiod's /debug/syncz through the API server: the
// service proxy when replica is nil, else the pod proxy of that replica. No
// port-forward is needed; the user's RBAC decides (get on services/proxy or
// pods/proxy in istiod's namespace).
// proxyNamespace, when set, asks only about the proxies of that namespace.
func (c *Clients) IstiodSyncStatus(ctx context.Context, namespace, service string, port int, replica *IstiodReplica, proxyNamespace string) ([]byte, error) {
	var params map[string]string
	if proxyNamespace != "" {
		params = map[string]string{"namespace": proxyNamespace}
	}
	if replica == nil {
		return c.Core.CoreV1().Services(namespace).ProxyGet("http", service, strconv.Itoa(port), "debug/syncz", params).DoRaw(ctx)
	}
	return c.Core.CoreV1().Pods(namespace).ProxyGet("http", replica.Pod, strconv.Itoa(int(replica.Port)), "debug/syncz", params).DoRaw(ctx)
}

// MayProxy asks the API server whether the user may get the proxy
// subresource of resource (services or pods) in namespace: it tells a
// refusal of the API server's RBAC from one of the proxied server itself.
func (c *Clients) MayProxy(ctx context.Context, resource, namespace string) (bool, error) {
	review, err := c.Core.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: "get", Resource: resource, Subresource: "proxy",
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return review.Status.Allowed, nil
}

// IstioClusterID is the cluster ID of the istiod pods of namespace: the
// CLUSTER_ID of their environment, as Istio's chart sets it, else Istio's
// default, Kubernetes. Istio's metrics carry it as destination_cluster.
func (c *Clients) IstioClusterID(ctx context.Context, namespace string) (string, error) {
	pods, err := c.Core.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
	if err != nil {
		return "", err
	}
	if len(pods.Items) == 0 {
		return "", fmt.Errorf("no istiod pod (label app=istiod) in namespace %s", namespace)
	}
	for _, pod := range pods.Items {
		for _, container := range pod.Spec.Containers {
			for _, env := range container.Env {
				if env.Name == "CLUSTER_ID" && env.Value != "" {
					return env.Value, nil
				}
			}
		}
	}
	return DefaultIstioClusterID, nil
}

// DefaultIstioClusterID is istiod's cluster ID when its install names none.
const DefaultIstioClusterID = "Kubernetes"
