package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
)

// runOnContexts runs `kubectl canary ARGS` with a context per fake cluster.
func runOnContexts(clusters map[string]*fakeCluster, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	g := &globalOptions{conn: canary.ConnectWith(clusters["east"]), syncReadTooSoon: fakeSyncReadTooSoon, IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}}
	g.contextConnections = func(contexts []string, all bool) ([]canary.ContextConnection, error) {
		var conns []canary.ContextConnection
		for _, name := range contexts {
			conns = append(conns, canary.ContextConnection{Context: name, Connection: canary.ConnectWith(clusters[name])})
		}
		return conns, nil
	}
	cmd := newCmdCanary(g)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestContextsReportEachClusterAndGroupObjects(t *testing.T) {
	clusters := map[string]*fakeCluster{"east": newFakeCluster(t, "no-istio", "shop"), "west": newFakeCluster(t, "no-istio", "shop")}
	out, stderr, err := runOnContexts(clusters, "start", "reviews", "--contexts", "east,west")
	require.NoError(t, err, stderr)
	for _, name := range []string{"east", "west"} {
		assert.Contains(t, out, "["+name+"] virtualservice.networking.istio.io/reviews created\n")
		assert.Contains(t, out, "["+name+"] canary shop/reviews started: canary version=v2 gets 10%")
		assert.Equal(t, []int64{90, 10}, weightsOf(t, clusters[name].get(vsGVR, "reviews"), "http", 0), name)
	}

	out, stderr, err = runOnContexts(clusters, "weight", "reviews", "30", "--contexts", "east,west", "-o", "json")
	require.NoError(t, err, stderr)
	var grouped struct {
		Clusters []struct {
			Context string
			Objects []map[string]any
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &grouped), out)
	require.Len(t, grouped.Clusters, 2)
	for _, c := range grouped.Clusters {
		assert.NotEmpty(t, c.Objects, c.Context)
	}

	out, _, err = runOnContexts(clusters, "status", "--contexts", "east,west")
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, rows, 3, out)
	assert.Regexp(t, `^CLUSTER\s+SERVICE`, rows[0])
	assert.Regexp(t, `^east\s+reviews\s+v1\s+v2\s+30%`, rows[1])
}

// istiodPod registers an istiod in the fake cluster, with CLUSTER_ID in
// its environment unless id is empty.
func istiodPod(t *testing.T, f *fakeCluster, id string) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "istiod-1", Namespace: "istio-system", Labels: map[string]string{"app": "istiod"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "discovery"}}}}
	if id != "" {
		pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "CLUSTER_ID", Value: id}}
	}
	_, err := f.core.CoreV1().Pods("istio-system").Create(context.Background(), pod, metav1.CreateOptions{})
	require.NoError(t, err)
}

// queryRecorder is a Prometheus with no samples that records the queries.
func queryRecorder(t *testing.T) (url string, queries func() []string) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		got = append(got, r.Form.Get("query"))
		mu.Unlock()
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// With one Prometheus of the whole mesh, each cluster is judged on the
// requests its workloads answered, by its istiod's cluster ID; clusters
// that cannot be told apart are refused before any query.
func TestContextsOnePrometheusTellsClustersApartByIstioClusterID(t *testing.T) {
	clusters := map[string]*fakeCluster{"east": newFakeCluster(t, "no-istio", "shop"), "west": newFakeCluster(t, "no-istio", "shop")}
	_, stderr, err := runOnContexts(clusters, "start", "reviews", "--contexts", "east,west")
	require.NoError(t, err, stderr)
	prom, queries := queryRecorder(t)
	analyze := []string{"analyze", "reviews", "--contexts", "east,west", "--prometheus-url", prom}

	_, _, err = runOnContexts(clusters, analyze...)
	assert.ErrorContains(t, err, "cluster east: cannot read the Istio cluster ID that tells its requests apart in Prometheus at "+prom+": no istiod pod (label app=istiod) in namespace istio-system; grant list on pods in istio-system, or leave out --prometheus-url")
	istiodPod(t, clusters["east"], "")
	istiodPod(t, clusters["west"], "")
	_, _, err = runOnContexts(clusters, analyze...)
	assert.ErrorContains(t, err, `clusters east and west have the same Istio cluster ID "Kubernetes", so Prometheus at `+prom+` cannot tell their requests apart (label destination_cluster)`)
	assert.Empty(t, queries(), "refused before any query")

	require.NoError(t, clusters["west"].core.CoreV1().Pods("istio-system").Delete(context.Background(), "istiod-1", metav1.DeleteOptions{}))
	istiodPod(t, clusters["west"], "cluster-west")
	_, _, err = runOnContexts(clusters, analyze...)
	require.Error(t, err, "no samples")
	var east, west bool
	for _, q := range queries() {
		east = east || strings.Contains(q, `destination_service_name="reviews",destination_cluster="Kubernetes"`)
		west = west || strings.Contains(q, `destination_service_name="reviews",destination_cluster="cluster-west"`)
	}
	assert.True(t, east && west, "each cluster's queries keep to its requests: %q", queries())
}

// run --contexts --dry-run prints one plan for every cluster and writes
// nothing anywhere.
func TestContextsRunDryRunPlansEveryCluster(t *testing.T) {
	clusters := map[string]*fakeCluster{"east": newFakeCluster(t, "no-istio", "shop"), "west": newFakeCluster(t, "no-istio", "shop")}
	istiodPod(t, clusters["east"], "cluster-east")
	istiodPod(t, clusters["west"], "cluster-west")
	out, stderr, err := runOnContexts(clusters, "run", "reviews", "--contexts", "east,west", "--interval", "5s", "--dry-run", "--prometheus-url", scrapingPrometheus(t, "1s"))
	require.NoError(t, err, stderr)
	assert.Contains(t, out, "would run the canary of shop/reviews: starting the canary at step 1/5 (5%)\n")
	assert.Contains(t, out, "note: Prometheus in east, west has no request metrics of shop/reviews yet")
	assert.Contains(t, out, `in the clusters east (destination_cluster="cluster-east"), west (destination_cluster="cluster-west"), each step in all of them; each is judged on its own requests, and the worst verdict decides`+"\n")
	assert.True(t, strings.HasSuffix(out, "(dry run: nothing was written)\n"), out)
	for name, f := range clusters {
		assert.Empty(t, f.writes(), name)
	}
}
