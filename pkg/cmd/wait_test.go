package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	restclient "k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
)

// fakeIstiod plays istiod behind the fake API server: its Service and
// EndpointSlice, and per replica a /debug/syncz with one connected proxy.
// Routing writes make each replica push once no write came for
// fakeDebounce (as istiod debounces config events), and a replica's proxy
// acknowledges after it has been asked `ackAfter` more times.
type fakeIstiod struct {
	mu       sync.Mutex
	replicas map[string]*fakeReplica // by pod name
	reads    []string                // the proxied requests, "NAMESPACE RESOURCE NAME:PORT/PATH"
	err      error                   // answered instead, when set
	// forwardErr is what opening a port-forward gives, when set.
	forwardErr error
}

type fakeReplica struct {
	counter int // the newest push version of this replica
	// pending is set by a write: its push goes out once the sync status
	// has been read once more (istiod debounces config events).
	pending, readSincePending bool
	// pushesMeanwhile is how many pushes of other changes go out while
	// the write is on its way, acknowledged at once.
	pushesMeanwhile    int
	acked              int // the newest its proxy acknowledged
	sinceAck           int
	ackAfter           int // reads until the proxy acknowledges; <0 never
	proxyType, proxyID string
}

// istiodAt is where the fake istiod's Service is.
type istiodAt struct {
	namespace, service string
	port               int32
}

var defaultIstiod = istiodAt{"istio-system", "istiod", 15014}

// newFakeIstiodReplicas serves the replicas istiod-0, istiod-1, ...
func newFakeIstiodReplicas(f *fakeCluster, at istiodAt, replicas ...*fakeReplica) *fakeIstiod {
	i := &fakeIstiod{replicas: map[string]*fakeReplica{}}
	monitoring, xdsPort, podPort := "http-monitoring", "grpc-xds", int32(9914)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: at.service + "-abc", Namespace: at.namespace, Labels: map[string]string{discoveryv1.LabelServiceName: at.service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &xdsPort, Port: ptr.To(int32(15010))}, {Name: &monitoring, Port: &podPort}},
	}
	for n, r := range replicas {
		pod := fmt.Sprintf("istiod-%d", n)
		i.replicas[pod] = r
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{fmt.Sprintf("10.244.0.%d", n+2)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: pod, Namespace: at.namespace},
		})
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: at.service, Namespace: at.namespace},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: xdsPort, Port: 15010},
			{Name: monitoring, Port: at.port, TargetPort: intstr.FromInt32(podPort)},
		}},
	}
	require.NoError(f.t, f.core.Tracker().Add(svc))
	require.NoError(f.t, f.core.Tracker().Add(slice))
	f.dynamic.PrependReactor("*", "*", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if (action.GetVerb() == "create" || action.GetVerb() == "update") && !isDryRun(action) {
			i.mu.Lock()
			for _, r := range i.replicas {
				r.counter += r.pushesMeanwhile
				r.acked = r.counter
				r.pushesMeanwhile = 0
				r.pending, r.readSincePending = true, false
			}
			i.mu.Unlock()
		}
		return false, nil, nil
	})
	for _, resource := range []string{"services", "pods"} {
		f.core.PrependProxyReactor(resource, func(action clienttesting.Action) (bool, restclient.ResponseWrapper, error) {
			p := action.(clienttesting.ProxyGetAction)
			i.mu.Lock()
			defer i.mu.Unlock()
			read := fmt.Sprintf("%s %s %s:%s:%s/%s", p.GetNamespace(), p.GetResource().Resource, p.GetScheme(), p.GetName(), p.GetPort(), p.GetPath())
			if ns := p.GetParams()["namespace"]; ns != "" {
				read += "?namespace=" + ns
			}
			i.reads = append(i.reads, read)
			if i.err != nil {
				return true, answer{err: i.err}, nil
			}
			pod := p.GetName()
			if p.GetResource().Resource == "services" {
				pod = "istiod-0" // the service proxy picks an endpoint
			}
			r := i.replicas[pod]
			if r == nil {
				return true, answer{err: apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, pod)}, nil
			}
			return true, answer{body: r.read()}, nil
		})
	}
	return i
}

// forward plays the API server's port forwarding to a replica's pod: a
// local server that answers /debug/syncz as that replica.
func (i *fakeIstiod) forward(t *testing.T) canary.PortForwarder {
	return func(_ context.Context, namespace, pod string, port int32) (string, error) {
		i.mu.Lock()
		defer i.mu.Unlock()
		i.reads = append(i.reads, fmt.Sprintf("%s portforward %s:%d", namespace, pod, port))
		if i.forwardErr != nil {
			return "", i.forwardErr
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			i.mu.Lock()
			defer i.mu.Unlock()
			i.reads = append(i.reads, fmt.Sprintf("%s forwarded %s%s", namespace, pod, req.URL.RequestURI()))
			_, _ = io.WriteString(w, i.replicas[pod].read())
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://"), nil
	}
}

// read answers /debug/syncz, letting the proxy acknowledge in its time.
func (r *fakeReplica) read() string {
	switch {
	case r.pending && r.readSincePending:
		r.counter++
		r.sinceAck = 0
		r.pending = false
	case r.pending:
		r.readSincePending = true
	}
	if r.acked < r.counter && r.ackAfter >= 0 {
		if r.sinceAck >= r.ackAfter {
			r.acked = r.counter
		}
		r.sinceAck++
	}
	n := func(c int) string {
		return fmt.Sprintf("2026-11-30T23:01:03Z/%d0b6f1a34-5f0e-4c59-9d3a-1f2e3d4c5b6a", c)
	}
	return fmt.Sprintf(`[{"proxy":%q,"proxy_type":%q,"resources":{
		"type.googleapis.com/envoy.config.route.v3.RouteConfiguration":{"sent":%q,"acked":%q},
		"type.googleapis.com/envoy.config.cluster.v3.Cluster":{"sent":%q,"acked":%q}}}]`,
		r.proxyID, r.proxyType, n(r.counter), n(r.acked), n(r.counter), n(r.acked))
}

// answer is what the fake service proxy returns.
type answer struct {
	body string
	err  error
}

func (a answer) DoRaw(context.Context) ([]byte, error) { return []byte(a.body), a.err }
func (a answer) Stream(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(a.body)), a.err
}

const productpage = "productpage-1.shop"

// sidecar is a replica whose one proxy is a sidecar that acknowledges
// pushes after ackAfter reads (never when negative).
func sidecar(id string, counter, ackAfter int) *fakeReplica {
	return &fakeReplica{counter: counter, acked: counter, ackAfter: ackAfter, proxyType: "sidecar", proxyID: id}
}

// runForwarding is fakeCluster.run with the fake istiod's port forwarding.
func (f *fakeCluster) runForwarding(istiod *fakeIstiod, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := newCmdCanary(&globalOptions{conn: canary.ConnectWith(f), portForward: istiod.forward(f.t), syncReadTooSoon: fakeSyncReadTooSoon, IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}})
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestWaitForwardsAPortWhenIstiodTurnsTheProxyAway(t *testing.T) {
	istiodSaysNo := apierrors.NewUnauthorized("Unauthorized")
	t.Run("auto", func(t *testing.T) {
		f := newFakeCluster(t, "no-istio", "shop")
		istiod := newFakeIstiodReplicas(f, defaultIstiod, sidecar(productpage, 4, 1))
		istiod.err = istiodSaysNo // as istiod answers any caller not on its pod
		out, _, err := f.runForwarding(istiod, "start", "reviews", "--wait")
		require.NoError(t, err)
		assert.Contains(t, out, "1 of 1 proxy calling service shop/reviews in sync")
		// Once turned away, the rest goes through one port-forward.
		assert.Equal(t, "istio-system services http:istiod:15014/debug/syncz", istiod.reads[0])
		assert.Equal(t, "istio-system portforward istiod-0:9914", istiod.reads[1])
		for _, read := range istiod.reads[2:] {
			assert.Equal(t, "istio-system forwarded istiod-0/debug/syncz", read)
		}
		assert.Len(t, istiod.reads, 2+4, "baseline, a read before istiod pushes the write, then until acknowledged")
	})
	t.Run("port-forward only", func(t *testing.T) {
		f := newFakeCluster(t, "no-istio", "shop")
		istiod := newFakeIstiodReplicas(f, defaultIstiod, sidecar("productpage-1.shop", 4, 0), sidecar("ratings-1.shop", 9, 0))
		out, _, err := f.runForwarding(istiod, "start", "reviews", "--wait", "--istiod-via", "port-forward")
		require.NoError(t, err)
		assert.Contains(t, out, "2 of 2 proxies calling service shop/reviews in sync")
		for _, read := range istiod.reads {
			assert.NotContains(t, read, "services", "never through the proxy")
		}
		assert.Contains(t, istiod.reads, "istio-system portforward istiod-1:9914")
	})
	t.Run("proxy only", func(t *testing.T) {
		f := newFakeCluster(t, "no-istio", "shop")
		istiod := newFakeIstiodReplicas(f, defaultIstiod, sidecar(productpage, 4, 0))
		istiod.err = istiodSaysNo
		_, _, err := f.runForwarding(istiod, "start", "reviews", "--wait", "--istiod-via", "proxy")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "--wait cannot work, so nothing was changed: istiod at service istio-system/istiod port 15014 refused to show its sync status to the API server's proxy (Unauthorized)")
		assert.Contains(t, err.Error(), "use --istiod-via port-forward")
		assert.Empty(t, f.writes())
	})
	t.Run("port forwarding not allowed", func(t *testing.T) {
		f := newFakeCluster(t, "no-istio", "shop")
		istiod := newFakeIstiodReplicas(f, defaultIstiod, sidecar(productpage, 4, 0))
		istiod.err = istiodSaysNo
		istiod.forwardErr = apierrors.NewForbidden(schema.GroupResource{Resource: "pods/portforward"}, "istiod-0", fmt.Errorf("RBAC"))
		_, _, err := f.runForwarding(istiod, "start", "reviews", "--wait")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "--wait cannot work, so nothing was changed: not allowed to create pods/portforward in namespace istio-system, which --wait needs to read istiod's sync status on pod istiod-0")
		assert.Empty(t, f.writes())
	})
}

func TestWaitUntilTheProxiesAcknowledge(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	istiod := newFakeIstiodReplicas(f, defaultIstiod, sidecar(productpage, 4, 2))

	out, _, err := f.run("start", "reviews", "--wait")
	require.NoError(t, err)
	assert.Contains(t, out, "canary shop/reviews started")
	assert.Regexp(t, `1 of 1 proxy calling service shop/reviews in sync with the new routing after \d`, out)
	// One replica is read through the Service: once before the write, once
	// before istiod pushes it, then until the proxy has acknowledged.
	assert.Equal(t, []string{
		"istio-system services http:istiod:15014/debug/syncz",
		"istio-system services http:istiod:15014/debug/syncz",
		"istio-system services http:istiod:15014/debug/syncz",
		"istio-system services http:istiod:15014/debug/syncz",
		"istio-system services http:istiod:15014/debug/syncz",
	}, istiod.reads)

	// -o yaml stays parseable: the wait's line goes to stderr.
	out, errOut, err := f.run("weight", "reviews", "30", "--wait", "-o", "yaml")
	require.NoError(t, err)
	assert.NotContains(t, out, "in sync")
	assert.Contains(t, errOut, "1 of 1 proxy calling service shop/reviews in sync")
}

// A push of another change that goes out between the read before the write
// and istiod receiving the write is newer than the first baseline but does
// not carry the write: the read right after the write moves the baseline
// past it, so the wait ends only once the write's own push is acknowledged.
func TestWaitIgnoresAPushOfAnotherChangeDuringTheWrite(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	proxy := sidecar(productpage, 4, 1)
	proxy.pushesMeanwhile = 1
	istiod := newFakeIstiodReplicas(f, defaultIstiod, proxy)

	out, _, err := f.run("start", "reviews", "--wait")
	require.NoError(t, err)
	assert.Contains(t, out, "1 of 1 proxy calling service shop/reviews in sync")
	assert.Equal(t, 6, proxy.counter, "4 before, 5 the other change's, 6 the write's")
	assert.Equal(t, 6, proxy.acked, "the wait ended before the write's push was acknowledged")
	assert.Len(t, istiod.reads, 4, "before the write, before istiod pushes it, then until acknowledged")

	// Read too late after the write to tell, the baseline stays: the
	// other change's push is then taken for the write's, as before.
	f = newFakeCluster(t, "no-istio", "shop")
	proxy = sidecar(productpage, 4, 1)
	proxy.pushesMeanwhile = 1
	newFakeIstiodReplicas(f, defaultIstiod, proxy)
	var stdout, stderr bytes.Buffer
	cmd := newCmdCanary(&globalOptions{conn: canary.ConnectWith(f), syncReadTooSoon: time.Nanosecond, IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr}})
	cmd.SetArgs([]string{"start", "reviews", "--wait"})
	require.NoError(t, cmd.ExecuteContext(context.Background()))
	assert.Equal(t, 5, proxy.acked, "judged at once on the other change's push")
}

func TestWaitWhenNothingChanges(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	// Nothing to write: the proxy need only have acknowledged what it has.
	istiod := newFakeIstiodReplicas(f, istiodAt{"mesh", "pilot", 8080}, sidecar(productpage, 4, 2))
	out, _, err := f.run("start", "reviews", "--wait", "--istiod-namespace", "mesh", "--istiod-service", "pilot", "--istiod-port", "8080")
	require.NoError(t, err)
	assert.Contains(t, out, "unchanged")
	assert.Contains(t, out, "1 of 1 proxy calling service shop/reviews in sync")
	assert.Equal(t, []string{"mesh services http:pilot:8080/debug/syncz", "mesh services http:pilot:8080/debug/syncz"}, istiod.reads)
}

func TestWaitAsksOnlyAboutTheAudiencesNamespace(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	// Exported to its own namespace: only that namespace's sidecars call it.
	vs := f.get(vsGVR, "reviews")
	require.NoError(t, unstructured.SetNestedStringSlice(vs.Object, []string{"."}, "spec", "exportTo"))
	_, err = f.dynamic.Resource(vsGVR).Namespace("shop").Update(context.Background(), vs, metav1.UpdateOptions{})
	require.NoError(t, err)

	istiod := newFakeIstiodReplicas(f, defaultIstiod, sidecar(productpage, 4, 0))
	out, _, err := f.run("weight", "reviews", "40", "--wait")
	require.NoError(t, err)
	assert.Contains(t, out, "1 of 1 proxy calling service shop/reviews in sync")
	for _, read := range istiod.reads {
		assert.Equal(t, "istio-system services http:istiod:15014/debug/syncz?namespace=shop", read)
	}
}

func TestWaitReadsEveryIstiodReplica(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	// Each replica counts its own pushes: 4 and 40 before the write.
	istiod := newFakeIstiodReplicas(f, defaultIstiod, sidecar("productpage-1.shop", 4, 1), sidecar("ratings-1.shop", 40, 3))

	out, _, err := f.run("start", "reviews", "--wait")
	require.NoError(t, err)
	assert.Contains(t, out, "2 of 2 proxies calling service shop/reviews in sync")
	// Through each pod's proxy, at the port the Service's port leads to,
	// both at once.
	assert.ElementsMatch(t, []string{"istio-system pods http:istiod-0:9914/debug/syncz", "istio-system pods http:istiod-1:9914/debug/syncz"}, istiod.reads[:2])
	assert.Len(t, istiod.reads, 2*6, "before the write, before istiod pushes it, then until ratings acknowledged on its third read")

	t.Run("a replica's proxy that never acknowledges", func(t *testing.T) {
		f := newFakeCluster(t, "no-istio", "shop")
		newFakeIstiodReplicas(f, defaultIstiod, sidecar("productpage-1.shop", 4, 0), sidecar("ratings-1.shop", 40, -1))
		_, _, err := f.run("start", "reviews", "--wait", "--wait-timeout", "600ms")
		require.Error(t, err)
		assert.Contains(t, err.Error(), ": 1 of 2 in sync")
		assert.Contains(t, err.Error(), "ratings-1.shop has not acknowledged")
	})

	t.Run("without the right to list endpoints", func(t *testing.T) {
		f := newFakeCluster(t, "no-istio", "shop")
		istiod := newFakeIstiodReplicas(f, defaultIstiod, sidecar("productpage-1.shop", 4, 0), sidecar("ratings-1.shop", 40, 0))
		f.core.PrependReactor("list", "endpointslices", func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"}, "", fmt.Errorf("RBAC"))
		})
		out, errOut, err := f.run("start", "reviews", "--wait")
		require.NoError(t, err)
		assert.Contains(t, errOut, "Warning: not allowed to list endpointslices in namespace istio-system, so --wait reads istiod through its Service, which reaches one replica")
		assert.Contains(t, out, "1 of 1 proxy calling service shop/reviews in sync")
		assert.Equal(t, "istio-system services http:istiod:15014/debug/syncz", istiod.reads[0])
	})
}

func TestWaitTimesOutNamingTheProxies(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	istiod := newFakeIstiodReplicas(f, defaultIstiod, sidecar(productpage, 4, -1))

	out, _, err := f.run("start", "reviews", "--wait", "--wait-timeout", "700ms")
	require.Error(t, err)
	assert.Contains(t, out, "canary shop/reviews started", "the change is written and reported first")
	assert.Contains(t, err.Error(), "waited 700ms for the proxies calling service shop/reviews: 0 of 1 in sync (istiod at service istio-system/istiod port 15014). The change is written")
	assert.Contains(t, err.Error(), productpage+" has not acknowledged the Cluster, RouteConfiguration istiod sent it")
	assert.Equal(t, []int64{90, 10}, weightsOf(t, f.get(vsGVR, "reviews"), "http", 0))
	assert.GreaterOrEqual(t, len(istiod.reads), 3, "it kept asking until the timeout")
}

func TestWaitOnlyCountsTheServicesClients(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	// A gateway proxy that never acknowledges does not call reviews: the
	// VirtualService start creates is bound to the mesh only.
	newFakeIstiodReplicas(f, defaultIstiod, &fakeReplica{counter: 4, acked: 4, ackAfter: -1, proxyType: "router", proxyID: "ingress-1.istio-system"})
	out, _, err := f.run("start", "reviews", "--wait", "--wait-timeout", "5s")
	require.NoError(t, err)
	assert.Contains(t, out, "no proxy connected to istiod (service istio-system/istiod port 15014) calls service shop/reviews: nothing to wait for")
}

func TestWaitThatCannotWorkWritesNothing(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "services/proxy"}, "istiod", fmt.Errorf(`User "jane" cannot get resource "services/proxy" in API group "" in the namespace "istio-system"`))
	istiodSaysNo := apierrors.NewUnauthorized("Unauthorized")
	unavailable := apierrors.NewServiceUnavailable(`no endpoints available for service "istiod"`)
	debugOff := apierrors.NewNotFound(schema.GroupResource{Resource: "services"}, "istiod")
	for _, tc := range []struct {
		name     string
		replicas []*fakeReplica
		err      error // of the proxied read
		flags    []string
		want     string
	}{
		{name: "no istiod service", flags: []string{"--istiod-service", "pilot"}, replicas: []*fakeReplica{sidecar(productpage, 4, 0)},
			want: "there is no service istio-system/pilot to read istiod's sync status from; point --istiod-namespace and --istiod-service"},
		{name: "no such port", flags: []string{"--istiod-port", "8080"}, replicas: []*fakeReplica{sidecar(productpage, 4, 0)},
			want: "cannot find istiod for --wait: service istio-system/istiod has no port 8080 (it has 15010, 15014); point --istiod-namespace, --istiod-service and --istiod-port"},
		{name: "no ready replica", want: "service istio-system/istiod has no ready endpoint in a pod: istiod is not running in the cluster"},
		{name: "istiod refuses the proxy, no kubelet to forward through", err: istiodSaysNo, replicas: []*fakeReplica{sidecar(productpage, 4, 0)},
			want: "cannot forward a port to istiod's pod istio-system/istiod-0 port 9914: no connection settings to forward a port with"},
		{name: "forbidden", err: forbidden, replicas: []*fakeReplica{sidecar(productpage, 4, 0)},
			want: "not allowed to get services/proxy in namespace istio-system, which --wait needs to read istiod's sync status (service istio-system/istiod port 15014)"},
		{name: "pod proxy forbidden", err: forbidden, replicas: []*fakeReplica{sidecar(productpage, 4, 0), sidecar("b.shop", 4, 0)},
			want: "not allowed to get pods/proxy in namespace istio-system, which --wait needs to read istiod's sync status (pod istio-system/istiod-0 port 9914)"},
		{name: "debug endpoints off", err: debugOff, replicas: []*fakeReplica{sidecar(productpage, 4, 0)},
			want: "istiod at service istio-system/istiod port 15014 serves no /debug/syncz (is --istiod-port its monitoring port, and ENABLE_DEBUG_ON_HTTP on?)"},
		{name: "istiod not answering", err: unavailable, replicas: []*fakeReplica{sidecar(productpage, 4, 0)},
			want: "cannot reach istiod's sync status at service istio-system/istiod port 15014 through the API server's proxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCluster(t, "no-istio", "shop")
			istiod := newFakeIstiodReplicas(f, defaultIstiod, tc.replicas...)
			istiod.err = tc.err
			if tc.err == forbidden {
				f.denied["get services"], f.denied["get pods"] = true, true
			}
			_, _, err := f.run(append([]string{"start", "reviews", "--wait"}, tc.flags...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "--wait cannot work, so nothing was changed: "+tc.want)
			assert.Contains(t, err.Error(), "without --wait")
			assert.Empty(t, f.writes())
		})
	}

	t.Run("not istiod's sync status", func(t *testing.T) {
		f := newFakeCluster(t, "no-istio", "shop")
		newFakeIstiodReplicas(f, defaultIstiod, sidecar(productpage, 4, 0))
		f.core.PrependProxyReactor("services", func(clienttesting.Action) (bool, restclient.ResponseWrapper, error) {
			return true, answer{body: "<html>prometheus</html>"}, nil
		})
		_, _, err := f.run("weight", "reviews", "20", "--wait")
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "nothing was changed", "weight without a canary fails first")
		_, _, err = f.run("start", "reviews", "--wait")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "--wait cannot work, so nothing was changed: istiod's sync status is not the JSON list /debug/syncz returns")
		assert.Empty(t, f.writes())
	})
}

func TestWaitFlagsAreChecked(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews", "--wait", "--dry-run")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--wait waits for a written change to reach the proxies; a --dry-run writes nothing")
	_, _, err = f.run("start", "reviews", "--wait", "--wait-timeout", "0s")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--wait-timeout 0s must be positive")
	_, _, err = f.run("start", "reviews", "--wait", "--istiod-via", "ssh")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--istiod-via "ssh" is not one of auto, proxy, port-forward`)
	assert.Empty(t, f.writes())
	for _, verb := range []string{"start", "weight", "route", "promote", "abort"} {
		cmd, _, err := newCmdCanary(&globalOptions{conn: canary.ConnectWith(f)}).Find([]string{verb})
		require.NoError(t, err)
		for _, flag := range []string{"wait", "wait-timeout", "istiod-namespace", "istiod-service", "istiod-port", "istiod-via"} {
			assert.NotNil(t, cmd.Flags().Lookup(flag), "%s --%s", verb, flag)
		}
	}
}
