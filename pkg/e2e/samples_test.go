//go:build e2e

package e2e

// Istio's own samples (copied under testdata/routing/samples, see the
// README there), on the real API server and istiod through kubectl
// canary: the Gateway API's helloworld (a route at 90/10 between the
// per-version Services already, bound to a Gateway and named like the
// Service) and tcp-echo (per-version Services serving one port of two),
// and tcp-echo at 80/20 on a VirtualService. Where a route already gave
// the canary a share, abort sends it to stable too and says how to return.
//
// Like the other mesh tests these do not call t.Parallel (see mesh_test.go).

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-canary/kubectl-canary/pkg/e2e/xds"
	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// sampleDocs are the YAML documents of sample files, those whose kind is
// not in skip. The cluster serves TCPRoute at v1 only (the standard
// channel of the Gateway API v1.6.0), where the samples say v1alpha2.
func sampleDocs(t *testing.T, skip map[string]bool, files ...string) string {
	t.Helper()
	var docs []string
	for _, f := range files {
		data, err := os.ReadFile(testutil.Testdata(append([]string{"routing", "samples"}, strings.Split(f, "/")...)...))
		require.NoError(t, err)
		for _, doc := range strings.Split(string(data), "\n---") {
			kind := ""
			for _, line := range strings.Split(doc, "\n") {
				if strings.HasPrefix(line, "kind: ") {
					kind = strings.TrimPrefix(line, "kind: ")
				}
			}
			if kind == "" || skip[kind] {
				continue
			}
			doc = strings.Replace(doc, "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute", "apiVersion: gateway.networking.k8s.io/v1\nkind: TCPRoute", 1)
			docs = append(docs, strings.TrimPrefix(doc, "\n"))
		}
	}
	return strings.Join(docs, "\n---\n")
}

// specWithoutWeights is an object's spec as JSON with the weights of
// every backendRef and destination left out.
func specWithoutWeights(t *testing.T, obj *unstructured.Unstructured) string {
	t.Helper()
	copied := obj.DeepCopy()
	var strip func(v interface{})
	strip = func(v interface{}) {
		switch v := v.(type) {
		case map[string]interface{}:
			delete(v, "weight")
			for _, x := range v {
				strip(x)
			}
		case []interface{}:
			for _, x := range v {
				strip(x)
			}
		}
	}
	strip(copied.Object["spec"])
	return specJSON(t, copied)
}

// portClusters is what a proxy sends to each per-version Service's cluster
// on port, 0-weight clusters left out.
func portClusters(ns string, port int, weights map[string]uint32) map[string]uint32 {
	out := map[string]uint32{}
	for svc, w := range weights {
		if w > 0 {
			out[fmt.Sprintf("outbound|%d||%s", port, fqdn(ns, svc))] = w
		}
	}
	return out
}

// TestSampleHelloworldGatewayAPI: Istio's helloworld on the Gateway API,
// its gateway-bound HTTPRoute helloworld already at 90/10. start --canary
// v2 adopts that split (no --stable needed) at 20 %, adds the mesh sibling
// helloworld-mesh, and istiod serves each weight to a sidecar; abort gives
// the route its spec back with v2 at 0 and says v2 had 10 % before.
func TestSampleHelloworldGatewayAPI(t *testing.T) {
	m := requireMesh(t)
	ns := shared.newNamespace(t)
	// helloworld-gateway.yaml holds the Gateway and a route to the Service
	// itself, which helloworld-route.yaml (90/10) replaces.
	shared.create(t, ns, sampleDocs(t, nil,
		"istio/samples/helloworld/helloworld.yaml",
		"istio/samples/helloworld/gateway-api/helloworld-versions.yaml",
		"istio/samples/helloworld/gateway-api/helloworld-route.yaml")+"\n---\n"+
		sampleDocs(t, map[string]bool{"HTTPRoute": true}, "istio/samples/helloworld/gateway-api/helloworld-gateway.yaml"))
	for _, v := range []string{"v1", "v2"} {
		shared.setAvailable(t, ns, "helloworld-"+v, 1)
	}
	shared.pendingPods(t, ns, "helloworld", "v1", "v2")
	before := m.findings(t, ns)
	original := shared.get(t, httpRoutesV1, ns, "helloworld")
	client := m.dial(t, xds.Sidecar(ns, "client-0", podIP(), map[string]string{"app": "client"}), xds.Options{}, "5000")
	host := fqdn(ns, "helloworld")

	r := shared.failCanary(t, "start", "helloworld", "-n", ns)
	assert.Contains(t, r.stderr, "already send traffic to several versions ([v1 v2]); pass --stable with the one that serves users today (or, where they split between two, --canary with the other one)")
	r = shared.failCanary(t, "check", "helloworld", "-n", ns)
	assert.Contains(t, r.stdout, "already send traffic to several versions ([v1 v2])", "check refuses what start refuses")
	assert.Contains(t, shared.mustCanary(t, "check", "helloworld", "-n", ns, "--canary", "v2"), "no findings, ready for a canary")

	for _, step := range []struct {
		args []string
		want map[string]int64
	}{
		{[]string{"start", "helloworld", "--canary", "v2", "--weight", "20"}, map[string]int64{"helloworld-v1": 80, "helloworld-v2": 20}},
		{[]string{"weight", "helloworld", "50"}, map[string]int64{"helloworld-v1": 50, "helloworld-v2": 50}},
		{[]string{"abort", "helloworld"}, map[string]int64{"helloworld-v1": 100, "helloworld-v2": 0}},
	} {
		out := shared.mustCanary(t, append([]string{"-n", ns}, step.args...)...)
		t.Logf("kubectl canary %s:\n%s", strings.Join(step.args, " "), out)
		route := shared.get(t, httpRoutesV1, ns, "helloworld")
		assert.Equal(t, step.want, backendWeights(t, route, 0), "the gateway route after %v", step.args)
		assert.Equal(t, specWithoutWeights(t, original), specWithoutWeights(t, route), "the gateway route keeps everything but its weights")
		mesh := shared.get(t, httpRoutesV1, ns, "helloworld-mesh")
		assert.Equal(t, "kubectl-canary", mesh.GetLabels()["app.kubernetes.io/managed-by"])
		wantMesh := map[string]uint32{}
		for svc, w := range step.want {
			wantMesh[svc] = uint32(w)
		}
		if step.args[0] == "abort" {
			wantMesh = map[string]uint32{"helloworld-v1": 100}
			assert.Equal(t, map[string]int64{"helloworld-v1": 1}, backendWeights(t, mesh, 0), "the mesh route start created stays, all to stable")
			assert.Contains(t, out, "canary "+ns+"/helloworld aborted: stable version=v1 gets 100% of the traffic again\n")
			assert.Contains(t, out, "Note: before the canary started, HTTPRoute "+ns+"/helloworld (rule #0) gave canary version=v2 10% of its traffic; abort sent that share to stable version=v1 too\n")
			assert.Contains(t, out, "To return to that split: kubectl canary start helloworld -n "+ns+" --canary v2 --stable v1 --weight 10")
		} else {
			assert.Equal(t, step.want, backendWeights(t, mesh, 0), "the mesh route after %v", step.args)
		}
		want := portClusters(ns, 5000, wantMesh)
		vh := served(t, client, "5000", host, func(routes []xds.Route) bool {
			return fmt.Sprint(nonZero(last(routes).Weights())) == fmt.Sprint(want)
		})
		t.Logf("istiod serves %s: %v", vh.Name, last(vh.Routes).Weights())
		m.noNewFindings(t, ns, before, strings.Join(step.args, " "))
	}
	shared.requireAbsent(t, coreServices, ns, "helloworld-v3")
}

// TestSampleTCPEchoGatewayAPI: Istio's tcp-echo on the Gateway API, whose
// per-version Services tcp-echo-v1 and -v2 serve port 9000 alone of the
// Service's 9000 and 9001. start takes them as the versions' Services (the
// gateway-bound TCPRoute uses 9000), splits the TCPRoute, adds a mesh
// TCPRoute for 9000 and warns that 9001 is not split; abort gives the
// TCPRoute its spec back exactly (v2 had nothing before).
func TestSampleTCPEchoGatewayAPI(t *testing.T) {
	m := requireMesh(t)
	ns := shared.newNamespace(t)
	shared.create(t, ns, sampleDocs(t, nil,
		"istio/samples/tcp-echo/tcp-echo-services.yaml",
		"istio/samples/tcp-echo/gateway-api/tcp-echo-all-v1.yaml"))
	for _, v := range []string{"v1", "v2"} {
		shared.setAvailable(t, ns, "tcp-echo-"+v, 1)
	}
	shared.pendingPods(t, ns, "tcp-echo", "v1", "v2")
	before := m.findings(t, ns)
	original := shared.getTCPRoute(t, ns, "tcp-echo")
	servicesBefore := map[string]string{}
	for _, name := range []string{"tcp-echo-v1", "tcp-echo-v2"} {
		servicesBefore[name] = shared.get(t, coreServices, ns, name).GetResourceVersion()
	}
	assert.Contains(t, shared.mustCanary(t, "check", "tcp-echo", "-n", ns), "no findings, ready for a canary")
	ip := clusterIP(t, ns, "tcp-echo")
	sidecar := m.dialListening(t, xds.Sidecar(ns, "client-0", podIP(), map[string]string{"app": "client"}), ip, 9000)

	for _, step := range []struct {
		args []string
		want map[string]int64
	}{
		{[]string{"start", "tcp-echo"}, map[string]int64{"tcp-echo-v1": 90, "tcp-echo-v2": 10}},
		{[]string{"weight", "tcp-echo", "40"}, map[string]int64{"tcp-echo-v1": 60, "tcp-echo-v2": 40}},
		{[]string{"abort", "tcp-echo"}, map[string]int64{"tcp-echo-v1": 100}},
	} {
		r := shared.canary(t, nil, append([]string{"-n", ns}, step.args...)...)
		require.NoError(t, r.err, "%s", r)
		t.Logf("kubectl canary %s:\n%s", strings.Join(step.args, " "), r)
		route := shared.getTCPRoute(t, ns, "tcp-echo")
		mesh := shared.getTCPRoute(t, ns, "tcp-echo-tcp")
		if step.args[0] == "abort" {
			assert.Equal(t, specJSON(t, original), specJSON(t, route), "abort gives the TCPRoute its spec back exactly")
			assert.Equal(t, map[string]int64{"tcp-echo-v1": 1}, backendWeights(t, mesh, 0))
			assert.NotContains(t, r.stdout, "Note:", "v2 had no share before start")
		} else {
			assert.Equal(t, step.want, backendWeights(t, route, 0))
			assert.Equal(t, step.want, backendWeights(t, mesh, 0))
			assert.Equal(t, original.Object["spec"].(map[string]interface{})["parentRefs"], route.Object["spec"].(map[string]interface{})["parentRefs"], "the TCPRoute stays bound to its Gateway")
		}
		if step.args[0] == "start" {
			assert.Contains(t, r.stderr, "in-mesh traffic to port(s) 9001 of service "+ns+"/tcp-echo is not split: Services tcp-echo-v1 and tcp-echo-v2 do not serve them")
			parents, _, _ := unstructured.NestedSlice(mesh.Object, "spec", "parentRefs")
			require.Len(t, parents, 1)
			assert.EqualValues(t, 9000, parents[0].(map[string]interface{})["port"], "the mesh route attaches to port 9000 alone")
		}
		for name, rv := range servicesBefore {
			assert.Equal(t, rv, shared.get(t, coreServices, ns, name).GetResourceVersion(), "the sample's %s is used as it is, never written", name)
		}
		shared.requireAbsent(t, coreServices, ns, "tcp-echo-v1-2")
		servedTCP(t, sidecar, ip, 9000, portClusters(ns, 9000, uint32s(step.want)))
		m.noNewFindings(t, ns, before, strings.Join(step.args, " "))
	}
}

func uint32s(weights map[string]int64) map[string]uint32 {
	out := map[string]uint32{}
	for k, w := range weights {
		out[k] = uint32(w)
	}
	return out
}

// servedTCP waits until the listener at address:port proxies TCP, in one
// filter chain, to the clusters want gives (0-weight ones left out).
func servedTCP(t *testing.T, c *xds.Client, address string, port uint32, want map[string]uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), meshTimeout)
	defer cancel()
	var last xds.Listener
	_, err := c.WaitForListener(ctx, address, port, func(l xds.Listener) bool {
		last = l
		for _, fc := range l.TCPChains() {
			if fmt.Sprint(positive(fc.TCP.Weights())) == fmt.Sprint(want) {
				return true
			}
		}
		return false
	})
	require.NoError(t, err, "TCP at %s:%d should go to %v; istiod serves\n%s", address, port, want, last)
}

// TestSampleTCPEcho20V2VirtualService: Istio's tcp-echo with the
// VirtualService of tcp-echo-20-v2.yaml (v2 at 20 % through the ingress
// gateway). start --canary v2 --stable v1 sets 10 % on the gateway's route
// and creates tcp-echo-mesh for in-mesh calls; istiod serves each weight to
// the ingress gateway and to a sidecar; abort sends v2's pre-start 20 % to
// v1 too (istiod then serves v1 alone) and says v2 had 20 % before.
func TestSampleTCPEcho20V2VirtualService(t *testing.T) {
	m := requireMesh(t)
	ns := shared.newNamespace(t)
	shared.create(t, ns, sampleDocs(t, map[string]bool{"VirtualService": true},
		"istio/samples/tcp-echo/tcp-echo-services.yaml",
		"istio/samples/tcp-echo/tcp-echo-all-v1.yaml")+"\n---\n"+sampleDocs(t, nil, "istio/samples/tcp-echo/tcp-echo-20-v2.yaml"))
	for _, v := range []string{"v1", "v2"} {
		shared.setAvailable(t, ns, "tcp-echo-"+v, 1)
	}
	shared.pendingPods(t, ns, "tcp-echo", "v1", "v2")
	before := m.findings(t, ns)
	original := shared.get(t, virtualServices("v1"), ns, "tcp-echo")
	host := fqdn(ns, "tcp-echo")
	gateway := m.dialListening(t, xds.IngressGateway(ns, "ingress-0", podIP(), map[string]string{"istio": "ingressgateway"}), "0.0.0.0", 31400)
	ip := clusterIP(t, ns, "tcp-echo")
	sidecar := m.dialListening(t, xds.Sidecar(ns, "client-0", podIP(), map[string]string{"app": "client"}), ip, 9000)
	tcpSplit(t, gateway, "0.0.0.0", 31400, host, 9000, map[string]uint32{"v1": 80, "v2": 20})

	r := shared.failCanary(t, "check", "tcp-echo", "-n", ns)
	assert.Contains(t, r.stdout, "already send traffic to several versions ([v1 v2])")

	for _, step := range []struct {
		args []string
		want map[string]uint32
	}{
		{[]string{"start", "tcp-echo", "--canary", "v2", "--stable", "v1"}, map[string]uint32{"v1": 90, "v2": 10}},
		{[]string{"weight", "tcp-echo", "50"}, map[string]uint32{"v1": 50, "v2": 50}},
		{[]string{"abort", "tcp-echo"}, map[string]uint32{"v1": 100}},
	} {
		out := shared.mustCanary(t, append([]string{"-n", ns}, step.args...)...)
		t.Logf("kubectl canary %s:\n%s", strings.Join(step.args, " "), out)
		vs := shared.get(t, virtualServices("v1"), ns, "tcp-echo")
		live := weights(t, vs, "tcp", 0)
		for subset, w := range step.want {
			assert.Equal(t, int64(w), live[subset], "subset %s of the gateway's route after %v", subset, step.args)
		}
		assert.Equal(t, specWithoutWeights(t, original), specWithoutWeights(t, vs), "the VirtualService keeps everything but its weights")
		tcpSplit(t, gateway, "0.0.0.0", 31400, host, 9000, step.want)
		tcpSplit(t, sidecar, ip, 9000, host, 9000, step.want)
		if step.args[0] == "abort" {
			assert.Equal(t, map[string]int64{"v1": 100, "v2": 0}, live, "v2's pre-start 20% goes to v1 too")
			assert.Contains(t, out, "canary "+ns+"/tcp-echo aborted: stable version=v1 gets 100% of the traffic again\n")
			assert.Contains(t, out, "Note: before the canary started, VirtualService "+ns+"/tcp-echo (tcp route #0) gave canary version=v2 20% of its traffic; abort sent that share to stable version=v1 too\n")
			assert.Contains(t, out, "To return to that split: kubectl canary start tcp-echo -n "+ns+" --canary v2 --stable v1 --weight 20")
		}
		m.noNewFindings(t, ns, before, strings.Join(step.args, " "))
	}
	mesh := shared.get(t, virtualServices("v1"), ns, "tcp-echo-mesh")
	assert.Equal(t, "kubectl-canary", mesh.GetLabels()["app.kubernetes.io/managed-by"])
}
