package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	restclient "k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
)

// fakeIstiod plays istiod's /debug/syncz behind the fake API server's
// service proxy: every routing write starts a push, which the proxy
// acknowledges after istiod has been asked `ackAfter` more times.
type fakeIstiod struct {
	mu                 sync.Mutex
	counter            int // the newest push version
	acked              int // the newest the proxy acknowledged
	sinceAck           int
	ackAfter           int // reads until the proxy acknowledges; <0 never
	proxyType, proxyID string
	reads              []string // the proxied paths asked for
	err                error    // answered instead, when set
}

func newFakeIstiod(f *fakeCluster, proxyType, proxyID string) *fakeIstiod {
	i := &fakeIstiod{counter: 4, acked: 4, ackAfter: 1, proxyType: proxyType, proxyID: proxyID}
	f.dynamic.PrependReactor("*", "*", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if (action.GetVerb() == "create" || action.GetVerb() == "update") && !isDryRun(action) {
			i.mu.Lock()
			i.counter++
			i.sinceAck = 0
			i.mu.Unlock()
		}
		return false, nil, nil
	})
	f.core.PrependProxyReactor("services", func(action clienttesting.Action) (bool, restclient.ResponseWrapper, error) {
		p := action.(clienttesting.ProxyGetAction)
		i.mu.Lock()
		defer i.mu.Unlock()
		i.reads = append(i.reads, fmt.Sprintf("%s %s:%s:%s/%s", p.GetNamespace(), p.GetScheme(), p.GetName(), p.GetPort(), p.GetPath()))
		if i.err != nil {
			return true, answer{err: i.err}, nil
		}
		if i.acked < i.counter && i.ackAfter >= 0 {
			if i.sinceAck >= i.ackAfter {
				i.acked = i.counter
			}
			i.sinceAck++
		}
		return true, answer{body: i.syncz()}, nil
	})
	return i
}

func (i *fakeIstiod) syncz() string {
	n := func(c int) string {
		return fmt.Sprintf("2026-11-30T23:01:03Z/%d0b6f1a34-5f0e-4c59-9d3a-1f2e3d4c5b6a", c)
	}
	return fmt.Sprintf(`[{"proxy":%q,"proxy_type":%q,"resources":{
		"type.googleapis.com/envoy.config.route.v3.RouteConfiguration":{"sent":%q,"acked":%q},
		"type.googleapis.com/envoy.config.cluster.v3.Cluster":{"sent":%q,"acked":%q}}}]`,
		i.proxyID, i.proxyType, n(i.counter), n(i.acked), n(i.counter), n(i.acked))
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

func TestWaitUntilTheProxiesAcknowledge(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	istiod := newFakeIstiod(f, "sidecar", productpage)
	istiod.ackAfter = 2

	out, _, err := f.run("start", "reviews", "--wait")
	require.NoError(t, err)
	assert.Contains(t, out, "canary shop/reviews started")
	assert.Regexp(t, `1 of 1 proxy calling service shop/reviews in sync with the new routing after \d`, out)
	// One read before the write, then until the proxy has acknowledged.
	assert.Equal(t, []string{
		"istio-system http:istiod:15014/debug/syncz",
		"istio-system http:istiod:15014/debug/syncz",
		"istio-system http:istiod:15014/debug/syncz",
		"istio-system http:istiod:15014/debug/syncz",
	}, istiod.reads)

	// Nothing to write: the proxy need only have acknowledged what it has.
	istiod.reads = nil
	out, _, err = f.run("start", "reviews", "--wait", "--istiod-namespace", "mesh", "--istiod-service", "pilot", "--istiod-port", "8080")
	require.NoError(t, err)
	assert.Contains(t, out, "unchanged")
	assert.Contains(t, out, "1 of 1 proxy calling service shop/reviews in sync")
	assert.Equal(t, []string{"mesh http:pilot:8080/debug/syncz", "mesh http:pilot:8080/debug/syncz"}, istiod.reads)

	// -o yaml stays parseable: the wait's line goes to stderr.
	out, errOut, err := f.run("weight", "reviews", "30", "--wait", "-o", "yaml")
	require.NoError(t, err)
	assert.NotContains(t, out, "in sync")
	assert.Contains(t, errOut, "1 of 1 proxy calling service shop/reviews in sync")
}

func TestWaitTimesOutNamingTheProxies(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	istiod := newFakeIstiod(f, "sidecar", productpage)
	istiod.ackAfter = -1

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
	istiod := newFakeIstiod(f, "router", "ingress-1.istio-system")
	istiod.ackAfter = -1
	out, _, err := f.run("start", "reviews", "--wait", "--wait-timeout", "5s")
	require.NoError(t, err)
	assert.Contains(t, out, "no proxy connected to istiod (service istio-system/istiod port 15014) calls service shop/reviews: nothing to wait for")
}

func TestWaitThatCannotWorkWritesNothing(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "services/proxy"}, "istiod", fmt.Errorf("RBAC"))
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "services"}, "istiod")
	unavailable := apierrors.NewServiceUnavailable(`no endpoints available for service "istiod"`)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"forbidden", forbidden, "not allowed to get services/proxy in namespace istio-system, which --wait needs to read istiod's sync status"},
		{"no istiod service", notFound, "istiod's sync status is not at service istio-system/istiod port 15014 (no such service, or istiod serves no /debug/syncz there); point --istiod-namespace"},
		{"istiod not running", unavailable, "cannot reach istiod's sync status at service istio-system/istiod port 15014 through the API server's service proxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCluster(t, "no-istio", "shop")
			istiod := newFakeIstiod(f, "sidecar", productpage)
			istiod.err = tc.err
			_, _, err := f.run("start", "reviews", "--wait")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "--wait cannot work, so nothing was changed: "+tc.want)
			assert.Contains(t, err.Error(), "without --wait")
			assert.Empty(t, f.writes())
		})
	}

	t.Run("not istiod's sync status", func(t *testing.T) {
		f := newFakeCluster(t, "no-istio", "shop")
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
	assert.Empty(t, f.writes())
	for _, verb := range []string{"start", "weight", "route", "promote", "abort"} {
		cmd, _, err := newCmdCanary(&globalOptions{factory: f}).Find([]string{verb})
		require.NoError(t, err)
		for _, flag := range []string{"wait", "wait-timeout", "istiod-namespace", "istiod-service", "istiod-port"} {
			assert.NotNil(t, cmd.Flags().Lookup(flag), "%s --%s", verb, flag)
		}
	}
}
