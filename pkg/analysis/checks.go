package analysis

import (
	"context"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
)

// Check is a custom PromQL query whose value must stay within Max and/or
// Min. The query is a Go template over CheckVars.
type Check struct {
	Name  string   `json:"name"`
	Query string   `json:"query"`
	Max   *float64 `json:"max,omitempty"`
	Min   *float64 `json:"min,omitempty"`
}

// CheckVars are the template variables of a custom query.
type CheckVars struct {
	Namespace, Service, Stable, Canary string
	// Window is the analysis window in PromQL form, e.g. 5m.
	Window string
	// StableWorkloads and CanaryWorkloads are regular expressions matching
	// the versions' Deployment names, for destination_workload=~"...".
	StableWorkloads, CanaryWorkloads string
	// Cluster is the Istio cluster ID being judged with a Prometheus of
	// several clusters (destination_cluster), else empty.
	Cluster string
}

// CheckResult is a custom check's value; Value is nil when the query
// returned no sample.
type CheckResult struct {
	Check
	Rendered string   `json:"rendered"`
	Value    *float64 `json:"value"`
}

// Render fills a custom query's template variables.
func (c Check) Render(t Target, window time.Duration) (string, error) {
	tmpl, err := template.New(c.Name).Option("missingkey=error").Parse(c.Query)
	if err != nil {
		return "", fmt.Errorf("custom query %s is not a valid template: %w", c.Name, err)
	}
	vars := CheckVars{Namespace: t.Namespace, Service: t.Service, Stable: t.Stable, Canary: t.Canary, Window: model.Duration(window).String(),
		StableWorkloads: workloadRegexp(t.StableWorkloads), CanaryWorkloads: workloadRegexp(t.CanaryWorkloads), Cluster: t.Cluster}
	var b strings.Builder
	if err := tmpl.Execute(&b, vars); err != nil {
		return "", fmt.Errorf("custom query %s: %w (variables: .Namespace .Service .Stable .Canary .Window .StableWorkloads .CanaryWorkloads .Cluster)", c.Name, err)
	}
	return b.String(), nil
}

// FetchChecks evaluates the custom checks at now.
func FetchChecks(ctx context.Context, prom API, t Target, window time.Duration, now time.Time, where string, checks []Check) ([]CheckResult, error) {
	var out []CheckResult
	for _, c := range checks {
		rendered, err := c.Render(t, window)
		if err != nil {
			return nil, err
		}
		v, _, _, err := prom.Query(ctx, rendered, now)
		if err != nil {
			return nil, fmt.Errorf("custom query %s to Prometheus at %s failed: %w\n  query: %s", c.Name, where, err, rendered)
		}
		r := CheckResult{Check: c, Rendered: rendered}
		if f := scalarOf(v); f == f { // not NaN
			r.Value = &f
		}
		out = append(out, r)
	}
	return out, nil
}

// judgeChecks fails on the first check out of bounds; a check without a
// value makes the verdict inconclusive.
func judgeChecks(checks []CheckResult) (fail *Decision, unknown *Decision) {
	for _, c := range checks {
		if c.Value == nil {
			if unknown == nil {
				unknown = &Decision{Verdict: Inconclusive, Metric: c.Name, Reason: fmt.Sprintf("custom query %s returned no value", c.Name)}
			}
			continue
		}
		if c.Max != nil && *c.Value > *c.Max {
			return &Decision{Verdict: Fail, Metric: c.Name, Reason: fmt.Sprintf("custom query %s is %g, above its --max %g", c.Name, *c.Value, *c.Max)}, unknown
		}
		if c.Min != nil && *c.Value < *c.Min {
			return &Decision{Verdict: Fail, Metric: c.Name, Reason: fmt.Sprintf("custom query %s is %g, below its --min %g", c.Name, *c.Value, *c.Min)}, unknown
		}
	}
	return nil, unknown
}

func workloadRegexp(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexpQuote(n)
	}
	return strings.Join(quoted, "|")
}
