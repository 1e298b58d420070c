package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Istio's standard metric names and the labels the queries filter on.
const (
	RequestsMetric = "istio_requests_total"
	DurationMetric = "istio_request_duration_milliseconds_bucket"
	// Only the destination's sidecar sees every request a version
	// answered, whoever sent it.
	reporterDestination = `reporter="destination"`
	VersionLabel        = "destination_version"
	WorkloadLabel       = "destination_workload"
)

// Target names the Service and its two versions. Workloads are the
// Deployments of each version, used when Istio's version label does not
// reach the metrics (pods without a `version` label report "unknown").
type Target struct {
	Namespace       string
	Service         string
	Stable, Canary  string
	StableWorkloads []string
	CanaryWorkloads []string
	// Routing is what the routing gives the canary, to judge the split by.
	Routing Routing
	// Cluster, when set, narrows the series to the requests answered in
	// one cluster of a multi-primary mesh, by its Istio cluster ID: for a
	// Prometheus that holds the metrics of several clusters.
	Cluster string
	// VersionServices are the per-version Services a Gateway API canary
	// routes to (reviews-v1, reviews-v2): sidecars report the requests
	// under those names as destination_service_name, not the Service's.
	VersionServices []string
}

// ClusterLabel is the label of Istio's metrics that holds the cluster ID
// of the workload that answered the request.
const ClusterLabel = "destination_cluster"

var regexpQuote = regexp.QuoteMeta

// serviceMatchers select the Service's requests as its sidecars report them.
func (t Target) serviceMatchers() string {
	return reporterDestination + "," + t.destinationMatchers()
}

// destinationMatchers select the requests to the Service, by whichever
// proxy reported them, in the target's cluster when it has one.
func (t Target) destinationMatchers() string {
	m := fmt.Sprintf(`destination_service_namespace=%s,destination_service_name=%s`, strconv.Quote(t.Namespace), strconv.Quote(t.Service))
	if len(t.VersionServices) > 0 {
		// PromQL anchors =~ at both ends.
		names := []string{regexpQuote(t.Service)}
		for _, s := range t.VersionServices {
			names = append(names, regexpQuote(s))
		}
		m = fmt.Sprintf(`destination_service_namespace=%s,destination_service_name=~%s`, strconv.Quote(t.Namespace), strconv.Quote(strings.Join(names, "|")))
	}
	if t.Cluster != "" {
		m += fmt.Sprintf(`,%s=%s`, ClusterLabel, strconv.Quote(t.Cluster))
	}
	return m
}

// versionMatchers add the selector of one version, by version label or by
// workload names.
func versionMatchers(t Target, by, version string, workloads []string) string {
	if by == WorkloadLabel {
		return fmt.Sprintf(`%s,%s=~%s`, t.serviceMatchers(), WorkloadLabel, strconv.Quote(workloadRegexp(workloads)))
	}
	return fmt.Sprintf(`%s,%s=%s`, t.serviceMatchers(), VersionLabel, strconv.Quote(version))
}

// Queries are the PromQL expressions for one version over a window.
type Queries struct {
	Requests, RPS, SuccessRate, P50, P99 string
}

// QueriesFor builds the queries of one version; by is VersionLabel or
// WorkloadLabel. README.md shows them, so users can run them themselves.
func QueriesFor(t Target, by string, canary bool, window time.Duration) Queries {
	version, workloads := t.Stable, t.StableWorkloads
	if canary {
		version, workloads = t.Canary, t.CanaryWorkloads
	}
	m := versionMatchers(t, by, version, workloads)
	w := model.Duration(window).String()
	quantile := func(q string) string {
		return fmt.Sprintf(`histogram_quantile(%s, sum by (le) (rate(%s{%s}[%s])))`, q, DurationMetric, m, w)
	}
	return Queries{
		Requests:    fmt.Sprintf(`sum(increase(%s{%s}[%s]))`, RequestsMetric, m, w),
		RPS:         fmt.Sprintf(`sum(rate(%s{%s}[%s]))`, RequestsMetric, m, w),
		SuccessRate: fmt.Sprintf(`sum(rate(%s{%s,response_code!~"5.."}[%s])) / sum(rate(%s{%s}[%s]))`, RequestsMetric, m, w, RequestsMetric, m, w),
		P50:         quantile("0.5"),
		P99:         quantile("0.99"),
	}
}

// labelsQuery lists which version and workload labels the Service's
// requests carry, to choose the selector and to explain absent metrics.
func labelsQuery(t Target) string {
	return fmt.Sprintf(`count by (%s, %s) (%s{%s})`, VersionLabel, WorkloadLabel, RequestsMetric, t.serviceMatchers())
}

// API is the Prometheus HTTP API the analysis queries.
type API = promv1.API

// NewClient is a Prometheus HTTP client for address, sending its requests
// through httpClient (nil: Go's default transport). promv1.NewAPI wraps it
// for the queries; ReadScrapeMinimum also reads the targets API with it.
func NewClient(address string, httpClient *http.Client) (api.Client, error) {
	cfg := api.Config{Address: address}
	if httpClient != nil {
		cfg.Client = httpClient
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		// url.Error repeats the address, password and all.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, fmt.Errorf("prometheus address %q: %w", redactedAddress(address), err)
	}
	return c, nil
}

// NewAPI is a Prometheus API client for address (see NewClient).
func NewAPI(address string, httpClient *http.Client) (promv1.API, error) {
	c, err := NewClient(address, httpClient)
	if err != nil {
		return nil, err
	}
	return promv1.NewAPI(c), nil
}

// ServiceProxyPath is the API server path that proxies to a Service's port,
// so Prometheus is reached with the kubeconfig's credentials, no port-forward.
func ServiceProxyPath(namespace, service string, port int) string {
	return fmt.Sprintf("/api/v1/namespaces/%s/services/%s:%d/proxy", namespace, service, port)
}

// ErrNoMetrics says Prometheus has no request metrics for the Service.
var ErrNoMetrics = errors.New("no Istio request metrics")

// Fetch reads both versions' figures over the window ending now. where
// names Prometheus in errors (its URL or the proxy it is reached through).
func Fetch(ctx context.Context, prom promv1.API, t Target, window time.Duration, now time.Time, where string) (Result, error) {
	r := Result{Window: window}
	q := func(query string) (float64, error) {
		v, _, _, err := prom.Query(ctx, query, now)
		if err != nil {
			return math.NaN(), fmt.Errorf("query to Prometheus at %s failed: %w\n  query: %s", where, err, query)
		}
		return scalarOf(v), nil
	}
	by, err := ChooseSelector(ctx, prom, t, now, where)
	if err != nil {
		return r, err
	}
	r.By = by
	for _, canary := range []bool{false, true} {
		qs := QueriesFor(t, by, canary, window)
		var m Metrics
		for _, f := range []struct {
			dst   *float64
			query string
		}{{&m.Requests, qs.Requests}, {&m.RPS, qs.RPS}, {&m.SuccessRate, qs.SuccessRate}, {&m.P50, qs.P50}, {&m.P99, qs.P99}} {
			if *f.dst, err = q(f.query); err != nil {
				return r, err
			}
		}
		if canary {
			r.Canary = m
		} else {
			r.Stable = m
		}
	}
	return r, nil
}

// ChooseSelector picks destination_version when its values name a version
// of the Service, else destination_workload when the Deployments are known.
func ChooseSelector(ctx context.Context, prom promv1.API, t Target, now time.Time, where string) (string, error) {
	query := labelsQuery(t)
	vec, err := queryVector(ctx, prom, query, now, where)
	if err != nil {
		return "", err
	}
	if len(vec) == 0 {
		return "", fmt.Errorf("%w for service %s/%s in Prometheus at %s: no %s series with reporter=\"destination\". Is Istio's telemetry on, are the pods in the mesh, and has the Service had traffic?\n  query: %s", ErrNoMetrics, t.Namespace, t.Service, where, RequestsMetric, query)
	}
	versions, workloads := map[string]bool{}, map[string]bool{}
	for _, s := range vec {
		versions[string(s.Metric[VersionLabel])] = true
		workloads[string(s.Metric[WorkloadLabel])] = true
	}
	if versions[t.Stable] || versions[t.Canary] {
		return VersionLabel, nil
	}
	for _, w := range append(append([]string{}, t.StableWorkloads...), t.CanaryWorkloads...) {
		if workloads[w] {
			return WorkloadLabel, nil
		}
	}
	return "", fmt.Errorf("the versions of service %s/%s do not reach the metrics in Prometheus at %s: %s is %s and %s is %s, where %s or %s were expected. Label the pods with version=<version> (Istio reports it as %s)",
		t.Namespace, t.Service, where, VersionLabel, setText(versions), WorkloadLabel, setText(workloads), strconv.Quote(t.Stable), strconv.Quote(t.Canary), VersionLabel)
}

// HasSeries runs ChooseSelector's first query: an error when Prometheus
// cannot be queried, false when the Service has no request series yet.
func HasSeries(ctx context.Context, prom promv1.API, t Target, now time.Time, where string) (bool, error) {
	vec, err := queryVector(ctx, prom, labelsQuery(t), now, where)
	return len(vec) > 0, err
}

// queryVector runs an instant query; an error that is not Prometheus's own
// (a PrometheusError) is returned as it is, saying what is wrong.
func queryVector(ctx context.Context, prom promv1.API, query string, now time.Time, where string) (model.Vector, error) {
	v, _, _, err := prom.Query(ctx, query, now)
	var explained *PrometheusError
	switch {
	case errors.As(err, &explained):
		return nil, explained
	case err != nil:
		return nil, fmt.Errorf("cannot query Prometheus at %s: %w\n  query: %s", where, err, query)
	}
	vec, _ := v.(model.Vector)
	return vec, nil
}

func setText(set map[string]bool) string {
	var out []string
	for k := range set {
		out = append(out, strconv.Quote(k))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// scalarOf reads a one-element vector or a scalar; anything else (an empty
// vector: no samples) is NaN.
func scalarOf(v model.Value) float64 {
	switch x := v.(type) {
	case model.Vector:
		if len(x) == 1 {
			return float64(x[0].Value)
		}
	case *model.Scalar:
		return float64(x.Value)
	}
	return math.NaN()
}

// MarshalJSON writes unknown figures (NaN) as null, which JSON can hold.
func (m Metrics) MarshalJSON() ([]byte, error) {
	num := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		Requests    *float64 `json:"requests"`
		RPS         *float64 `json:"rps"`
		SuccessRate *float64 `json:"successRate"`
		P50         *float64 `json:"p50Ms"`
		P99         *float64 `json:"p99Ms"`
	}{num(m.Requests), num(m.RPS), num(m.SuccessRate), num(m.P50), num(m.P99)})
}

// Labels of the client that sent a request.
const (
	SourceWorkloadLabel  = "source_workload"
	SourceNamespaceLabel = "source_workload_namespace"
	reporterSource       = `reporter="source"`
)

// SplitQueries are the PromQL expressions of the traffic split: what the
// Service's pods answered, by version and client (reporter destination),
// and what mesh clients' own proxies sent (reporter source). by is
// VersionLabel or WorkloadLabel.
func SplitQueries(t Target, by string, window time.Duration) (answered, sent string) {
	w := model.Duration(window).String()
	answered = fmt.Sprintf(`sum by (%s, %s, %s) (increase(%s{%s}[%s]))`, by, SourceWorkloadLabel, SourceNamespaceLabel, RequestsMetric, t.serviceMatchers(), w)
	sent = fmt.Sprintf(`sum by (%s, %s) (increase(%s{%s,%s}[%s]))`, SourceWorkloadLabel, SourceNamespaceLabel, RequestsMetric, reporterSource, t.destinationMatchers(), w)
	return answered, sent
}

// FetchSplit reads the requests each version answered over the window, by
// client, and which clients' proxies reported sending theirs.
func FetchSplit(ctx context.Context, prom promv1.API, t Target, by string, window time.Duration, now time.Time, where string) (Split, error) {
	answeredQuery, sentQuery := SplitQueries(t, by, window)
	vectors := make([]model.Vector, 2)
	for i, query := range []string{answeredQuery, sentQuery} {
		v, _, _, err := prom.Query(ctx, query, now)
		if err != nil {
			return Split{}, fmt.Errorf("query to Prometheus at %s failed: %w\n  query: %s", where, err, query)
		}
		vectors[i], _ = v.(model.Vector)
	}
	type client struct{ workload, namespace string }
	sent := map[client]bool{}
	for _, s := range vectors[1] {
		if s.Value > 0 {
			sent[client{string(s.Metric[SourceWorkloadLabel]), string(s.Metric[SourceNamespaceLabel])}] = true
		}
	}
	split := Split{Window: window}
	sources := map[client]*SourceTraffic{}
	var order []client
	for _, s := range vectors[0] {
		requests := float64(s.Value)
		if math.IsNaN(requests) || requests <= 0 {
			continue
		}
		c := client{string(s.Metric[SourceWorkloadLabel]), string(s.Metric[SourceNamespaceLabel])}
		src := sources[c]
		if src == nil {
			src = &SourceTraffic{Workload: c.workload, Namespace: c.namespace, InMesh: c.workload != unknownSource && c.workload != "" && sent[c]}
			sources[c] = src
			order = append(order, c)
		}
		src.Requests += requests
		switch t.versionOf(by, string(s.Metric[model.LabelName(by)])) {
		case "canary":
			split.Canary += requests
			src.CanaryRequests += requests
		case "stable":
			split.Stable += requests
		default:
			split.Other += requests
		}
	}
	for _, c := range order {
		split.Sources = append(split.Sources, *sources[c])
	}
	sort.SliceStable(split.Sources, func(i, j int) bool { return split.Sources[i].Requests > split.Sources[j].Requests })
	return split, nil
}

// versionOf says which version a label value by selects: "stable",
// "canary" or "" for neither.
func (t Target) versionOf(by, value string) string {
	if by == WorkloadLabel {
		for _, w := range t.CanaryWorkloads {
			if w == value {
				return "canary"
			}
		}
		for _, w := range t.StableWorkloads {
			if w == value {
				return "stable"
			}
		}
		return ""
	}
	switch value {
	case t.Canary:
		return "canary"
	case t.Stable:
		return "stable"
	}
	return ""
}
