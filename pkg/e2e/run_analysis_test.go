//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runState is the run part of the state annotation.
type runState struct {
	Steps        []int
	Step         int
	Inconclusive int
	LastVerdict  string
	LastReason   string
}

func runStateOf(t *testing.T, c *cluster, ns string) (canaryState, *runState) {
	t.Helper()
	vs := c.get(t, vsV1, ns, "reviews")
	var st struct {
		Run *runState `json:"run"`
	}
	require.NoError(t, json.Unmarshal([]byte(vs.GetAnnotations()["kubectl-canary.io/reviews"]), &st))
	return stateOf(t, vs, "reviews"), st.Run
}

// kubectl canary run steps the weight, analyses each step in a real
// Prometheus (scraping an exporter of Istio-format metrics), and promotes,
// aborts, holds or resumes.
func TestRunGatedByRealPrometheus(t *testing.T) {
	t.Parallel()
	c := shared
	exporter := startIstioExporter(t)
	prom := startPrometheus(t, exporter.URL)
	flags := []string{"--steps", "20,50,100", "--interval", "10s", "--min-requests", "20", "--prometheus-url", prom}
	// service sends reviews 100 requests a second, split by the live
	// weight as a mesh would, or (quiet canary) only to v1.
	service := func(t *testing.T, quietCanary bool) (string, *meshTraffic) {
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		if quietCanary {
			exporter.set(workloadTraffic{Namespace: ns, Service: "reviews", Version: "v1", Workload: "reviews-v1", RPS: 90, LatencyMs: 20})
			return ns, nil
		}
		return ns, sendTraffic(t, c, exporter, ns, meshClient(100))
	}

	t.Run("healthy canary is promoted through every step", func(t *testing.T) {
		t.Parallel()
		ns, _ := service(t, false)
		r := c.canary(t, nil, append([]string{"run", "reviews", "-n", ns}, flags...)...)
		require.NoError(t, r.err, "%s", r)
		for _, line := range []string{"starting the canary at step 1/3 (20%)", "step 1/3 (20%): pass", "step 2/3 (50%): pass", "step 3/3 (100%): pass", "canary " + ns + "/reviews promoted"} {
			assert.Contains(t, r.stdout, line)
		}
		// Each step's split is measured on its own weight's traffic.
		for _, share := range []string{`(19|20|21)\.\d`, `(49|50|51)\.\d`, `(99\.\d|100\.0)`} {
			assert.Regexp(t, `: pass: .*canary share `+share+`% of \d+ \(matches\)`, r.stdout)
		}
		st, run := runStateOf(t, c, ns)
		assert.Equal(t, "Promoted", st.Phase)
		assert.Equal(t, "v2", st.Stable)
		require.NotNil(t, run)
		assert.Equal(t, 2, run.Step)
		assert.Equal(t, "pass", run.LastVerdict)
	})

	t.Run("rising errors abort at the step where they rise", func(t *testing.T) {
		t.Parallel()
		ns, traffic := service(t, false)
		// The canary starts failing as soon as it gets 50%.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			for ctx.Err() == nil {
				if vs, err := c.dyn.Resource(vsV1).Namespace(ns).Get(ctx, "reviews", metav1.GetOptions{}); err == nil && weightOf(vs.Object, "v2") == 50 {
					traffic.setHealth("v2", versionHealth{ErrorShare: 0.3, LatencyMs: 20})
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
		r := c.canary(t, nil, append([]string{"run", "reviews", "-n", ns}, flags...)...)
		require.Error(t, r.err, "%s", r)
		assert.Equal(t, 3, exitCode(r), "fail: %s", r)
		assert.Contains(t, r.stdout, "step 1/3 (20%): pass")
		assert.Contains(t, r.stderr, "failed its analysis at step 2/3 (50%) on error-rate and was aborted")
		st, run := runStateOf(t, c, ns)
		assert.Equal(t, "Aborted", st.Phase)
		assert.Equal(t, map[string]int64{"v1": 100}, weights(t, c.get(t, vsV1, ns, "reviews"), "http", 0), "all traffic back on stable")
		require.NotNil(t, run)
		assert.Equal(t, 1, run.Step)
		assert.Equal(t, "fail", run.LastVerdict)
	})

	t.Run("canary without traffic holds as inconclusive", func(t *testing.T) {
		t.Parallel()
		ns, _ := service(t, true)
		r := c.canary(t, nil, append([]string{"run", "reviews", "-n", ns, "--max-inconclusive", "1"}, flags...)...)
		require.Error(t, r.err, "%s", r)
		assert.Equal(t, 2, exitCode(r), "%s", r)
		assert.Contains(t, r.stderr, "stays at step 1/3 (20%) after 2 inconclusive analyses")
		st, run := runStateOf(t, c, ns)
		assert.Equal(t, "Progressing", st.Phase)
		assert.Equal(t, 20, st.Weight, "held at the first step")
		require.NotNil(t, run)
		assert.Equal(t, 0, run.Step)
		assert.Equal(t, 2, run.Inconclusive)
		assert.Equal(t, "inconclusive", run.LastVerdict)

		// status shows the run: its step and last verdict.
		var status struct {
			Run *runState `json:"run"`
		}
		require.NoError(t, json.Unmarshal([]byte(c.mustCanary(t, "status", "reviews", "-n", ns, "-o", "json")), &status))
		require.NotNil(t, status.Run)
		assert.Equal(t, []int{20, 50, 100}, status.Run.Steps)
		assert.Contains(t, status.Run.LastReason, "fewer than the 20 needed")
		assert.Contains(t, c.mustCanary(t, "status", "reviews", "-n", ns), "run step 1/3, last inconclusive")
	})

	t.Run("interrupted run resumes from its step", func(t *testing.T) {
		t.Parallel()
		ns, _ := service(t, false)
		cmd := exec.Command("kubectl", append([]string{"canary", "run", "reviews", "-n", ns}, flags...)...)
		cmd.Env = c.commandEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Start())
		// Interrupt during the wait of step 2.
		deadline := time.Now().Add(time.Minute)
		for {
			vs, err := c.dyn.Resource(vsV1).Namespace(ns).Get(context.Background(), "reviews", metav1.GetOptions{})
			if err == nil && weightOf(vs.Object, "v2") == 50 {
				break
			}
			require.True(t, time.Now().Before(deadline), "run never reached step 2:\n%s%s", stdout.String(), stderr.String())
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		err := cmd.Wait()
		require.Error(t, err, "%s", stdout.String())
		assert.Contains(t, stderr.String(), "interrupted at step 2/3 with the canary at 50%; it stays there")
		st, run := runStateOf(t, c, ns)
		assert.Equal(t, "Progressing", st.Phase)
		assert.Equal(t, 50, st.Weight)
		require.NotNil(t, run)
		assert.Equal(t, 1, run.Step)

		r := c.canary(t, nil, append([]string{"run", "reviews", "-n", ns}, flags...)...)
		require.NoError(t, r.err, "%s", r)
		assert.Contains(t, r.stdout, "resuming at step 2/3 (50%)")
		assert.NotContains(t, r.stdout, "step 1/3")
		assert.Contains(t, r.stdout, "promoted")
		st, _ = runStateOf(t, c, ns)
		assert.Equal(t, "Promoted", st.Phase)
	})

	t.Run("dry run writes nothing", func(t *testing.T) {
		t.Parallel()
		ns, _ := service(t, false)
		for _, mode := range dryRunModes {
			out := c.mustCanary(t, append([]string{"run", "reviews", "-n", ns, mode.flag}, flags...)...)
			assert.Contains(t, out, "would run the canary of "+ns+"/reviews: starting the canary at step 1/3 (20%)", mode.flag)
			assert.Contains(t, out, "step 3/3: canary at 100% for 10s", mode.flag)
			assert.Empty(t, c.versionsOf(t, ns), "run %s wrote", mode.flag)
		}
		// The server dry run alone sent the first step, with dryRun=All,
		// and printed its diff.
		var sent []string
		for _, e := range c.audit(t, ns) {
			if e.ObjectRef.APIGroup == "networking.istio.io" && (e.Verb == "create" || e.Verb == "update") {
				uri, err := url.Parse(e.RequestURI)
				require.NoError(t, err)
				sent = append(sent, e.Verb+" "+e.ObjectRef.Resource+" dryRun="+uri.Query().Get("dryRun"))
			}
		}
		assert.ElementsMatch(t, []string{"create destinationrules dryRun=All", "create virtualservices dryRun=All"}, sent)
		out := c.mustCanary(t, append([]string{"run", "reviews", "-n", ns, "--dry-run=server"}, flags...)...)
		vs := diffFor(t, parseDiff(t, out), "VirtualService", ns, "reviews")
		assert.Contains(t, vs.Added, "      weight: 20", "run --dry-run=server:\n%s", out)
		assert.Contains(t, out, "canary "+ns+"/reviews started: canary version=v2 gets 20%, stable version=v1 gets 80% (server dry run)")
		assert.Contains(t, out, "(server dry run: the API server accepted the first step; nothing was written)")
		assert.Empty(t, c.versionsOf(t, ns))
	})
}

func weightOf(obj map[string]interface{}, subset string) int64 {
	spec, _ := obj["spec"].(map[string]interface{})
	routes, _ := spec["http"].([]interface{})
	for _, r := range routes {
		dests, _ := r.(map[string]interface{})["route"].([]interface{})
		for _, d := range dests {
			dm, _ := d.(map[string]interface{})
			dest, _ := dm["destination"].(map[string]interface{})
			if dest["subset"] == subset {
				switch w := dm["weight"].(type) {
				case int64:
					return w
				case float64:
					return int64(w)
				}
			}
		}
	}
	return -1
}
