package canary

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
	"github.com/kubectl-canary/kubectl-canary/pkg/manifests"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// defaultIstioAPIVersion is what new objects use when neither the files
// nor a cluster say which networking.istio.io version to write.
const defaultIstioAPIVersion = kube.IstioNetworkingGroup + "/v1"

// Files is the Store of the GitOps mode: the routing objects live in
// manifest files, read and edited in place, so that the canary reaches the
// cluster through Git. The Service and Deployments come from the files
// where they are there, else from the cluster (never with --local).
type Files struct {
	Paths     []string
	Recursive bool
	// Namespace is the namespace of the objects whose manifests name none.
	Namespace string
	// Cluster is nil with --local.
	Cluster *Cluster
	// Now is the clock of the state annotations; nil is time.Now.
	Now func() time.Time
	// set is the manifests as last read.
	set *manifests.Set
}

var _ Store = (*Files)(nil)

// Read reads the routing objects from the files.
func (f *Files) Read(ctx context.Context, q Query) (*routing.Snapshot, error) {
	set, err := manifests.Load(f.Paths, f.Recursive, f.Namespace, NewObjectsFile(f.Paths, q.Service))
	if err != nil {
		return nil, err
	}
	f.set = set
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	snap := &routing.Snapshot{Now: now(), InManifests: true, APIVersion: istioAPIVersion(set, f.Cluster)}
	for _, obj := range set.Objects("VirtualService") {
		if obj.GetNamespace() == q.Namespace || routing.RoutesToService(obj.Unstructured, q.Service, q.Namespace, q.ClusterDomain) {
			snap.VirtualServices = append(snap.VirtualServices, obj.DeepCopy())
		}
	}
	snap.DestinationRules = inNamespace(set.Objects("DestinationRule"), q.Namespace)
	// The files hold whatever routes there are: reading them costs nothing.
	snap.GatewayAPIRoutes = inNamespace(set.Objects(routing.GatewayAPIRouteKinds...), q.Namespace)
	if err := f.readWorkloads(ctx, set, q, snap); err != nil {
		return nil, err
	}
	if snap.Service == nil {
		return nil, f.serviceNotFound(q)
	}
	return snap, nil
}

// readWorkloads fills in the Service, Deployments, Services and Gateways:
// those in the files, and the rest from the cluster when there is one.
func (f *Files) readWorkloads(ctx context.Context, set *manifests.Set, q Query, snap *routing.Snapshot) error {
	live := &kube.Workloads{}
	if f.Cluster != nil {
		var err error
		if live, err = f.Cluster.clients.ReadWorkloads(ctx, q.Namespace, q.Service, q.Services, q.Gateways); err != nil {
			return err
		}
	}
	for _, obj := range inNamespace(set.Objects("Service"), q.Namespace) {
		var svc corev1.Service
		if err := fromManifest(obj, &svc); err != nil {
			return err
		}
		if svc.Name == q.Service {
			snap.Service = &svc
		}
		if q.Services {
			snap.Services = append(snap.Services, svc)
		}
	}
	if snap.Service == nil {
		snap.Service = live.Service
	}
	for _, svc := range live.Services {
		if set.Find(typedObject("v1", "Service", svc.Namespace, svc.Name)) == nil {
			snap.Services = append(snap.Services, svc)
		}
	}
	if err := f.deployments(set, q.Namespace, live.Deployments, snap); err != nil {
		return err
	}
	snap.Gateways = live.Gateways
	for _, g := range q.Gateways {
		if obj := set.Find(typedObject(defaultIstioAPIVersion, "Gateway", g.Namespace, g.Name)); obj != nil {
			snap.Gateways = append(withoutGateway(snap.Gateways, g), obj.DeepCopy())
		}
	}
	return nil
}

// deployments are the files' Deployments, with the status of their live
// counterparts (a manifest has none), and the live ones the files lack.
func (f *Files) deployments(set *manifests.Set, namespace string, live []appsv1.Deployment, snap *routing.Snapshot) error {
	liveByName := map[string]appsv1.Deployment{}
	for _, d := range live {
		liveByName[d.Name] = d
	}
	fromFiles := map[string]bool{}
	for _, obj := range inNamespace(set.Objects("Deployment"), namespace) {
		var d appsv1.Deployment
		if err := fromManifest(obj, &d); err != nil {
			return err
		}
		fromFiles[d.Name] = true
		if twin, ok := liveByName[d.Name]; ok {
			d.Status = twin.Status
		} else {
			snap.ReadinessUnknown = true
		}
		snap.Deployments = append(snap.Deployments, d)
	}
	for _, d := range live {
		if !fromFiles[d.Name] {
			snap.Deployments = append(snap.Deployments, d)
		}
	}
	if snap.ReadinessUnknown {
		snap.Warnings = append(snap.Warnings, fmt.Sprintf("readiness not checked: Deployments of namespace %s were read from the manifests, which carry no status%s", namespace, f.localNote()))
	}
	return nil
}

func (f *Files) localNote() string {
	if f.Cluster == nil {
		return " (--local reads nothing from the cluster)"
	}
	return ""
}

func (f *Files) serviceNotFound(q Query) error {
	if f.Cluster == nil {
		return fmt.Errorf("service %q of namespace %q is not in the manifests of -f, and --local reads nothing from the cluster: add the Service's manifest to -f, or leave out --local", q.Service, q.Namespace)
	}
	return fmt.Errorf("service %q not found in the manifests of -f nor in namespace %q of the cluster; check the name, or pass -n with the namespace it lives in", q.Service, q.Namespace)
}

// Authorise edits every changed object in a copy of the files, so that an
// object that cannot be edited (in a JSON file, say) stops the change
// before the first file is written. Files need no cluster permission.
func (f *Files) Authorise(_ context.Context, changes []routing.Change) error {
	_, err := f.Preview(changes)
	return err
}

// Preview is the files as the changes would leave them; nothing is written.
func (f *Files) Preview(changes []routing.Change) ([]*manifests.File, error) {
	preview := f.set.Clone()
	for _, c := range changes {
		if !c.Changed() {
			continue
		}
		if err := refuseInManifests(c); err != nil {
			return nil, err
		}
		if _, err := preview.Apply(c.Desired); err != nil {
			return nil, err
		}
	}
	return preview.ChangedFiles(), nil
}

// Write edits the file that holds the object (or the new objects file) and
// writes it. A file changed on disk since it was read is a conflict: the
// engine reads the files again and plans anew.
func (f *Files) Write(_ context.Context, change routing.Change, dryRun bool) (*unstructured.Unstructured, error) {
	if err := refuseInManifests(change); err != nil {
		return nil, err
	}
	set := f.set
	if dryRun {
		set = set.Clone()
	}
	file, err := set.Apply(change.Desired)
	if err != nil {
		return nil, &ManifestError{err}
	}
	if !dryRun {
		var changed *manifests.ChangedOnDiskError
		if err := file.Save(); errors.As(err, &changed) {
			gr := schema.GroupResource{Group: change.Desired.GroupVersionKind().Group, Resource: kube.ResourceOf(change.Desired)}
			return nil, apierrors.NewConflict(gr, change.Desired.GetName(), err)
		} else if err != nil {
			return nil, err
		}
	}
	written := set.Find(change.Desired)
	if written == nil {
		return nil, fmt.Errorf("%s %s/%s is not in %s after it was written there", change.Desired.GetKind(), change.Desired.GetNamespace(), change.Desired.GetName(), file.Path)
	}
	return written.DeepCopy(), nil
}

// refuseInManifests refuses the changes of a Gateway API canary: its
// per-version Services are created and deleted as the canary goes, which
// an edit of manifest files in place does not do faithfully.
func refuseInManifests(c routing.Change) error {
	if kind := c.Desired.GetKind(); kind == "VirtualService" || kind == "DestinationRule" {
		return nil
	}
	return &ManifestError{fmt.Errorf("%s %s/%s belongs to a Kubernetes Gateway API canary, which -f does not edit in manifest files (its per-version Services come and go with the canary); run the command against the cluster without -f, or with --routing-api istio", c.Desired.GetKind(), c.Desired.GetNamespace(), c.Desired.GetName())}
}

// ManifestError is a manifest the plugin cannot edit faithfully (JSON, say):
// the error says which file and object, and what to do, on its own.
type ManifestError struct{ Err error }

func (e *ManifestError) Error() string { return e.Err.Error() }
func (e *ManifestError) Unwrap() error { return e.Err }

// FileOf is the file that holds an object, as last read or written.
func (f *Files) FileOf(obj *unstructured.Unstructured) string {
	if f.set == nil {
		return ""
	}
	if found := f.set.Find(obj); found != nil {
		return found.File.Path
	}
	return f.set.NewObjectsFile
}

// NewObjectsFile is where the objects a plan creates go: a file named
// after the Service in the directory of the first path (or in it, when it
// is a directory), so that `kubectl apply -f DIR` finds it beside the rest.
func NewObjectsFile(paths []string, service string) string {
	if len(paths) == 0 || service == "" {
		return ""
	}
	dir := paths[0]
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		dir = filepath.Dir(dir)
	}
	return filepath.Join(dir, service+"-canary.yaml")
}

// istioAPIVersion is the networking.istio.io version of new objects: that
// of the files' routing objects, else the cluster's.
func istioAPIVersion(set *manifests.Set, cluster *Cluster) string {
	for _, obj := range set.Objects("VirtualService", "DestinationRule") {
		return obj.GetAPIVersion()
	}
	if cluster != nil {
		return cluster.clients.APIVersion()
	}
	return defaultIstioAPIVersion
}

// inNamespace copies the objects of a namespace ("" for all).
func inNamespace(objects []*manifests.Object, namespace string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, obj := range objects {
		if namespace == "" || obj.GetNamespace() == namespace {
			out = append(out, obj.DeepCopy())
		}
	}
	return out
}

// fromManifest converts an object of the files to its typed form.
func fromManifest(obj *unstructured.Unstructured, into any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, into); err != nil {
		return fmt.Errorf("%s %s/%s in the manifests is not a valid %s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), obj.GetKind(), err)
	}
	return nil
}

func typedObject(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion(apiVersion)
	obj.SetKind(kind)
	obj.SetNamespace(namespace)
	obj.SetName(name)
	return obj
}

func withoutGateway(gateways []*unstructured.Unstructured, name types.NamespacedName) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, g := range gateways {
		if g.GetNamespace() != name.Namespace || g.GetName() != name.Name {
			out = append(out, g)
		}
	}
	return out
}

// Statuses reads the canaries recorded in the files, of a namespace (""
// for all) or of one Service; readiness comes from the cluster's
// Deployments when there is a cluster.
func (f *Files) Statuses(ctx context.Context, namespace, service string) ([]routing.CanaryStatus, error) {
	set, err := manifests.Load(f.Paths, f.Recursive, f.Namespace, NewObjectsFile(f.Paths, service))
	if err != nil {
		return nil, err
	}
	live := &kube.Inventory{}
	if f.Cluster != nil {
		if live, err = f.Cluster.clients.ReadInventory(ctx, namespace); err != nil {
			return nil, err
		}
	}
	inv := &kube.Inventory{
		VirtualServices:  inNamespace(set.Objects("VirtualService"), ""),
		DestinationRules: inNamespace(set.Objects("DestinationRule"), ""),
		GatewayAPIRoutes: inNamespace(set.Objects(routing.GatewayAPIRouteKinds...), ""),
	}
	for _, obj := range set.Objects("Service") {
		var svc corev1.Service
		if err := fromManifest(obj.Unstructured, &svc); err != nil {
			return nil, err
		}
		inv.Services = append(inv.Services, svc)
	}
	for _, svc := range live.Services {
		if set.Find(typedObject("v1", "Service", svc.Namespace, svc.Name)) == nil {
			inv.Services = append(inv.Services, svc)
		}
	}
	unknown := map[string]bool{}
	for _, ns := range namespacesOf(set, live, namespace) {
		snap := &routing.Snapshot{}
		if err := f.deployments(set, ns, deploymentsIn(live.Deployments, ns), snap); err != nil {
			return nil, err
		}
		inv.Deployments = append(inv.Deployments, snap.Deployments...)
		unknown[ns] = snap.ReadinessUnknown
	}
	statuses, err := statusesOf(inv, namespace, service)
	for i := range statuses {
		if f.Cluster == nil {
			// Without a cluster, a per-version Service the files lack may
			// well exist: it is not known to be gone.
			statuses[i].Drift = withoutServiceGone(statuses[i].Drift)
		}
		if unknown[statuses[i].Namespace] {
			statuses[i].StableReady.Unknown = true
			if statuses[i].CanaryReady != nil {
				statuses[i].CanaryReady.Unknown = true
			}
		}
	}
	return statuses, err
}

// CheckService checks a Service and the routing the files give it.
func (f *Files) CheckService(ctx context.Context, namespace, service string, intent routing.Intent, opts routing.CheckOptions) ([]routing.Finding, []string, error) {
	snap, err := f.Read(ctx, Query{Namespace: namespace, Service: service, OtherNamespaces: true, Services: true, GatewayAPIRoutes: true, ClusterDomain: intent.ClusterDomain})
	if err != nil {
		return nil, nil, err
	}
	return routing.Check(*snap, intent, opts), snap.Warnings, nil
}

// namespacesOf are the namespaces whose Deployments a status shows: the one
// asked for, else every namespace of the files and the cluster.
func namespacesOf(set *manifests.Set, live *kube.Inventory, namespace string) []string {
	if namespace != "" {
		return []string{namespace}
	}
	seen := map[string]bool{}
	var out []string
	add := func(ns string) {
		if !seen[ns] {
			seen[ns] = true
			out = append(out, ns)
		}
	}
	for _, obj := range set.Objects("Deployment") {
		add(obj.GetNamespace())
	}
	for _, d := range live.Deployments {
		add(d.Namespace)
	}
	return out
}

func deploymentsIn(deployments []appsv1.Deployment, namespace string) []appsv1.Deployment {
	var out []appsv1.Deployment
	for _, d := range deployments {
		if d.Namespace == namespace {
			out = append(out, d)
		}
	}
	return out
}

func withoutServiceGone(drift []routing.Drift) []routing.Drift {
	kept := []routing.Drift{}
	for _, d := range drift {
		if d.What != routing.DriftServiceGone {
			kept = append(kept, d)
		}
	}
	return kept
}
