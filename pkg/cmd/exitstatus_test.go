package cmd

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
)

// README.md shows the exit status table generated from exitStatuses, and
// the help of analyze, run and check prints it: one table, said once.
func TestExitStatusTableIsTheSameEverywhere(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(readme), exitStatusMarkdown()), "README.md's exit status table differs from exitStatuses; it must hold:\n%s", exitStatusMarkdown())
	for _, old := range []string{"fail (exit 1)", "exits 1 naming", "1 fail (or an error)", "on \"fail\" (exit 1)", "exits non-zero on errors"} {
		assert.False(t, strings.Contains(string(readme), old), "README.md still gives the old exit status: %q", old)
	}
	f := newFakeCluster(t, "no-istio", "shop")
	for _, verb := range []string{"analyze", "run", "check"} {
		help, _, err := f.run(verb, "--help")
		require.NoError(t, err)
		assert.Contains(t, help, exitStatusHelp(), verb)
	}
	codes := map[int]bool{}
	for _, s := range exitStatuses {
		assert.False(t, codes[s.Code], "status %d twice", s.Code)
		codes[s.Code] = true
	}
}

// promFigures are what judgingPrometheus answers about the canary (v2);
// stable (v1) answers 900 requests, all of them well.
type promFigures struct {
	noSeries       bool
	canaryRequests float64
	canarySuccess  float64
}

// judgingPrometheus is a fake Prometheus that answers the analysis queries
// for shop/reviews, scraped every 500ms (so a run step may be 2s).
func judgingPrometheus(t *testing.T, fig promFigures) string {
	t.Helper()
	sample := func(labels string, v float64) string {
		return fmt.Sprintf(`{"metric":{%s},"value":[1700000000,"%g"]}`, labels, v)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/targets":
			fmt.Fprint(w, `{"status":"success","data":{"activeTargets":[{"labels":{"job":"istio-sidecars","instance":"10.244.0.5:15020"},"scrapeInterval":"500ms","health":"up"}]}}`)
			return
		case "/api/v1/query":
		default:
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		q := r.Form.Get("query")
		canaryQuery := strings.Contains(q, `destination_version="v2"`)
		requests, success := 900.0, 1.0
		if canaryQuery {
			requests, success = fig.canaryRequests, fig.canarySuccess
		}
		var result []string
		switch {
		case strings.HasPrefix(q, "count by (job, instance)"):
			result = []string{sample(`"job":"istio-sidecars","instance":"10.244.0.5:15020"`, 1)}
		case strings.HasPrefix(q, "count by (destination_version, destination_workload)"):
			if !fig.noSeries {
				result = []string{sample(`"destination_version":"v1","destination_workload":"reviews-v1"`, 1), sample(`"destination_version":"v2","destination_workload":"reviews-v2"`, 1)}
			}
		case strings.HasPrefix(q, "sum by (destination_version, source_workload"):
			result = []string{sample(`"destination_version":"v1","source_workload":"productpage-v1","source_workload_namespace":"shop"`, 900),
				sample(`"destination_version":"v2","source_workload":"productpage-v1","source_workload_namespace":"shop"`, fig.canaryRequests)}
		case strings.HasPrefix(q, "sum by (source_workload"):
			result = []string{sample(`"source_workload":"productpage-v1","source_workload_namespace":"shop"`, 900+fig.canaryRequests)}
		case strings.HasPrefix(q, "sum(increase("):
			result = []string{sample("", requests)}
		case strings.HasPrefix(q, "sum(rate(") && strings.Contains(q, "response_code!~"):
			result = []string{sample("", success)}
		case strings.HasPrefix(q, "sum(rate("):
			result = []string{sample("", requests/60)}
		case strings.HasPrefix(q, "histogram_quantile("):
			result = []string{sample("", 20)}
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[%s]}}`, strings.Join(result, ","))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// brokenPrometheus answers every request as a broken Prometheus would.
func brokenPrometheus(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

var (
	notFound   = func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }
	needsLogin = func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "Unauthorized", http.StatusUnauthorized) }
	htmlPage   = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>Grafana</body></html>")
	}
	tooSlow          = func(w http.ResponseWriter, r *http.Request) { time.Sleep(2 * time.Second) }
	closedPrometheus = func(t *testing.T) string {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		return srv.URL
	}
)

// Every exit status of analyze, run and check, from the verdicts to each
// class of error: a pipeline can tell them apart.
func TestExitStatuses(t *testing.T) {
	healthy := promFigures{canaryRequests: 100, canarySuccess: 1}
	type tc struct {
		args []string
		// prometheus is the --prometheus-url, given when set.
		prometheus func(t *testing.T) string
		// started: a canary runs before the command.
		started bool
		status  int
		says    string
	}
	judging := func(fig promFigures) func(*testing.T) string {
		return func(t *testing.T) string { return judgingPrometheus(t, fig) }
	}
	broken := func(h http.HandlerFunc) func(*testing.T) string {
		return func(t *testing.T) string { return brokenPrometheus(t, h) }
	}
	analyze := []string{"analyze", "reviews", "--window", "1m"}
	run := []string{"run", "reviews", "--steps", "100", "--interval", "2s", "--ignore-split-mismatch"}
	cases := map[string]tc{
		"analyze pass":                 {args: analyze, prometheus: judging(healthy), started: true, status: exitOK},
		"analyze fail":                 {args: analyze, prometheus: judging(promFigures{canaryRequests: 100, canarySuccess: 0.5}), started: true, status: exitFail, says: "fail: canary error rate 50.00% is above --max-error-rate 1.00%"},
		"analyze inconclusive":         {args: analyze, prometheus: judging(promFigures{canaryRequests: 5, canarySuccess: 1}), started: true, status: exitInconclusive, says: "fewer than the 20 needed"},
		"analyze no metrics":           {args: analyze, prometheus: judging(promFigures{noSeries: true}), started: true, status: exitInconclusive, says: "inconclusive: no Istio request metrics for service shop/reviews"},
		"analyze bad flag value":       {args: []string{"analyze", "reviews", "--window", "0s"}, status: exitError, says: "--window 0s is not a duration"},
		"analyze unknown flag":         {args: []string{"analyze", "reviews", "--canary", "v2"}, status: exitError, says: "unknown flag: --canary"},
		"analyze unknown Service":      {args: []string{"analyze", "nosuch", "--prometheus-url", "http://127.0.0.1:1"}, status: exitError, says: "nosuch"},
		"analyze no canary":            {args: analyze, prometheus: judging(healthy), status: exitError, says: "no canary"},
		"analyze Prometheus 404":       {args: analyze, prometheus: broken(notFound), started: true, status: exitError, says: "has no Prometheus API: nothing at this path (HTTP 404 for /api/v1/query: 404 page not found); --prometheus-url must be Prometheus's base address"},
		"analyze Prometheus 401":       {args: analyze, prometheus: broken(needsLogin), started: true, status: exitError, says: "asks for credentials (HTTP 401 for /api/v1/query: Unauthorized); give the credentials in --prometheus-url"},
		"analyze Prometheus timeout":   {args: analyze, prometheus: broken(tooSlow), started: true, status: exitError, says: "did not answer within 300ms; allow more time per request with --request-timeout"},
		"analyze Prometheus HTML":      {args: analyze, prometheus: broken(htmlPage), started: true, status: exitError, says: "answered, but not as Prometheus's HTTP API (HTTP 200 for /api/v1/query: text/html, <html><body>Grafana</body></html>); --prometheus-url must be"},
		"analyze Prometheus gone":      {args: analyze, prometheus: closedPrometheus, started: true, status: exitError, says: "cannot be reached (dial tcp"},
		"run promoted":                 {args: run, prometheus: judging(healthy), status: exitOK},
		"run failed and aborted":       {args: run, prometheus: judging(promFigures{canaryRequests: 100, canarySuccess: 0.5}), status: exitFail, says: "failed its analysis at step 1/1 (100%) on error-rate and was aborted"},
		"run held too long":            {args: append(run, "--max-inconclusive", "0"), prometheus: judging(promFigures{canaryRequests: 5, canarySuccess: 1}), status: exitInconclusive, says: "stays at step 1/1 (100%) after 1 inconclusive analyses"},
		"run no metrics":               {args: append(run, "--max-inconclusive", "0"), prometheus: judging(promFigures{noSeries: true}), status: exitInconclusive, says: "no Istio request metrics"},
		"run bad flag value":           {args: []string{"run", "reviews", "--steps", "50,10"}, status: exitError, says: "must increase"},
		"run unknown Service":          {args: []string{"run", "nosuch", "--prometheus-url", "http://127.0.0.1:1"}, status: exitError, says: "nosuch"},
		"run Prometheus 404":           {args: run, prometheus: broken(notFound), status: exitError, says: "HTTP 404 for /api/v1/query"},
		"run Prometheus 401":           {args: run, prometheus: broken(needsLogin), status: exitError, says: "asks for credentials"},
		"run Prometheus timeout":       {args: run, prometheus: broken(tooSlow), status: exitError, says: "did not answer within 300ms"},
		"run Prometheus HTML":          {args: run, prometheus: broken(htmlPage), status: exitError, says: "not as Prometheus's HTTP API"},
		"run Prometheus gone":          {args: run, prometheus: closedPrometheus, status: exitError, says: "cannot be reached"},
		"check ready":                  {args: []string{"check", "reviews"}, status: exitOK},
		"check finds an error":         {args: []string{"check", "reviews", "--version-label", "nosuch"}, status: exitFail, says: "error(s) found"},
		"check unknown flag":           {args: []string{"check", "reviews", "--weight", "20"}, status: exitError, says: "unknown flag: --weight"},
		"check unknown Service":        {args: []string{"check", "nosuch"}, status: exitError, says: "nosuch"},
		"check bad flags together":     {args: []string{"check", "reviews", "--local"}, status: exitError, says: "--local"},
		"analyze verdict across a run": {args: analyze, prometheus: judging(healthy), status: exitError, says: "no canary"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeCluster(t, "no-istio", "shop")
			f.prometheusTimeout = 300 * time.Millisecond
			if c.started {
				_, _, err := f.run("start", "reviews")
				require.NoError(t, err)
			}
			args := c.args
			if c.prometheus != nil {
				args = append(append([]string{}, args...), "--prometheus-url", c.prometheus(t))
			}
			writes := len(f.writes())
			out, _, err := f.run(args...)
			if c.status == exitInconclusive && args[0] == "analyze" {
				assert.Regexp(t, `(?s)\nverdict: inconclusive: .*\(last 1m0s(, versions by destination_version)?\)\n$`, out)
			}
			if c.status == exitOK {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, c.status, ExitCode(err), "%v", err)
			assert.Contains(t, err.Error(), c.says)
			if c.status == exitError && args[0] == "run" {
				assert.Len(t, f.writes(), writes, "a run that cannot begin writes nothing")
			}
		})
	}
}

// Prometheus reached through the API server's proxy: the proxy's own
// answers (no such Service, no endpoints, not allowed) each say what is
// wrong and which flag fixes it.
func TestProxiedPrometheusFailuresAreExplained(t *testing.T) {
	status := func(code int, reason, message string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`, message, reason, code)
		}
	}
	for name, c := range map[string]struct {
		handler http.HandlerFunc
		says    string
	}{
		"no such Service": {status(404, "NotFound", `services "prometheus" not found`),
			`Prometheus at service istio-system/prometheus:9090 (through the API server's proxy) does not exist: the API server has no service istio-system/prometheus (HTTP 404 for /api/v1/query: services "prometheus" not found); give the namespace and name of Prometheus's Service with --prometheus-namespace and --prometheus-service`},
		"no endpoints": {status(503, "ServiceUnavailable", `no endpoints available for service "prometheus"`),
			`is not answering: the API server found no ready endpoint of service istio-system/prometheus on port 9090, or could not reach it (HTTP 503 for /api/v1/query: no endpoints available for service "prometheus"); check that Prometheus's pods are ready (kubectl get pods -n istio-system) and that --prometheus-port 9090 is`},
		"not allowed": {status(403, "Forbidden", `services "prometheus:9090" is forbidden: User "jane" cannot get resource "services/proxy"`),
			`is out of reach: the API server does not allow you to get services/proxy in namespace istio-system (HTTP 403 for /api/v1/query: services "prometheus:9090" is forbidden: User "jane" cannot get resource "services/proxy"); ask for get on services/proxy in namespace istio-system`},
		"credentials refused": {status(401, "Unauthorized", "Unauthorized"), "is behind an API server that refused the kubeconfig's credentials (HTTP 401 for /api/v1/query: Unauthorized); the kubeconfig's credentials were refused"},
		"another port":        {htmlPage, "answered, but not as Prometheus's HTTP API (HTTP 200 for /api/v1/query: text/html, <html><body>Grafana</body></html>); give the port of Prometheus's HTTP API with --prometheus-port"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			prom, err := canary.ProxiedPrometheus(srv.URL, srv.Client(), canary.PrometheusAt{Namespace: "istio-system", Service: "prometheus", Port: 9090, Fix: prometheusFix})
			require.NoError(t, err)
			_, err = prom.HasSeries(context.Background(), analysis.Target{Namespace: "shop", Service: "reviews"}, time.Now())
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.says)
			assert.Equal(t, exitError, ExitCode(err))
		})
	}
}
