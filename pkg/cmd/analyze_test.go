package cmd

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
)

// analyze --window follows the scrape interval as run --interval does.
func TestAnalyzeWindowFollowsTheScrapeInterval(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	_, _, err = f.run("analyze", "reviews", "--window", "5s", "--prometheus-url", scrapingPrometheus(t, "5s"))
	assert.EqualError(t, err, "--window 5s is too short; Prometheus needs 4 scrapes in it, give 20s or more (4 scrapes at the 5s scrape interval of 1 target reporting shop/reviews)")
	// Scraped every second, 5s is enough: the analysis goes on (to find no
	// request metrics in this fake: inconclusive).
	_, _, err = f.run("analyze", "reviews", "--window", "5s", "--prometheus-url", scrapingPrometheus(t, "1s"))
	assert.ErrorContains(t, err, "canary of shop/reviews: inconclusive: "+analysis.ErrNoMetrics.Error())
	assert.Equal(t, exitInconclusive, ExitCode(err))
}

// --max and --min bound the --query they follow, as pflag sets flags in
// command-line order.
func TestCustomQueryFlagsPairInOrder(t *testing.T) {
	cmd := newCmdAnalyze(&globalOptions{})
	o := &analysisFlags{}
	cmd.ResetFlags()
	o.addFlags(cmd)
	require.NoError(t, cmd.ParseFlags([]string{"--query", "a=sum(x)", "--max", "5", "--query", "b=sum(y{z=\"1\"})", "--min", "0.5", "--max", "9"}))
	require.Len(t, o.checks, 2)
	assert.Equal(t, "a", o.checks[0].Name)
	assert.Equal(t, 5.0, *o.checks[0].Max)
	assert.Nil(t, o.checks[0].Min)
	assert.Equal(t, `sum(y{z="1"})`, o.checks[1].Query)
	assert.Equal(t, 0.5, *o.checks[1].Min)
	assert.Equal(t, 9.0, *o.checks[1].Max)
	o.window = time.Minute
	o.maxLatencyRatio = 1
	assert.NoError(t, o.validate())
	o.window = 0
	assert.ErrorContains(t, o.validate(), "--window 0s is not a duration of traffic")
	o.window = time.Second
	assert.NoError(t, o.validate(), "the shortest window depends on Prometheus's scrape interval, known in Run")

	for want, args := range map[string][]string{
		"--max bounds the --query before it": {"--max", "1"},
		"give NAME=PROMQL":                   {"--query", "nameonly"},
		"is not a number":                    {"--query", "a=x", "--max", "lots"},
		"already has a --max":                {"--query", "a=x", "--max", "1", "--max", "2"},
	} {
		c := newCmdAnalyze(&globalOptions{})
		assert.ErrorContains(t, c.ParseFlags(args), want)
	}
	unbounded := &analysisFlags{window: time.Minute, checks: []analysis.Check{{Name: "a", Query: "x"}}}
	assert.ErrorContains(t, unbounded.validate(), "custom query a has no bound")
}
