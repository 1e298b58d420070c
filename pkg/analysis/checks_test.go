package analysis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func f64(v float64) *float64 { return &v }

func TestCustomChecksRenderTheServiceLabels(t *testing.T) {
	c := Check{Name: "errors", Query: `sum(rate(x{namespace="{{.Namespace}}",svc="{{.Service}}",v=~"{{.Canary}}|{{.Stable}}",w=~"{{.CanaryWorkloads}}"}[{{.Window}}]))`}
	q, err := c.Render(reviews, 2*time.Minute)
	require.NoError(t, err)
	assert.Equal(t, `sum(rate(x{namespace="shop",svc="reviews",v=~"v2|v1",w=~"reviews-v2"}[2m]))`, q)
	_, err = Check{Name: "bad", Query: "{{.Nope}}"}.Render(reviews, time.Minute)
	assert.ErrorContains(t, err, "custom query bad")
}

func TestJudgeCustomChecks(t *testing.T) {
	base := Result{Stable: healthy(1000), Canary: healthy(100)}
	for _, tc := range []struct {
		name    string
		checks  []CheckResult
		verdict Verdict
		metric  string
	}{
		{"within bounds", []CheckResult{{Check: Check{Name: "q", Max: f64(5), Min: f64(1)}, Value: f64(3)}}, Pass, ""},
		{"above max", []CheckResult{{Check: Check{Name: "q", Max: f64(5)}, Value: f64(6)}}, Fail, "q"},
		{"below min", []CheckResult{{Check: Check{Name: "q", Min: f64(1)}, Value: f64(0.5)}}, Fail, "q"},
		{"no value", []CheckResult{{Check: Check{Name: "q", Max: f64(5)}}}, Inconclusive, "q"},
		{"a failure wins over no value", []CheckResult{{Check: Check{Name: "a", Max: f64(5)}}, {Check: Check{Name: "b", Max: f64(5)}, Value: f64(9)}}, Fail, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			r.Checks = tc.checks
			d := Judge(r, DefaultThresholds)
			assert.Equal(t, tc.verdict, d.Verdict, d.Reason)
			assert.Equal(t, tc.metric, d.Metric)
		})
	}
}

func TestFetchChecks(t *testing.T) {
	f := &fakePrometheus{answer: func(q string) string {
		if strings.Contains(q, "empty") {
			return "[]"
		}
		return "[" + sample(nil, 0.25) + "]"
	}}
	got, err := FetchChecks(context.Background(), serve(t, f), reviews, time.Minute, time.Now(), "test", []Check{
		{Name: "ratio", Query: `sum(x{ns="{{.Namespace}}"})`, Max: f64(1)},
		{Name: "none", Query: `empty`, Min: f64(1)},
	})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, 0.25, *got[0].Value)
	assert.Equal(t, `sum(x{ns="shop"})`, got[0].Rendered)
	assert.Nil(t, got[1].Value)
	assert.Equal(t, []string{`sum(x{ns="shop"})`, "empty"}, f.queries)
}
