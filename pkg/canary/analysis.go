package canary

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// PrometheusAt says where Prometheus is: at URL, or else behind the
// Service Namespace/Service:Port, reached through the API server's proxy.
type PrometheusAt = analysis.PrometheusAddress

// Prometheus is the Prometheus a canary is judged by, and a name for it in
// messages.
type Prometheus struct {
	// client is the HTTP client of api, for the targets API.
	client promapi.Client
	api    analysis.API
	where  string
}

// Prometheus connects to Prometheus, directly or through the API server.
// A direct URL gets the kubeconfig's request timeout when at has none.
func (c *Connection) Prometheus(at PrometheusAt) (*Prometheus, error) {
	config, ok, err := c.restConfig()
	if at.URL != "" {
		if at.Timeout == 0 && err == nil && ok {
			at.Timeout = config.Timeout
		}
		if at.Timeout == 0 {
			at.Timeout, _ = time.ParseDuration(DefaultRequestTimeout)
		}
		return newPrometheus(at.URL, &http.Client{Timeout: at.Timeout}, at)
	}
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, fmt.Errorf("no kubeconfig to reach Prometheus through the API server; pass --prometheus-url")
	}
	at.Timeout = config.Timeout
	httpClient, err := rest.HTTPClientFor(config)
	if err != nil {
		return nil, err
	}
	return ProxiedPrometheus(config.Host, httpClient, at)
}

// ProxiedPrometheus reaches Prometheus through the API server's service
// proxy at host (which may carry a path prefix).
func ProxiedPrometheus(host string, httpClient *http.Client, at PrometheusAt) (*Prometheus, error) {
	at.URL = ""
	return newPrometheus(strings.TrimSuffix(host, "/")+analysis.ServiceProxyPath(at.Namespace, at.Service, at.Port), httpClient, at)
}

func newPrometheus(address string, httpClient *http.Client, at PrometheusAt) (*Prometheus, error) {
	client, err := analysis.NewExplainingClient(address, httpClient, at)
	if err != nil {
		return nil, err
	}
	return &Prometheus{client: client, api: promv1.NewAPI(client), where: at.String()}, nil
}

// ScrapeMinimum is the shortest window (and run step) for the Service that
// Prometheus's scrape interval allows, read once per command.
func (p *Prometheus) ScrapeMinimum(ctx context.Context, namespace, service string, now time.Time) analysis.ScrapeMinimum {
	return analysis.ReadScrapeMinimum(ctx, p.client, namespace, service, now, p.where)
}

// HasSeries asks Prometheus for the target's request series: an error when
// Prometheus cannot be queried, false when it has none yet.
func (p *Prometheus) HasSeries(ctx context.Context, target analysis.Target, now time.Time) (bool, error) {
	return analysis.HasSeries(ctx, p.api, target, now, p.where)
}

// Judgement is how a canary is judged: over which window of its traffic,
// against which thresholds and custom checks. Scrape is Prometheus's
// scrape minimum, which bounds the part of the window the split is
// measured on.
type Judgement struct {
	Window     time.Duration
	Thresholds analysis.Thresholds
	Checks     []analysis.Check
	Scrape     analysis.ScrapeMinimum
}

// Judge fetches the canary's metrics and custom checks and judges them.
func (p *Prometheus) Judge(ctx context.Context, target analysis.Target, j Judgement, now time.Time) (analysis.Result, analysis.Decision, error) {
	result, err := analysis.Fetch(ctx, p.api, target, j.Window, now, p.where)
	if errors.Is(err, analysis.ErrNoMetrics) {
		// Nothing to judge yet is no verdict either way.
		nan := math.NaN()
		none := analysis.Metrics{Requests: nan, RPS: nan, SuccessRate: nan, P50: nan, P99: nan}
		return analysis.Result{Stable: none, Canary: none, Window: j.Window}, analysis.Decision{Verdict: analysis.Inconclusive, Metric: "requests", Reason: err.Error()}, nil
	}
	if err != nil {
		return result, analysis.Decision{}, err
	}
	if result.Checks, err = analysis.FetchChecks(ctx, p.api, target, j.Window, now, p.where, j.Checks); err != nil {
		return result, analysis.Decision{}, err
	}
	split, err := p.split(ctx, target, result.By, j.Window, j.Scrape, now)
	if err != nil {
		return result, analysis.Decision{}, err
	}
	result.Split = &split
	return result, analysis.Judge(result, j.Thresholds), nil
}

// Split reads the share of the Service's requests each version answered
// over the window since the routing settled, and judges it.
func (p *Prometheus) Split(ctx context.Context, target analysis.Target, window time.Duration, scrape analysis.ScrapeMinimum, now time.Time) (analysis.SplitReport, error) {
	by, err := analysis.ChooseSelector(ctx, p.api, target, now, p.where)
	if err != nil {
		return analysis.SplitReport{}, err
	}
	return p.split(ctx, target, by, window, scrape, now)
}

// Observed is the traffic split of the running canary st over the window;
// without request metrics for its Service it is unknown, saying so.
func (p *Prometheus) Observed(ctx context.Context, store Store, st routing.CanaryStatus, clusterDomain string, window time.Duration, now time.Time) (analysis.SplitReport, error) {
	target, _, err := RunningCanary(ctx, store, st.Namespace, st.Service, clusterDomain)
	if err != nil {
		return analysis.SplitReport{}, err
	}
	report, err := p.Split(ctx, target, window, p.ScrapeMinimum(ctx, st.Namespace, st.Service, now), now)
	if errors.Is(err, analysis.ErrNoMetrics) {
		return analysis.SplitReport{Verdict: analysis.SplitUnknown, Reason: err.Error(), ExpectedCanaryShare: target.Routing.ExpectedShare()}, nil
	}
	return report, err
}

func (p *Prometheus) split(ctx context.Context, target analysis.Target, by string, window time.Duration, scrape analysis.ScrapeMinimum, now time.Time) (analysis.SplitReport, error) {
	splitWindow, tooRecent := analysis.SplitWindow(window, target.Routing.ChangedAt, now, scrape.Settle(), scrape.Min)
	if tooRecent != "" {
		return analysis.SplitReport{Verdict: analysis.SplitUnknown, Reason: tooRecent, ExpectedCanaryShare: target.Routing.ExpectedShare()}, nil
	}
	split, err := analysis.FetchSplit(ctx, p.api, target, by, splitWindow, now, p.where)
	if err != nil {
		return analysis.SplitReport{}, err
	}
	return analysis.JudgeSplit(split, target.Routing), nil
}

// RunningCanary reads the running canary of a Service and the Deployments
// of its two versions: what analyze and run judge.
func RunningCanary(ctx context.Context, store Store, namespace, service, clusterDomain string) (analysis.Target, routing.CanaryStatus, error) {
	snap, err := store.Read(ctx, Query{Namespace: namespace, Service: service, ClusterDomain: clusterDomain})
	if err != nil {
		return analysis.Target{}, routing.CanaryStatus{}, err
	}
	return canaryTarget(snap, namespace, service)
}

func canaryTarget(snap *routing.Snapshot, namespace, service string) (analysis.Target, routing.CanaryStatus, error) {
	statuses := routing.SummarizeRouting([]corev1.Service{*snap.Service}, snap.Deployments, snap.VirtualServices, snap.DestinationRules, snap.GatewayAPIRoutes)
	for _, st := range statuses {
		if st.Service != service || st.Namespace != namespace {
			continue
		}
		if st.Phase != routing.PhaseProgressing || st.Canary == "" {
			return analysis.Target{}, st, routing.Errorf("service %s/%s has no running canary (phase %s); start one with kubectl canary start %s{Target}", namespace, service, st.Phase, service)
		}
		t := analysis.Target{Namespace: namespace, Service: service, Stable: st.Stable, Canary: st.Canary, Routing: routingOf(snap, st), VersionServices: versionServices(snap, st)}
		for _, d := range snap.Deployments {
			switch d.Spec.Template.Labels[st.VersionLabel] {
			case st.Stable:
				t.StableWorkloads = append(t.StableWorkloads, d.Name)
			case st.Canary:
				t.CanaryWorkloads = append(t.CanaryWorkloads, d.Name)
			}
		}
		return t, st, nil
	}
	return analysis.Target{}, routing.CanaryStatus{}, routing.Errorf("service %s/%s has no canary; start one with kubectl canary start %s{Target}", namespace, service, service)
}

// versionServices are the per-version Services of a Gateway API canary,
// which its requests are addressed to.
func versionServices(snap *routing.Snapshot, st routing.CanaryStatus) []string {
	if st.RoutingAPI != routing.RoutingAPIGatewayAPI {
		return nil
	}
	running, err := routing.RunningCanary(*snap, st.Service)
	if err != nil || running == nil {
		return nil
	}
	var out []string
	for _, name := range []string{running.StableSubset, running.CanarySubset} {
		if name != "" && name != st.Service {
			out = append(out, name)
		}
	}
	return out
}

// routingOf is what the canary's routing gives it: weight, mirror, rules,
// the VirtualServices that carry it and its share of the ready pods.
func routingOf(snap *routing.Snapshot, st routing.CanaryStatus) analysis.Routing {
	r := analysis.Routing{Weight: st.Weight, Mirror: st.Mirror, CanaryRules: len(st.Matches) > 0 || st.Sticky, ChangedAt: st.UpdatedAt,
		Pods: st.StableReady.Available}
	if st.CanaryReady != nil {
		r.CanaryPods = st.CanaryReady.Available
		r.Pods += st.CanaryReady.Available
	}
	for _, vs := range snap.VirtualServices {
		recorded := routing.StatesOn(vs)[st.Service]
		if recorded == nil || (recorded.Namespace != "" && recorded.Namespace != st.Namespace) || (recorded.Namespace == "" && vs.GetNamespace() != st.Namespace) {
			continue
		}
		exportTo, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "exportTo")
		r.VirtualServices = append(r.VirtualServices, analysis.ExportedRoute{Namespace: vs.GetNamespace(), Name: vs.GetName(), ExportTo: exportTo})
	}
	return r
}

// VerdictError is an analysis that did not pass: fail or inconclusive.
type VerdictError struct {
	Decision analysis.Decision
	// Subject says whose canary, and what came of it.
	Subject string
}

func (e *VerdictError) Error() string {
	return fmt.Sprintf("canary of %s: %s: %s", e.Subject, e.Decision.Verdict, e.Decision.Reason)
}

// Verdict is nil for a pass, else the VerdictError of the Service's canary.
func Verdict(namespace, service string, d analysis.Decision) error {
	if d.Verdict == analysis.Pass {
		return nil
	}
	return &VerdictError{Decision: d, Subject: namespace + "/" + service}
}
