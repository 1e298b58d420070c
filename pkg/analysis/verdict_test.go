package analysis

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

var nan = math.NaN()

func healthy(requests float64) Metrics {
	return Metrics{Requests: requests, RPS: requests / 300, SuccessRate: 1, P50: 10, P99: 50}
}

func TestJudge(t *testing.T) {
	withP99 := DefaultThresholds
	withP99.MaxP99 = 200 * time.Millisecond
	cases := []struct {
		name           string
		stable, canary Metrics
		thresholds     Thresholds
		verdict        Verdict
		metric         string
		reason         string
	}{
		{name: "healthy canary passes", stable: healthy(1000), canary: healthy(100), verdict: Pass},
		{name: "no traffic at all", stable: Metrics{nan, nan, nan, nan, nan}, canary: Metrics{nan, nan, nan, nan, nan}, verdict: Inconclusive, metric: "requests", reason: "answered 0 requests"},
		{name: "empty canary results, stable busy", stable: healthy(1000), canary: Metrics{nan, nan, nan, nan, nan}, verdict: Inconclusive, metric: "requests"},
		{name: "canary below min requests never passes", stable: healthy(1000), canary: healthy(19), verdict: Inconclusive, metric: "requests", reason: "fewer than the 20"},
		{name: "min requests 0 still needs one request", stable: healthy(1000), canary: Metrics{0, 0, nan, nan, nan}, thresholds: Thresholds{MaxErrorRate: 0.01}, verdict: Inconclusive, metric: "requests"},
		{name: "canary errors above the absolute limit", stable: healthy(1000), canary: Metrics{Requests: 100, SuccessRate: 0.9, P99: 50}, verdict: Fail, metric: "error-rate", reason: "canary error rate 10.00% is above --max-error-rate 1.00%"},
		{name: "canary errors rise over stable's", stable: Metrics{Requests: 1000, SuccessRate: 0.95, P99: 50}, canary: Metrics{Requests: 100, SuccessRate: 0.92, P99: 50}, thresholds: Thresholds{MaxErrorRate: 0.5, MaxErrorRateIncrease: 0.01, MinRequests: 20}, verdict: Fail, metric: "error-rate", reason: "3.00% above stable's 5.00%"},
		{name: "canary errors as high as stable's pass the relative check", stable: Metrics{Requests: 1000, SuccessRate: 0.95, P99: 50}, canary: Metrics{Requests: 100, SuccessRate: 0.95, P99: 50}, thresholds: Thresholds{MaxErrorRate: 0.5, MaxErrorRateIncrease: 0.01, MinRequests: 20}, verdict: Pass},
		{name: "stable worse than canary passes", stable: Metrics{Requests: 1000, SuccessRate: 0.97, P50: 100, P99: 900}, canary: healthy(100), thresholds: Thresholds{MaxErrorRateIncrease: 0.01, MaxLatencyRatio: 1.5, MinRequests: 20}, verdict: Pass},
		{name: "canary slower than stable", stable: healthy(1000), canary: Metrics{Requests: 100, SuccessRate: 1, P50: 30, P99: 120}, verdict: Fail, metric: "p99", reason: "2.40 times stable's 50ms"},
		{name: "canary above the absolute p99", stable: Metrics{Requests: 1000, SuccessRate: 1, P99: 400}, canary: Metrics{Requests: 100, SuccessRate: 1, P99: 300}, thresholds: withP99, verdict: Fail, metric: "p99", reason: "above --max-p99 200ms"},
		{name: "canary latency unknown is inconclusive", stable: healthy(1000), canary: Metrics{Requests: 100, SuccessRate: 1, P50: nan, P99: nan}, verdict: Inconclusive, metric: "p99"},
		{name: "errors fail even when latency is unknown", stable: healthy(1000), canary: Metrics{Requests: 100, SuccessRate: 0.5, P50: nan, P99: nan}, verdict: Fail, metric: "error-rate"},
		{name: "canary success rate unknown is inconclusive", stable: healthy(1000), canary: Metrics{Requests: 100, SuccessRate: nan, P99: 50}, verdict: Inconclusive, metric: "error-rate"},
		{name: "stable without traffic: only absolute checks", stable: Metrics{nan, nan, nan, nan, nan}, canary: Metrics{Requests: 100, SuccessRate: 0.995, P50: 10, P99: 500}, verdict: Pass},
		{name: "latency checks off", stable: healthy(1000), canary: Metrics{Requests: 100, SuccessRate: 1, P99: nan}, thresholds: Thresholds{MaxErrorRate: 0.01, MinRequests: 20}, verdict: Pass},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			th := tc.thresholds
			if th == (Thresholds{}) {
				th = DefaultThresholds
			}
			d := Judge(Result{Stable: tc.stable, Canary: tc.canary, Window: 5 * time.Minute}, th)
			assert.Equal(t, tc.verdict, d.Verdict, d.Reason)
			assert.Equal(t, tc.metric, d.Metric)
			assert.Contains(t, d.Reason, tc.reason)
		})
	}
}

func TestMetricsJSONHasNullForUnknown(t *testing.T) {
	b, err := Metrics{Requests: 3, RPS: 0.01, SuccessRate: nan, P50: nan, P99: math.Inf(1)}.MarshalJSON()
	assert.NoError(t, err)
	assert.JSONEq(t, `{"requests":3,"rps":0.01,"successRate":null,"p50Ms":null,"p99Ms":null}`, string(b))
}
