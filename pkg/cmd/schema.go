package cmd

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
	"github.com/kubectl-canary/kubectl-canary/pkg/version"
)

// The documents kubectl canary prints with -o json, yaml, jsonpath,
// go-template, custom-columns or name are the types of this file, and
// nothing else: their JSON tags are the schema README documents. Each
// carries apiVersion SchemaVersion and its kind, and metadata.name (and
// .namespace) as Kubernetes objects do, so that kubectl's printers (-o name,
// custom-columns) and scripts written for kubectl get work on them. Several
// of them print as a v1 List, as kubectl get prints several objects.
//
// A change that breaks a script (a field renamed, removed or of another
// type) needs a new version; adding a field does not.

// SchemaVersion is the apiVersion of every document of this file.
const SchemaVersion = "kubectl-canary.io/v1alpha1"

// The kinds of the documents.
const (
	KindCanaryStatus        = "CanaryStatus"
	KindCanaryCheck         = "CanaryCheck"
	KindCanaryAnalysis      = "CanaryAnalysis"
	KindCanaryFleetAnalysis = "CanaryFleetAnalysis"
	KindFleetChange         = "CanaryFleetChange"
	KindVersion             = "Version"
)

// ObjectMeta names a document as Kubernetes names objects: for a canary,
// the Service's name and namespace.
type ObjectMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// CanaryStatus is a canary as `status -o json|yaml` prints it: every field
// of the canary's recorded state (routing.CanaryStatus), and with
// --observed the share of requests it answered.
type CanaryStatus struct {
	metav1.TypeMeta      `json:",inline"`
	Metadata             ObjectMeta `json:"metadata"`
	routing.CanaryStatus `json:",inline"`
	// Observed is, with --observed, the traffic split Prometheus saw.
	Observed *analysis.SplitReport `json:"observed,omitempty"`
}

// CanaryCheck is what `check -o json|yaml` prints: the findings of the
// preflight check of one Service ([] when there are none).
type CanaryCheck struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        ObjectMeta `json:"metadata"`
	// Service is NAMESPACE/NAME.
	Service  string            `json:"service"`
	Findings []routing.Finding `json:"findings"`
}

// CanaryAnalysis is what `analyze -o json|yaml` prints: the metrics of
// both versions, the checks, the traffic split and the verdict.
type CanaryAnalysis struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        ObjectMeta `json:"metadata"`
	AnalysisReport  `json:",inline"`
}

// AnalysisReport is the fields of an analysis (analyze.go builds them).
type AnalysisReport = analysisReport

// CanaryFleetAnalysis is what `analyze --contexts ... -o json|yaml` prints:
// each cluster's analysis, and the worst verdict with its cluster.
type CanaryFleetAnalysis struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        ObjectMeta        `json:"metadata"`
	Clusters        []ClusterAnalysis `json:"clusters"`
	Verdict         analysis.Verdict  `json:"verdict"`
	WorstCluster    string            `json:"worstCluster"`
}

// ClusterAnalysis is the analysis in the cluster of one context.
type ClusterAnalysis struct {
	Context  string         `json:"context"`
	Analysis CanaryAnalysis `json:"analysis"`
}

// CanaryFleetChange is what a change with --contexts prints with -o: the
// objects as written (or, with --dry-run, as they must become) in each
// cluster.
type CanaryFleetChange struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        ObjectMeta       `json:"metadata"`
	Clusters        []ClusterObjects `json:"clusters"`
}

// ClusterObjects are the routing objects of a change in one cluster.
type ClusterObjects struct {
	Context string           `json:"context"`
	Objects []map[string]any `json:"objects"`
}

// Version is what `version -o json|yaml` prints.
type Version struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        ObjectMeta `json:"metadata"`
	version.Info    `json:",inline"`
}

// typeMeta is the apiVersion and kind of a document of this file.
func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: SchemaVersion, Kind: kind}
}

// canaryMeta names the document of a Service's canary.
func canaryMeta(namespace, service string) ObjectMeta {
	return ObjectMeta{Name: service, Namespace: namespace}
}
