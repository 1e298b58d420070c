//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// faultFlow is one command whose writes the tests below interrupt: setUp
// makes a fresh namespace ready for it (objects, and the commands before it).
type faultFlow struct {
	name    string
	setUp   func(t *testing.T, c *cluster, ns string)
	command []string // kubectl canary ARGS, without -n
	// subsetsFirst: every DestinationRule write comes before every
	// VirtualService write (start adds subsets, then routes to them);
	// otherwise the other way round (promote and abort move traffic, then
	// prune subsets).
	subsetsFirst bool
}

func setUpFresh(t *testing.T, c *cluster, ns string) { c.deployVersions(t, ns, "reviews", "v1", "v2") }

// after is setUp followed by the commands args (each without -n).
func after(setUp func(*testing.T, *cluster, string), args ...[]string) func(*testing.T, *cluster, string) {
	return func(t *testing.T, c *cluster, ns string) {
		t.Helper()
		setUp(t, c, ns)
		for _, a := range args {
			c.mustCanary(t, withNamespace(a, ns)...)
		}
	}
}

// withNamespace is a copy of args with -n ns added (args may be shared by
// parallel tests).
func withNamespace(args []string, ns string) []string {
	return append(slices.Clone(args), "-n", ns)
}

var (
	startPlain  = []string{"start", "reviews"}
	startExtras = append([]string{"start", "reviews"}, allExtras...)
)

// The flows of start, promote and abort: on a Service without routing
// objects, and on adoptedFixture (foreign routes, a TCP route, policies)
// with every extra (header and cookie rules, mirror, sticky).
var faultFlows = []faultFlow{
	{"start fresh", setUpFresh, startPlain, true},
	{"start adopted", setUpAdopted, startExtras, true},
	{"promote fresh", after(setUpFresh, startPlain), []string{"promote", "reviews"}, false},
	{"promote adopted", after(setUpAdopted, startExtras), []string{"promote", "reviews"}, false},
	{"abort fresh", after(setUpFresh, startPlain), []string{"abort", "reviews"}, false},
	{"abort adopted", after(setUpAdopted, startExtras), []string{"abort", "reviews"}, false},
}

// TestDyingBetweenWritesConverges kills the plugin (SIGKILL, through
// kubectl, which execs it) at every point between two of its writes, for
// each flow of faultFlows. An undisturbed run in a twin namespace counts the
// command's real writes (N) and gives the specs it ends with. Then, in a
// fresh namespace per kill point k = 0..N, a proxy lets the first k writes
// reach the API server and kills the plugin when write k+1 arrives (before
// passing it on), or for k = N once the last write is stored but before the
// plugin reads the answer. After each death, every route to the Service names
// a subset its DestinationRule defines, and running the same command again,
// straight to the API server, succeeds and ends with the undisturbed run's
// specs; a third run changes nothing.
func TestDyingBetweenWritesConverges(t *testing.T) {
	t.Parallel()
	c := shared
	for _, flow := range faultFlows {
		t.Run(flow.name, func(t *testing.T) {
			t.Parallel()
			want, writes := undisturbed(t, c, flow)
			t.Logf("%v writes %d objects: %s", flow.command, len(writes), strings.Join(writes, ", "))
			require.NotEmpty(t, writes)
			requireWriteOrder(t, writes, flow.subsetsFirst)

			for k := 0; k <= len(writes); k++ {
				name := fmt.Sprintf("killed after %d of %d writes", k, len(writes))
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					ns := c.newNamespace(t)
					flow.setUp(t, c, ns)
					before := c.versionsOf(t, ns)
					args := withNamespace(flow.command, ns)

					p := newDyingPlugin(c)
					var seen []string
					var mu sync.Mutex
					kubeconfig := startProxy(t, c, func(w http.ResponseWriter, r *http.Request, forward http.Handler) {
						write := routingWrite(r)
						if write == "" {
							forward.ServeHTTP(w, r)
							return
						}
						mu.Lock()
						seen = append(seen, write)
						n := len(seen)
						mu.Unlock()
						switch {
						case n <= k && n < len(writes):
							forward.ServeHTTP(w, r)
							return
						case n == k: // the last write: stored, but its answer never arrives
							forward.ServeHTTP(httptest.NewRecorder(), r)
						}
						p.kill(t)
						panic(http.ErrAbortHandler)
					})
					r := p.run(t, kubeconfig, args...)
					require.True(t, p.killed(), "the plugin was to die at write %d of %d, but it ended by itself:\n%s", k+1, len(writes), r)
					mu.Lock()
					assert.Equal(t, writes[:min(k+1, len(writes))], seen, "the killed run's writes")
					mu.Unlock()

					requireRoutesToExistingSubsets(t, c, ns, "reviews")
					if k == 0 {
						assert.Equal(t, before, c.versionsOf(t, ns), "killed before its first write, the plugin stored something")
					}

					r = c.canary(t, nil, args...)
					require.NoError(t, r.err, "the rerun after dying at write %d failed:\n%s", k+1, r)
					requireRoutesToExistingSubsets(t, c, ns, "reviews")
					assert.Equal(t, want, routingSpecs(t, c, ns), "the rerun after dying after %d writes does not end where an undisturbed run does", k)
					requireSecondRunUnchanged(t, c, ns, args...)
				})
			}
		})
	}
}

// undisturbed runs flow in a twin namespace through a proxy that only
// watches, and returns the specs the command ends with and the real writes
// it sent, in order.
func undisturbed(t *testing.T, c *cluster, flow faultFlow) (specs map[string]string, writes []string) {
	t.Helper()
	ns := c.newNamespace(t)
	flow.setUp(t, c, ns)
	var mu sync.Mutex
	kubeconfig := startProxy(t, c, func(w http.ResponseWriter, r *http.Request, forward http.Handler) {
		if write := routingWrite(r); write != "" {
			mu.Lock()
			writes = append(writes, write)
			mu.Unlock()
		}
		forward.ServeHTTP(w, r)
	})
	r := run(t, c.commandEnv("KUBECONFIG="+kubeconfig), "", append([]string{"canary"}, withNamespace(flow.command, ns)...)...)
	require.NoError(t, r.err, "%s", r)
	requireRoutesToExistingSubsets(t, c, ns, "reviews")
	mu.Lock()
	defer mu.Unlock()
	return routingSpecs(t, c, ns), writes
}

// requireWriteOrder checks the order crash consistency rests on: subsets
// before the routes that use them, routes off subsets before the subsets go.
func requireWriteOrder(t *testing.T, writes []string, subsetsFirst bool) {
	t.Helper()
	first, then := "DestinationRule", "VirtualService"
	if !subsetsFirst {
		first, then = then, first
	}
	seenThen := false
	for _, w := range writes {
		kind := writeKind(w)
		seenThen = seenThen || kind == then
		require.False(t, seenThen && kind == first, "a %s write after a %s write: %v", first, then, writes)
	}
}

// dyingPlugin is one `kubectl canary` run that a proxy can kill at the
// instant it sees a chosen request. kubectl execs the plugin, so the process
// started is the plugin itself.
type dyingPlugin struct {
	c       *cluster
	started chan struct{}
	done    chan struct{}
	cmd     *exec.Cmd
	dead    atomic.Bool
}

func newDyingPlugin(c *cluster) *dyingPlugin {
	return &dyingPlugin{c: c, started: make(chan struct{}), done: make(chan struct{})}
}

// run runs `kubectl canary ARGS` through kubeconfig and waits for its end.
func (p *dyingPlugin) run(t *testing.T, kubeconfig string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	p.cmd = exec.CommandContext(ctx, "kubectl", append([]string{"canary"}, args...)...)
	p.cmd.Env = p.c.commandEnv("KUBECONFIG=" + kubeconfig)
	var stdout, stderr bytes.Buffer
	p.cmd.Stdout, p.cmd.Stderr = &stdout, &stderr
	err := p.cmd.Start()
	close(p.started)
	if err == nil {
		err = p.cmd.Wait()
	}
	close(p.done)
	r := result{cmd: "kubectl canary " + strings.Join(args, " ") + " (through a killing proxy)", stdout: stdout.String(), stderr: stderr.String(), err: err}
	t.Logf("%s (exit: %v)", r.cmd, err)
	return r
}

// kill ends the plugin with SIGKILL, no chance to clean up, and returns once
// it is gone. It is called from the proxy, while the plugin waits for an
// answer.
func (p *dyingPlugin) kill(t *testing.T) {
	<-p.started
	pid := p.cmd.Process.Pid
	assert.True(t, sameFile(fmt.Sprintf("/proc/%d/exe", pid), p.c.env["CANARY_E2E_PLUGIN"]), "process %d is not the plugin", pid)
	p.dead.Store(true)
	assert.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done
}

// killed tells whether the run ended by kill.
func (p *dyingPlugin) killed() bool {
	if !p.dead.Load() || p.cmd.ProcessState == nil {
		return false
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// destination is the part of an Istio Destination the invariant reads.
type destination struct{ Host, Subset string }

type routeDestinations struct {
	Route []struct{ Destination destination }
}

// vsDestinations is the part of a VirtualService spec that sends traffic.
type vsDestinations struct {
	HTTP []struct {
		routeDestinations
		Mirror  *destination
		Mirrors []struct{ Destination destination }
	}
	TCP, TLS []routeDestinations
}

// requireRoutesToExistingSubsets is the crash-consistency invariant, on the
// stored objects: every destination of Service svc in every VirtualService
// of ns (routes and mirrors) names no subset or one that a DestinationRule
// for svc defines, so no request goes to a subset that does not exist.
func requireRoutesToExistingSubsets(t *testing.T, c *cluster, ns, svc string) {
	t.Helper()
	defined := map[string]bool{}
	for _, dr := range c.list(t, drV1, ns) {
		var s struct {
			Host    string
			Subsets []struct{ Name string }
		}
		parseSpec(t, &dr, &s)
		if serviceHost(s.Host, svc, ns) {
			for _, sub := range s.Subsets {
				defined[sub.Name] = true
			}
		}
	}
	for _, vs := range c.list(t, vsV1, ns) {
		var s vsDestinations
		parseSpec(t, &vs, &s)
		var dests []destination
		for _, routes := range [][]routeDestinations{s.TCP, s.TLS} {
			for _, r := range routes {
				for _, d := range r.Route {
					dests = append(dests, d.Destination)
				}
			}
		}
		for _, r := range s.HTTP {
			for _, d := range r.Route {
				dests = append(dests, d.Destination)
			}
			if r.Mirror != nil {
				dests = append(dests, *r.Mirror)
			}
			for _, m := range r.Mirrors {
				dests = append(dests, m.Destination)
			}
		}
		for _, d := range dests {
			if serviceHost(d.Host, svc, ns) && d.Subset != "" {
				require.True(t, defined[d.Subset], "VirtualService %s/%s sends traffic to subset %q, which no DestinationRule for %s defines (defined: %v)", ns, vs.GetName(), d.Subset, svc, defined)
			}
		}
	}
}

func parseSpec(t *testing.T, obj *unstructured.Unstructured, into interface{}) {
	t.Helper()
	data, err := json.Marshal(obj.Object["spec"])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, into), "%s %s", obj.GetKind(), obj.GetName())
}

// serviceHost tells whether host names Service svc of namespace ns.
func serviceHost(host, svc, ns string) bool {
	switch host {
	case svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local":
		return true
	}
	return false
}

// routingSpecs maps "Kind/name" to the spec of every VirtualService and
// DestinationRule in ns, as indented JSON with ns replaced by NAMESPACE, so
// that the specs of twin namespaces compare equal.
func routingSpecs(t *testing.T, c *cluster, ns string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, gvr := range []schema.GroupVersionResource{vsV1, drV1} {
		for _, obj := range c.list(t, gvr, ns) {
			out[obj.GetKind()+"/"+obj.GetName()] = strings.ReplaceAll(toJSON(t, obj.Object["spec"]), ns, "NAMESPACE")
		}
	}
	return out
}

// TestRetriesThroughAFlakyAPIServer: a write the API server refuses with 409
// Conflict is re-read, re-planned and re-applied, whether the conflict is
// made up by the proxy or real (another writer changed the object in
// between): the command succeeds and ends with an undisturbed run's specs,
// plus the other writer's change. And when every answer comes later than
// --request-timeout, the command fails within it, says so, and writes
// nothing.
func TestRetriesThroughAFlakyAPIServer(t *testing.T) {
	t.Parallel()
	c := shared

	// The two conflicts come on the first VirtualService update: after the
	// DestinationRule's for start, the only write of weight.
	flows := []faultFlow{
		{name: "start adopted", setUp: setUpAdopted, command: startExtras},
		{name: "weight fresh", setUp: after(setUpFresh, startPlain), command: []string{"weight", "reviews", "50"}},
	}
	for _, flow := range flows {
		t.Run(flow.name+", 409 from the proxy", func(t *testing.T) {
			t.Parallel()
			want, writes := undisturbed(t, c, flow)
			ns := c.newNamespace(t)
			flow.setUp(t, c, ns)
			var vsUpdates atomic.Int32
			kubeconfig := startProxy(t, c, func(w http.ResponseWriter, r *http.Request, forward http.Handler) {
				if routingWrite(r) == "PUT virtualservices/reviews" && vsUpdates.Add(1) == 1 {
					writeConflict(t, w, "reviews")
					return
				}
				forward.ServeHTTP(w, r)
			})
			r := run(t, c.commandEnv("KUBECONFIG="+kubeconfig), "", append([]string{"canary"}, withNamespace(flow.command, ns)...)...)
			require.NoError(t, r.err, "%s", r)
			assert.Equal(t, want, routingSpecs(t, c, ns), "after a conflict the command does not end where an undisturbed run does")
			assert.Equal(t, int32(countOf(writes, "PUT virtualservices/reviews")+1), vsUpdates.Load(), "the refused VirtualService update was not sent again once")
		})

		t.Run(flow.name+", another writer in between", func(t *testing.T) {
			t.Parallel()
			want, _ := undisturbed(t, c, flow)
			ns := c.newNamespace(t)
			flow.setUp(t, c, ns)
			var vsUpdates atomic.Int32
			kubeconfig := startProxy(t, c, func(w http.ResponseWriter, r *http.Request, forward http.Handler) {
				if routingWrite(r) == "PUT virtualservices/reviews" && vsUpdates.Add(1) == 1 {
					otherWriterEdit(t, c, ns)
				}
				forward.ServeHTTP(w, r)
			})
			r := run(t, c.commandEnv("KUBECONFIG="+kubeconfig), "", append([]string{"canary"}, withNamespace(flow.command, ns)...)...)
			require.NoError(t, r.err, "%s", r)
			assert.Equal(t, 1, pluginConflicts(t, c, ns), "the API server refused the plugin's stale update once")

			vs := c.get(t, vsV1, ns, "reviews")
			assert.Equal(t, "yes", vs.GetAnnotations()["other.tool/edited"], "the other writer's annotation was lost")
			got := routingSpecs(t, c, ns)
			var wantVS map[string]interface{}
			require.NoError(t, json.Unmarshal([]byte(want["VirtualService/reviews"]), &wantVS))
			setFirstRouteTimeout(wantVS)
			want["VirtualService/reviews"] = toJSON(t, wantVS)
			assert.Equal(t, want, got, "the intent or the other writer's change is missing")
		})
	}

	t.Run("answers later than --request-timeout", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		setUpAdopted(t, c, ns)
		before := c.versionsOf(t, ns)
		const delay = 5 * time.Second
		var slow atomic.Bool
		var writes, held atomic.Int32
		kubeconfig := startProxy(t, c, func(w http.ResponseWriter, r *http.Request, forward http.Handler) {
			if r.Method != http.MethodGet {
				writes.Add(1) // any write at all, dry runs and access reviews too
			}
			if !slow.Load() {
				forward.ServeHTTP(w, r)
				return
			}
			held.Add(1)
			answer := httptest.NewRecorder()
			forward.ServeHTTP(answer, r)
			select {
			case <-time.After(delay):
			case <-r.Context().Done(): // the plugin gave up
				return
			}
			for k, v := range answer.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(answer.Code)
			_, _ = w.Write(answer.Body.Bytes())
		})
		// Discovery cached under the proxy's address, so that the plugin
		// gets as far as it can: to reading the Service's objects.
		r := run(t, c.commandEnv("KUBECONFIG="+kubeconfig), "", "canary", "check", "reviews", "-n", ns)
		require.NoError(t, r.err, "%s", r)
		require.Zero(t, writes.Load())

		slow.Store(true)
		started := time.Now()
		r = run(t, c.commandEnv("KUBECONFIG="+kubeconfig), "", "canary", "start", "reviews", "-n", ns, "--request-timeout", "1s")
		took := time.Since(started)
		requireExitCode(t, r, 1)
		assert.Less(t, took, delay-time.Second, "with --request-timeout 1s the command waited for the late answer")
		assert.Greater(t, held.Load(), int32(0), "no request went through the slow proxy")
		assert.Contains(t, r.stderr, "did not answer", "the error says the API server did not answer:\n%s", r)
		assert.Contains(t, r.stderr, "--request-timeout", "the error says how to wait longer")
		assert.Zero(t, writes.Load(), "the plugin sent a write after a read had timed out")
		assert.Equal(t, before, c.versionsOf(t, ns), "something was written")
	})
}

// writeConflict answers as the API server does when an update carries a
// resourceVersion that is no longer current.
func writeConflict(t *testing.T, w http.ResponseWriter, name string) {
	err := apierrors.NewConflict(schema.GroupResource{Group: "networking.istio.io", Resource: "virtualservices"}, name,
		errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	status := err.ErrStatus
	status.Kind, status.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusConflict)
	assert.NoError(t, json.NewEncoder(w).Encode(status))
}

// otherWriterEdit changes VirtualService reviews the way another tool would:
// an annotation, and the timeout of its first HTTP route (a field the
// plugin does not own).
func otherWriterEdit(t *testing.T, c *cluster, ns string) {
	client := c.dyn.Resource(vsV1).Namespace(ns)
	vs, err := client.Get(context.Background(), "reviews", metav1.GetOptions{})
	if !assert.NoError(t, err) {
		return
	}
	annotations := vs.GetAnnotations()
	annotations["other.tool/edited"] = "yes"
	vs.SetAnnotations(annotations)
	s := spec(vs)
	setFirstRouteTimeout(s)
	assert.NoError(t, unstructured.SetNestedMap(vs.Object, s, "spec"))
	_, err = client.Update(context.Background(), vs, metav1.UpdateOptions{})
	assert.NoError(t, err)
}

func setFirstRouteTimeout(spec map[string]interface{}) {
	spec["http"].([]interface{})[0].(map[string]interface{})["timeout"] = "7s"
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
