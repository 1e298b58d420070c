//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// otherWriterPause is how long the other writer waits between its updates.
// Much less and the plugin can lose every one of its bounded retries; much
// more and the race rarely happens.
const otherWriterPause = 50 * time.Millisecond

// TestConflictingWriter: while another client keeps updating the
// VirtualService (an annotation and the timeout of a route the plugin does
// not own), `kubectl canary weight` runs again and again. The plugin's
// updates conflict, it re-reads and re-plans, and in the end both the other
// writer's last change and the plugin's last weight are in the object.
func TestConflictingWriter(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	// The other writer changes the timeout of the jason route.
	c.create(t, ns, yamlStream(
		virtualService("reviews", httpRoutes(jasonRoute+"timeout: 1s\n", defaultRoute("v1"))),
		reviewsDestinationRule("v1", "v2"),
	))
	c.mustCanary(t, "start", "reviews", "-n", ns)

	w := startOtherWriter(t, c, ns, "reviews")
	// Until the audit log shows that the plugin lost a race at least once
	// (bounded: how often a run meets the other writer depends on how fast
	// the plugin is between its read and its write, a few milliseconds).
	weight, runs, conflicts := 0, 0, 0
	for runs < 150 && conflicts == 0 {
		runs++
		weight = 1 + runs%99
		c.mustCanary(t, "weight", "reviews", strconv.Itoa(weight), "-n", ns)
		conflicts = pluginConflicts(t, c, ns)
	}
	last := w.stop(t)
	t.Logf("%d weight runs, %d conflicting plugin updates, the other writer made %d updates", runs, conflicts, last)
	require.Greater(t, conflicts, 0, "the plugin never met the other writer; the test proved nothing")
	require.Greater(t, last, 0, "the other writer never wrote")

	vs := c.get(t, vsV1, ns, "reviews")
	assert.Equal(t, strconv.Itoa(last), vs.GetAnnotations()["other.tool/tick"], "the other writer's last annotation was lost")
	timeout, _, _ := unstructured.NestedString(route(t, vs, "http", 0), "timeout")
	assert.Equal(t, tickTimeout(last), timeout, "the other writer's last route change was lost")
	assert.Equal(t, map[string]int64{"v1": int64(100 - weight), "v2": int64(weight)}, weights(t, vs, "http", 1), "the plugin's last weight was lost")
	assert.Equal(t, weight, stateOf(t, vs, "reviews").Weight)
}

// otherWriter keeps updating a VirtualService the way another tool would:
// read, change, update with the resourceVersion read, again on conflict.
type otherWriter struct {
	done chan struct{}
	wg   sync.WaitGroup
	last int   // the tick of the last update that succeeded
	err  error // an error other than a conflict
}

func startOtherWriter(t *testing.T, c *cluster, ns, name string) *otherWriter {
	w := &otherWriter{done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		// Requests are never cancelled half-way, so that last is exact.
		ctx := context.Background()
		client := c.dyn.Resource(vsV1).Namespace(ns)
		for tick := 1; !w.stopped(); time.Sleep(otherWriterPause) {
			vs, err := client.Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				annotations := vs.GetAnnotations()
				annotations["other.tool/tick"] = strconv.Itoa(tick)
				vs.SetAnnotations(annotations)
				routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
				routes[0].(map[string]interface{})["timeout"] = tickTimeout(tick)
				err = unstructured.SetNestedSlice(vs.Object, routes, "spec", "http")
			}
			if err == nil {
				_, err = client.Update(ctx, vs, metav1.UpdateOptions{})
			}
			switch {
			case err == nil:
				w.last = tick
				tick++
			case apierrors.IsConflict(err):
			default:
				w.err = err
				return
			}
		}
	}()
	t.Cleanup(func() { w.stop(t) })
	return w
}

func (w *otherWriter) stopped() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// stop ends the writer and returns the tick of its last successful update.
func (w *otherWriter) stop(t *testing.T) int {
	t.Helper()
	if !w.stopped() {
		close(w.done)
	}
	w.wg.Wait()
	require.NoError(t, w.err, "the other writer failed")
	return w.last
}

func tickTimeout(tick int) string { return fmt.Sprintf("%dms", 1000+tick) }

// pluginConflicts counts the plugin's updates in ns that the API server
// refused with 409 Conflict.
func pluginConflicts(t *testing.T, c *cluster, ns string) int {
	n := 0
	for _, e := range c.audit(t, ns) {
		if strings.HasPrefix(e.UserAgent, "kubectl-canary") && e.Verb == "update" && e.ResponseStatus.Code == 409 {
			n++
		}
	}
	return n
}

// TestManagedRoutePointedElsewhere: someone sent the canary's managed route
// to another subset while it ran. weight, promote and abort refuse, name the
// VirtualService and the route and say what to do, and write nothing.
func TestManagedRoutePointedElsewhere(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.mustCanary(t, "start", "reviews", "-n", ns)
	c.kubectl(t, "", "patch", "virtualservice", "reviews", "-n", ns, "--type=json",
		"-p", `[{"op":"replace","path":"/spec/http/0/route","value":[{"destination":{"host":"reviews","subset":"legacy"}}]}]`)
	rv := c.get(t, vsV1, ns, "reviews").GetResourceVersion()
	drRV := c.get(t, drV1, ns, "reviews").GetResourceVersion()

	for _, args := range [][]string{{"weight", "reviews", "50"}, {"promote", "reviews"}, {"abort", "reviews"}} {
		r := c.failCanary(t, append(args, "-n", ns)...)
		if args[0] == "abort" {
			assert.Contains(t, r.stderr, "sends no traffic to subset v1 or v2 any more in VirtualService "+ns+"/reviews", "%v", args)
		} else {
			// weight and promote find the drift before they plan (drift.go).
			assert.Contains(t, r.stderr, "VirtualService "+ns+"/reviews http route #0: recorded v1 90 / v2 10, live sends subset legacy 100 (no longer the canary's versions)", "%v", args)
		}
		assert.Contains(t, r.stderr, "kubectl edit virtualservice reviews -n "+ns, "%v must say how to get out", args)
		assert.NotContains(t, r.stderr, "panic", "%v", args)
		assert.Equal(t, rv, c.get(t, vsV1, ns, "reviews").GetResourceVersion(), "%v wrote the VirtualService", args)
		assert.Equal(t, drRV, c.get(t, drV1, ns, "reviews").GetResourceVersion(), "%v wrote the DestinationRule", args)
	}

	// Pointed back by hand, as the error says, the canary goes on.
	c.kubectl(t, "", "patch", "virtualservice", "reviews", "-n", ns, "--type=json",
		"-p", `[{"op":"replace","path":"/spec/http/0/route","value":[{"destination":{"host":"reviews","subset":"v1"}}]}]`)
	c.mustCanary(t, "weight", "reviews", "50", "-n", ns)
	assert.Equal(t, map[string]int64{"v1": 50, "v2": 50}, weights(t, c.get(t, vsV1, ns, "reviews"), "http", 0))
}
