package routing

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// wellKnownVersionLabels are tried in order before falling back to the one
// label whose values differ between the Deployments.
var wellKnownVersionLabels = []string{
	"version",
	"app.kubernetes.io/version",
	"service.istio.io/canonical-revision",
}

// Version is one value of the version label and the Deployments that carry it.
type Version struct {
	Value       string
	Deployments []*appsv1.Deployment
	// PodLabels are the pod-template labels shared by all its Deployments;
	// a subset may select on any of them besides the version label.
	PodLabels map[string]string
}

// Versions is the set of versions behind a Service, keyed by the version label.
type Versions struct {
	Label  string
	ByName map[string]*Version
}

// Values lists the version values in a stable order.
func (v *Versions) Values() []string {
	out := make([]string, 0, len(v.ByName))
	for value := range v.ByName {
		out = append(out, value)
	}
	sort.Strings(out)
	return out
}

// backingDeployments returns the Deployments whose pod template the
// Service's selector matches, sorted by name.
func backingDeployments(svc *corev1.Service, deployments []appsv1.Deployment) ([]*appsv1.Deployment, error) {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, fmt.Errorf("service %s/%s is an ExternalName service (an alias of %s): no pods of this cluster are behind it, so there is nothing to canary; run the canary on the service that selects the pods", svc.Namespace, svc.Name, svc.Spec.ExternalName)
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil, fmt.Errorf("service %s/%s is headless (clusterIP: None): clients reach its pods by their own addresses, so a weighted split does not apply; give the canary a Service with a cluster IP", svc.Namespace, svc.Name)
	}
	if len(svc.Spec.Selector) == 0 {
		return nil, fmt.Errorf("service %s/%s has no selector, so no Deployment is behind it; kubectl canary needs a Service that selects the pods of its versions", svc.Namespace, svc.Name)
	}
	selector := labels.SelectorFromSet(svc.Spec.Selector)
	var matched []*appsv1.Deployment
	for i := range deployments {
		d := &deployments[i]
		if d.Namespace != "" && d.Namespace != svc.Namespace {
			continue
		}
		if selector.Matches(labels.Set(d.Spec.Template.Labels)) {
			matched = append(matched, d)
		}
	}
	if len(matched) == 0 {
		return nil, fmt.Errorf("no Deployment in namespace %s has pods matching the selector of service %s (%s); deploy the versions first", svc.Namespace, svc.Name, selector)
	}
	sort.Slice(matched, func(i, j int) bool { return matched[i].Name < matched[j].Name })
	return matched, nil
}

// inferVersions decides the version label and groups the Deployments by its
// value. explicitLabel is the intent's; empty means infer.
func inferVersions(svc *corev1.Service, deployments []*appsv1.Deployment, explicitLabel string) (*Versions, error) {
	key := explicitLabel
	if key != "" {
		var missing []string
		for _, d := range deployments {
			if _, ok := d.Spec.Template.Labels[key]; !ok {
				missing = append(missing, d.Name)
			}
		}
		if len(missing) > 0 {
			return nil, intentErrorf("version label %q is missing from the pod template of deployment(s) %s behind service %s/%s; label every version or pick another {VersionLabel}", key, strings.Join(missing, ", "), svc.Namespace, svc.Name)
		}
	} else {
		if len(deployments) < 2 {
			return nil, oneVersionError(svc, deployments)
		}
		var err error
		if key, err = inferVersionLabel(svc, deployments); err != nil {
			return nil, err
		}
	}
	versions := &Versions{Label: key, ByName: map[string]*Version{}}
	for _, d := range deployments {
		value := d.Spec.Template.Labels[key]
		v := versions.ByName[value]
		if v == nil {
			v = &Version{Value: value, PodLabels: map[string]string{}}
			for k, val := range d.Spec.Template.Labels {
				v.PodLabels[k] = val
			}
			versions.ByName[value] = v
		} else {
			for k, val := range v.PodLabels {
				if d.Spec.Template.Labels[k] != val {
					delete(v.PodLabels, k)
				}
			}
		}
		v.Deployments = append(v.Deployments, d)
	}
	if len(versions.ByName) < 2 {
		return nil, oneVersionError(svc, deployments)
	}
	return versions, nil
}

func oneVersionError(svc *corev1.Service, deployments []*appsv1.Deployment) error {
	names := make([]string, 0, len(deployments))
	for _, d := range deployments {
		names = append(names, d.Name)
	}
	return fmt.Errorf("service %s/%s has only one version behind it (deployment %s); deploy the canary as a second Deployment whose pods match the Service selector and differ in a version label", svc.Namespace, svc.Name, strings.Join(names, ", "))
}

// inferVersionLabel applies the SPEC's order: the well-known labels first,
// then the single label key whose values differ and that the selector does
// not use.
func inferVersionLabel(svc *corev1.Service, deployments []*appsv1.Deployment) (string, error) {
	for _, key := range wellKnownVersionLabels {
		if labelDistinguishes(key, deployments) {
			return key, nil
		}
	}
	// Keys present on every Deployment, not in the selector, with differing values.
	var candidates []string
	for key := range deployments[0].Spec.Template.Labels {
		if _, used := svc.Spec.Selector[key]; used {
			continue
		}
		if labelDistinguishes(key, deployments) {
			candidates = append(candidates, key)
		}
	}
	sort.Strings(candidates)
	switch len(candidates) {
	case 1:
		return candidates[0], nil
	case 0:
		return "", intentErrorf("cannot tell the versions of service %s/%s apart: no pod-template label of its deployments (%s) differs between them; label each version (for example version=v1, version=v2) or pass {VersionLabel}", svc.Namespace, svc.Name, deploymentNames(deployments))
	default:
		return "", intentErrorf("cannot choose the version label of service %s/%s: candidates are %s; pass {VersionLabel} with one of them", svc.Namespace, svc.Name, strings.Join(candidates, ", "))
	}
}

// labelDistinguishes reports whether every Deployment has key and at least
// two of them differ in its value.
func labelDistinguishes(key string, deployments []*appsv1.Deployment) bool {
	values := map[string]bool{}
	for _, d := range deployments {
		v, ok := d.Spec.Template.Labels[key]
		if !ok {
			return false
		}
		values[v] = true
	}
	return len(values) > 1
}

func deploymentNames(deployments []*appsv1.Deployment) string {
	names := make([]string, 0, len(deployments))
	for _, d := range deployments {
		names = append(names, d.Name)
	}
	return strings.Join(names, ", ")
}

// oldestVersion is the stable version when no route names one: the version
// whose Deployment was created first.
func oldestVersion(versions *Versions) string {
	var oldest *appsv1.Deployment
	var value string
	for _, v := range versions.Values() {
		for _, d := range versions.ByName[v].Deployments {
			if oldest == nil || d.CreationTimestamp.Before(&oldest.CreationTimestamp) ||
				(d.CreationTimestamp.Equal(&oldest.CreationTimestamp) && d.Name < oldest.Name) {
				oldest, value = d, v
			}
		}
	}
	return value
}

// readiness sums available and desired replicas of a version's Deployments.
func (v *Version) readiness() (available, desired int32) {
	for _, d := range v.Deployments {
		available += d.Status.AvailableReplicas
		if d.Spec.Replicas != nil {
			desired += *d.Spec.Replicas
		} else {
			desired++
		}
	}
	return available, desired
}
