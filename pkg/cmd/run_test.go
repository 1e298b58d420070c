package cmd

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

func TestRunValidate(t *testing.T) {
	valid := func() *RunOptions {
		o := &RunOptions{globalOptions: &globalOptions{}, steps: []int{5, 10, 100}, interval: time.Minute, maxInconclusive: 3}
		o.window = time.Minute
		o.maxErrorRate, o.maxErrorRateIncrease, o.maxLatencyRatio, o.minRequests = 1, 1, 1.5, 20
		return o
	}
	assert.NoError(t, valid().Validate())
	short := valid()
	short.interval, short.window = time.Second, time.Second
	assert.NoError(t, short.Validate(), "the shortest interval and window depend on Prometheus's scrape interval, known in Run")
	for name, tc := range map[string]struct {
		change func(*RunOptions)
		err    string
	}{
		"no steps":        {func(o *RunOptions) { o.steps = nil }, "--steps is empty"},
		"zero weight":     {func(o *RunOptions) { o.steps = []int{0, 50} }, "step weight 0 is out of range"},
		"over 100":        {func(o *RunOptions) { o.steps = []int{50, 101} }, "step weight 101 is out of range"},
		"not increasing":  {func(o *RunOptions) { o.steps = []int{10, 10, 50} }, "--steps 10,10,50 must increase"},
		"zero interval":   {func(o *RunOptions) { o.interval = 0 }, "--interval 0s is not a duration"},
		"negative holds":  {func(o *RunOptions) { o.maxInconclusive = -1 }, "--max-inconclusive cannot be negative"},
		"negative window": {func(o *RunOptions) { o.window = -time.Second }, "--window -1s is not a duration"},
		"error rate >100": {func(o *RunOptions) { o.maxErrorRate = 150 }, "--max-error-rate 150 is not a percentage"},
	} {
		t.Run(name, func(t *testing.T) {
			o := valid()
			tc.change(o)
			assert.ErrorContains(t, o.Validate(), tc.err)
		})
	}
}

// On a terminal the wait is one line rewritten in place; elsewhere, one log
// line per wait. An interrupted wait ends its line before the error.
func TestRunProgressOnATerminalAndInALog(t *testing.T) {
	run := routing.RunState{Steps: []int{10, 50}, Step: 1}
	for _, terminal := range []bool{true, false} {
		var out bytes.Buffer
		p := &runProgress{out: &out, terminal: terminal, lastMetrics: "canary 1.0 rps"}
		p.Waiting(run, 2*time.Second)
		p.Waiting(run, time.Second)
		p.WaitOver(false)
		if terminal {
			assert.Equal(t, "\r\033[Kstep 2/2: canary at 50%, analysing in 2s; last: canary 1.0 rps\r\033[Kstep 2/2: canary at 50%, analysing in 1s; last: canary 1.0 rps\r\033[K", out.String())
		} else {
			assert.Equal(t, "step 2/2: canary at 50%: analysing in 2s\n", out.String())
		}
	}
	var out bytes.Buffer
	p := &runProgress{out: &out, terminal: true}
	p.Waiting(routing.RunState{Steps: []int{10, 50}, Inconclusive: 1}, time.Hour)
	p.WaitOver(true)
	assert.Equal(t, "\r\033[Kstep 1/2: canary at 10% (held, 1 inconclusive), analysing in 1h0m0s\n", out.String())
}

// scrapingPrometheus is a fake Prometheus with one active target, which
// reports shop/reviews and is scraped every interval; the analysis queries
// get no samples.
func scrapingPrometheus(t *testing.T, interval string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/targets":
			fmt.Fprintf(w, `{"status":"success","data":{"activeTargets":[{"labels":{"job":"istio-sidecars","instance":"10.244.0.5:15020"},"scrapePool":"istio-sidecars","scrapeInterval":%q,"health":"up"}],"droppedTargets":[]}}`, interval)
		case "/api/v1/query":
			_ = r.ParseForm()
			result := "[]"
			if strings.HasPrefix(r.Form.Get("query"), "count by (job, instance) (istio_requests_total{") {
				result = `[{"metric":{"job":"istio-sidecars","instance":"10.244.0.5:15020"},"value":[1700000000,"4"]}]`
			}
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":%s}}`, result)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// The shortest --interval and --window follow the scrape interval of the
// targets reporting the Service, and the messages say where it comes from.
func TestRunIntervalFollowsTheScrapeInterval(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	everySecond := scrapingPrometheus(t, "1s")
	out, _, err := f.run("run", "reviews", "--interval", "5s", "--dry-run", "--prometheus-url", everySecond)
	require.NoError(t, err)
	assert.Contains(t, out, "step 1/5: canary at 5% for 5s, then analyse the last 5s\n")
	assert.Contains(t, out, "shortest interval and window: 4s, 4 scrapes at the 1s scrape interval of 1 target reporting shop/reviews\n")

	every5s := scrapingPrometheus(t, "5s")
	_, _, err = f.run("run", "reviews", "--interval", "5s", "--prometheus-url", every5s)
	assert.EqualError(t, err, "--interval 5s is too short; Prometheus needs 4 scrapes of each step, give 20s or more (4 scrapes at the 5s scrape interval of 1 target reporting shop/reviews)")
	_, _, err = f.run("run", "reviews", "--interval", "20s", "--window", "10s", "--prometheus-url", every5s)
	assert.EqualError(t, err, "--window 10s is too short; Prometheus needs 4 scrapes in it, give 20s or more (4 scrapes at the 5s scrape interval of 1 target reporting shop/reviews)")

	// Prometheus's targets cannot be read: the default minimum, and why.
	noTargets := queryOnlyPrometheus(t)
	_, _, err = f.run("run", "reviews", "--interval", "5s", "--prometheus-url", noTargets)
	require.Error(t, err)
	assert.Regexp(t, `^--interval 5s is too short; Prometheus needs a few scrapes of each step, give 10s or more \(the default minimum, as the scrape interval is unknown: the targets API of Prometheus at `+regexp.QuoteMeta(noTargets)+` is not readable: .*HTTP 404 for /api/v1/targets.*\)$`, err.Error())
	out, _, err = f.run("run", "reviews", "--interval", "10s", "--dry-run", "--prometheus-url", noTargets)
	require.NoError(t, err)
	assert.Contains(t, out, "shortest interval and window: 10s, the default minimum, as the scrape interval is unknown: the targets API of Prometheus at "+noTargets+" is not readable")

	// A Prometheus that cannot be queried stops the run before anything.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, dryRun := range []string{"--dry-run=none", "--dry-run"} {
		_, _, err = f.run("run", "reviews", "--interval", "10s", dryRun, "--prometheus-url", gone.URL)
		require.Error(t, err, dryRun)
		assert.Regexp(t, `^Prometheus at `+regexp.QuoteMeta(gone.URL)+` cannot be reached \(dial tcp .*connection refused\); check --prometheus-url.*\nNothing was written$`, err.Error())
		assert.Equal(t, exitError, ExitCode(err))
	}

	assert.Empty(t, f.writes(), "refused runs and dry runs write nothing")
}

// queryOnlyPrometheus answers queries (no samples) but has no targets API,
// as a Prometheus behind a proxy that passes only /api/v1/query.
func queryOnlyPrometheus(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// run --dry-run takes client or server like the other verbs: client prints
// the plan alone; server also sends the first step's writes with
// dryRun=All and prints their diff; neither stores anything.
func TestRunDryRunClientAndServer(t *testing.T) {
	t.Setenv("KUBECTL_EXTERNAL_DIFF", "")
	f := newFakeCluster(t, "no-istio", "shop")
	prom := scrapingPrometheus(t, "1s")
	dryRunWrites := func() []string {
		var out []string
		for _, a := range f.dynamic.Actions() {
			if isDryRun(a) {
				out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
			}
		}
		return out
	}
	for _, flag := range []string{"--dry-run", "--dry-run=client"} {
		out, _, err := f.run("run", "reviews", "--interval", "5s", flag, "--prometheus-url", prom)
		require.NoError(t, err, flag)
		assert.Contains(t, out, "would run the canary of shop/reviews: starting the canary at step 1/5 (5%)\n", flag)
		assert.Contains(t, out, "note: Prometheus has no request metrics of shop/reviews yet: each analysis without them is inconclusive and holds the step (up to 3 times), so the run waits for them\n", flag)
		assert.True(t, strings.HasSuffix(out, "(dry run: nothing was written)\n"), "%s:\n%s", flag, out)
		assert.NotContains(t, out, "+++", "%s prints no diff", flag)
		assert.Empty(t, dryRunWrites(), "%s sends nothing", flag)
	}

	out, _, err := f.run("run", "reviews", "--interval", "5s", "--steps", "20,100", "--dry-run=server", "--prometheus-url", prom)
	require.NoError(t, err)
	assert.Equal(t, []string{"create destinationrules", "create virtualservices"}, dryRunWrites(), "the first step is sent as a server dry run")
	assert.Regexp(t, `\+\s+weight: 20\n`, out, "the diff of the first step")
	assert.Contains(t, out, "canary shop/reviews started: canary version=v2 gets 20%, stable version=v1 gets 80% (server dry run)\n")
	assert.Contains(t, out, "would run the canary of shop/reviews: starting the canary at step 1/2 (20%)\n")
	assert.True(t, strings.HasSuffix(out, "(server dry run: the API server accepted the first step; nothing was written)\n"), out)
	assert.Empty(t, f.writes())

	// A canary at 30%: the run would take it over at 50%.
	_, _, err = f.run("start", "reviews", "--weight", "30")
	require.NoError(t, err)
	writes := len(f.writes())
	out, _, err = f.run("run", "reviews", "--interval", "5s", "--steps", "10,50,100", "--dry-run=server", "--prometheus-url", prom)
	require.NoError(t, err)
	assert.Contains(t, out, "canary shop/reviews reweighted: canary version=v2 gets 50%, stable version=v1 gets 50% (server dry run)\n")
	assert.Contains(t, out, "would run the canary of shop/reviews: taking over the running canary (30%) at step 2/3 (50%)\n")
	assert.NotContains(t, out, "step 1/3", "the plan begins where the run would")
	assert.Contains(t, out, "step 2/3: canary at 50% for 5s, then analyse the last 5s\nstep 3/3: canary at 100% for 5s")
	assert.Len(t, f.writes(), writes, "a server dry run stores nothing")

	_, _, err = f.run("run", "reviews", "--dry-run=maybe", "--prometheus-url", prom)
	assert.ErrorContains(t, err, `--dry-run "maybe" is not supported; use "client" or "server"`)
}

// A first step the API server would reject fails the server dry run,
// naming the object, before the plan is printed.
func TestRunServerDryRunReportsARejectedFirstStep(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	f.dynamic.PrependReactor("create", "virtualservices", func(action clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: "networking.istio.io", Kind: "VirtualService"}, "reviews", nil)
	})
	out, _, err := f.run("run", "reviews", "--interval", "5s", "--dry-run=server", "--prometheus-url", scrapingPrometheus(t, "1s"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the API server would reject the create of VirtualService shop/reviews (found by a server dry run; nothing was written)")
	assert.NotContains(t, out, "would start")
	assert.Empty(t, f.writes())
}

// run takes start's version flags for the canary it starts: on Bookinfo's
// three versions it needs --canary, as start does, and its dry run refuses
// without it as the run would; a run that takes over a canary keeps its
// versions and refuses others.
func TestRunTakesStartsVersionFlags(t *testing.T) {
	t.Setenv("KUBECTL_EXTERNAL_DIFF", "")
	f := newFakeCluster(t, "bookinfo-adopted", "bookinfo")
	prom := scrapingPrometheus(t, "1s")
	run := func(args ...string) (string, string, error) {
		return f.run(append([]string{"run", "reviews", "--interval", "5s", "--prometheus-url", prom}, args...)...)
	}
	for _, dryRun := range []string{"--dry-run", "--dry-run=server", "--dry-run=none"} {
		out, _, err := run(dryRun)
		require.Error(t, err, dryRun)
		assert.Contains(t, err.Error(), "pass --canary with one of them", dryRun)
		assert.NotContains(t, out, "starting the canary", "a refused run does not say it starts (%s)", dryRun)
		assert.Equal(t, exitError, ExitCode(err))
	}
	assert.Empty(t, f.writes(), "refused, the run writes nothing")

	out, _, err := run("--canary", "v3", "--dry-run")
	require.NoError(t, err)
	assert.Contains(t, out, "would run the canary of bookinfo/reviews: starting the canary at step 1/5 (5%)\n")
	out, _, err = run("--canary-deployment", "reviews-v3", "--steps", "20,100", "--dry-run=server")
	require.NoError(t, err)
	assert.Contains(t, out, "canary bookinfo/reviews started: canary version=v3 gets 20%")
	assert.Empty(t, f.writes())

	// A canary of v3 runs: run goes on with it, and refuses another one.
	_, _, err = f.run("start", "reviews", "--canary", "v3", "--weight", "30")
	require.NoError(t, err)
	writes := len(f.writes())
	_, _, err = run("--canary", "v2", "--dry-run")
	require.Error(t, err)
	assert.Equal(t, "the canary of service bookinfo/reviews already runs, with other versions: --canary v2, but it runs version=v3; leave these out to go on with it, or promote or abort it first", err.Error())
	_, _, err = run("--canary-deployment", "reviews-v2", "--stable", "v2", "--dry-run")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--stable v2, but its stable version is version=v1; --canary-deployment reviews-v2, which is version=v2, but it runs version=v3")
	out, stderr, err := run("--canary", "v3", "--header", "x-tester=yes", "--dry-run")
	require.NoError(t, err)
	assert.Contains(t, out, "would run the canary of bookinfo/reviews: taking over the running canary (30%) at step 4/5 (50%)\n")
	assert.Contains(t, stderr, "Warning: the canary of bookinfo/reviews already runs (v3 at 30%): --header shape a canary that run starts and leave this one's routing as it is")
	assert.Len(t, f.writes(), writes)
}

// A run started with --canary steps that canary to promotion.
func TestRunWithCanaryPromotesIt(t *testing.T) {
	f := newFakeCluster(t, "bookinfo-adopted", "bookinfo")
	out, _, err := f.run("run", "reviews", "--canary", "v3", "--steps", "100", "--interval", "2s", "--ignore-split-mismatch", "--prometheus-url", judgingPrometheus(t, promFigures{canaryRequests: 100, canarySuccess: 1}))
	require.NoError(t, err, out)
	assert.Contains(t, out, "starting the canary at step 1/1 (100%)\n")
	assert.Contains(t, out, "canary bookinfo/reviews promoted: version=v3 is stable")
}

// After a promote, run, like start, does not canary the retired version
// unasked: it asks for --canary, which it takes.
func TestRunAfterAPromoteAsksForTheCanary(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	prom := scrapingPrometheus(t, "1s")
	for _, args := range [][]string{{"start", "reviews"}, {"promote", "reviews"}} {
		_, _, err := f.run(args...)
		require.NoError(t, err)
	}
	writes := len(f.writes())
	_, _, err := f.run("run", "reviews", "--interval", "5s", "--prometheus-url", prom)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "was promoted at")
	assert.Contains(t, err.Error(), "pass --canary v1")
	assert.Len(t, f.writes(), writes, "a refused run writes nothing")
	out, _, err := f.run("run", "reviews", "--canary", "v1", "--interval", "5s", "--dry-run", "--prometheus-url", prom)
	require.NoError(t, err)
	assert.Contains(t, out, "would run the canary of shop/reviews: starting the canary at step 1/5 (5%)\n")
}
