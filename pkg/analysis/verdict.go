// Package analysis judges a canary by its real traffic: it builds the
// PromQL queries over Istio's standard metrics for the stable and the canary
// version of a Service, and turns their results into a verdict. The verdict
// logic is pure (Judge); Prometheus is reached only through Source.
package analysis

import (
	"fmt"
	"math"
	"time"
)

// Verdict is the outcome of one analysis.
type Verdict string

const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Inconclusive Verdict = "inconclusive"
)

// Metrics are one version's figures over the analysis window. A figure
// Prometheus could not compute (no samples, no histogram) is NaN.
type Metrics struct {
	// Requests is the number of requests the version answered in the window.
	Requests float64 `json:"requests"`
	// RPS is the mean requests per second over the window.
	RPS float64 `json:"rps"`
	// SuccessRate is the share of non-5xx responses, from 0 to 1.
	SuccessRate float64 `json:"successRate"`
	// P50 and P99 are latency quantiles in milliseconds.
	P50 float64 `json:"p50Ms"`
	P99 float64 `json:"p99Ms"`
}

// ErrorRate is the share of 5xx responses, NaN without requests.
func (m Metrics) ErrorRate() float64 { return 1 - m.SuccessRate }

// Result is what Prometheus said about both versions.
type Result struct {
	Stable Metrics `json:"stable"`
	Canary Metrics `json:"canary"`
	// Window is the range the rates and quantiles cover.
	Window time.Duration `json:"-"`
	// By is the label the versions were told apart by:
	// destination_version, or destination_workload as the fallback.
	By string `json:"selectedBy"`
	// Checks are the custom queries' values.
	Checks []CheckResult `json:"checks,omitempty"`
	// Split is the share of the Service's requests each version answered,
	// judged against the routing; nil when it was not read.
	Split *SplitReport `json:"split,omitempty"`
}

// Thresholds decide the verdict. A zero threshold is off, except
// MinRequests.
type Thresholds struct {
	// MaxErrorRate is the highest canary error rate (0 to 1) that passes.
	MaxErrorRate float64
	// MaxErrorRateIncrease is how much higher (absolute, 0 to 1) the
	// canary's error rate may be than the stable one's.
	MaxErrorRateIncrease float64
	// MaxP99 is the highest canary p99 latency that passes.
	MaxP99 time.Duration
	// MaxLatencyRatio is the highest canary p99 / stable p99 that passes.
	MaxLatencyRatio float64
	// MinRequests is the fewest canary requests in the window for a verdict
	// other than inconclusive.
	MinRequests float64
	// IgnoreSplitMismatch judges a canary whose traffic split does not
	// match its weight; otherwise such a canary is inconclusive.
	IgnoreSplitMismatch bool
}

// DefaultThresholds are the flags' defaults: at most 1% errors, at most one
// point more than stable, p99 at most 1.5 times stable's, 20 requests at least.
var DefaultThresholds = Thresholds{
	MaxErrorRate:         0.01,
	MaxErrorRateIncrease: 0.01,
	MaxLatencyRatio:      1.5,
	MinRequests:          20,
}

// Decision is a verdict with the reason for it. Metric names the figure
// that failed or could not be judged.
type Decision struct {
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason"`
	Metric  string  `json:"metric,omitempty"`
}

// Judge compares the canary with the stable version. Failures win over
// inconclusive figures: a canary that already errors too much fails even if
// its latency is unknown. Without enough canary traffic nothing is judged,
// so a quiet canary never passes.
func Judge(r Result, t Thresholds) Decision {
	c, s := r.Canary, r.Stable
	requests := orZero(c.Requests)
	if requests < t.MinRequests || requests == 0 {
		return Decision{Verdict: Inconclusive, Metric: "requests",
			Reason: fmt.Sprintf("the canary answered %.0f requests in %s, fewer than the %.0f needed to judge it", requests, windowText(r.Window), math.Max(t.MinRequests, 1))}
	}
	var unknown []Decision
	canaryErr := c.ErrorRate()
	switch {
	case math.IsNaN(canaryErr):
		unknown = append(unknown, Decision{Verdict: Inconclusive, Metric: "error-rate", Reason: "the canary's success rate is unknown"})
	default:
		if t.MaxErrorRate > 0 && canaryErr > t.MaxErrorRate {
			return Decision{Verdict: Fail, Metric: "error-rate",
				Reason: fmt.Sprintf("canary error rate %s is above --max-error-rate %s", percent(canaryErr), percent(t.MaxErrorRate))}
		}
		stableErr := s.ErrorRate()
		// Without stable traffic there is nothing to be relative to.
		if t.MaxErrorRateIncrease > 0 && orZero(s.Requests) > 0 && !math.IsNaN(stableErr) && canaryErr-stableErr > t.MaxErrorRateIncrease {
			return Decision{Verdict: Fail, Metric: "error-rate",
				Reason: fmt.Sprintf("canary error rate %s is %s above stable's %s, more than --max-error-rate-increase %s", percent(canaryErr), percent(canaryErr-stableErr), percent(stableErr), percent(t.MaxErrorRateIncrease))}
		}
	}
	latencyJudged := t.MaxP99 > 0 || t.MaxLatencyRatio > 0
	switch {
	case !latencyJudged:
	case math.IsNaN(c.P99):
		unknown = append(unknown, Decision{Verdict: Inconclusive, Metric: "p99",
			Reason: "the canary's p99 latency is unknown (no istio_request_duration_milliseconds_bucket samples)"})
	default:
		maxMs := float64(t.MaxP99) / float64(time.Millisecond)
		if t.MaxP99 > 0 && c.P99 > maxMs {
			return Decision{Verdict: Fail, Metric: "p99",
				Reason: fmt.Sprintf("canary p99 latency %s is above --max-p99 %s", ms(c.P99), ms(maxMs))}
		}
		if t.MaxLatencyRatio > 0 && !math.IsNaN(s.P99) && s.P99 > 0 && c.P99/s.P99 > t.MaxLatencyRatio {
			return Decision{Verdict: Fail, Metric: "p99",
				Reason: fmt.Sprintf("canary p99 latency %s is %.2f times stable's %s, more than --max-latency-ratio %.2f", ms(c.P99), c.P99/s.P99, ms(s.P99), t.MaxLatencyRatio)}
		}
	}
	checkFail, checkUnknown := judgeChecks(r.Checks)
	if checkFail != nil {
		return *checkFail
	}
	if checkUnknown != nil {
		unknown = append(unknown, *checkUnknown)
	}
	// Figures measured on a split other than the weight's say little
	// about the canary at that weight: never pass on them.
	if sp := r.Split; sp != nil && sp.Verdict == SplitMismatch && !t.IgnoreSplitMismatch {
		unknown = append([]Decision{{Verdict: Inconclusive, Metric: "traffic-split",
			Reason: "traffic split does not match the weight: " + sp.Reason + " (--ignore-split-mismatch judges it anyway)"}}, unknown...)
	}
	if len(unknown) > 0 {
		return unknown[0]
	}
	return Decision{Verdict: Pass, Reason: fmt.Sprintf("canary within every threshold over %.0f requests", requests)}
}

func orZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

func percent(v float64) string { return fmt.Sprintf("%.2f%%", v*100) }

func ms(v float64) string { return fmt.Sprintf("%.0fms", v) }

func windowText(w time.Duration) string {
	if w == 0 {
		return "the window"
	}
	return "the last " + w.String()
}
