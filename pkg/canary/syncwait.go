package canary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
	"github.com/kubectl-canary/kubectl-canary/pkg/meshsync"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// istiod pushes a change within about a second: its sync status is read
// every waitPollInterval at first, then less often, up to
// maxWaitPollInterval (each read lists the proxies of a whole mesh).
const (
	waitPollInterval    = 250 * time.Millisecond
	maxWaitPollInterval = 2 * time.Second
	// readTooSoon bounds a read of the sync status right after the writes
	// that cannot hold a push of any of them yet. istiod pushes a config
	// change once 100 ms pass without another (PILOT_DEBOUNCE_AFTER), and
	// the API server answers a write once it is stored; istiod's answer
	// travels back through the API server too, so a read that comes back
	// less than 100 ms after the first write's answer was taken before any
	// push of the writes.
	readTooSoon = 90 * time.Millisecond
)

// How --wait reaches istiod (--istiod-via).
const (
	// ViaAuto asks through the API server's proxy and, when istiod turns
	// the proxy away, through a port-forward to the replica's pod.
	ViaAuto = "auto"
	// ViaProxy asks only through the API server's service or pod proxy.
	ViaProxy = "proxy"
	// ViaPortForward asks only through port-forwards to the replicas' pods.
	ViaPortForward = "port-forward"
)

// PortForwarder opens a port-forward to a pod until ctx ends and returns
// its local address.
type PortForwarder func(ctx context.Context, namespace, pod string, port int32) (string, error)

// SyncWaiter carries out --wait as an Observer of the engine: it finds
// istiod's replicas and reads their sync status right before the first
// write, then waits until the proxies calling the Service have the change.
type SyncWaiter struct {
	Cluster *Cluster
	// Timeout bounds the reading before the write and the wait after it.
	Timeout time.Duration
	// Namespace, Service and Port are istiod's Service and its monitoring
	// port; Via is one of ViaAuto, ViaProxy, ViaPortForward.
	Namespace string
	Service   string
	Port      int
	Via       string
	// Forward opens port-forwards to istiod's pods; nil means through the
	// API server (tests replace it).
	Forward PortForwarder
	// ReadTooSoon is how soon after the last write a read of istiod
	// cannot hold the write's push yet; zero is 90 ms.
	ReadTooSoon time.Duration
	// Warn receives a warning; Synced the line that says the proxies have
	// the change.
	Warn   func(message string)
	Synced func(summary string)

	// source is istiod as read before the write.
	source *istiodSource
}

var _ Observer = (*SyncWaiter)(nil)

// BeforeWrite reads istiod's newest pushes; a --wait that cannot work
// fails here, before anything is written.
func (w *SyncWaiter) BeforeWrite(ctx context.Context, plan *routing.Plan) error {
	src, err := w.baseline(ctx, plan)
	w.source = src
	return err
}

// AfterWrite waits for the proxies once the change is written; after a
// failed change it only lets go of istiod.
func (w *SyncWaiter) AfterWrite(ctx context.Context, result *Result, err error) error {
	src := w.source
	w.source = nil
	switch {
	case src == nil:
		return nil
	case err != nil:
		src.stop()
		return nil
	}
	return w.forProxies(ctx, src, result)
}

// describeIstiod names istiod's Service and port in messages.
func (w *SyncWaiter) describeIstiod() string {
	return fmt.Sprintf("service %s/%s port %d", w.Namespace, w.Service, w.Port)
}

// istiodSource is where --wait reads istiod's sync status: every ready
// replica, each with the newest push it had sent before the write (every
// replica has its own proxies and its own push counter), and which proxies
// count.
type istiodSource struct {
	replicas  []*istiodReplica
	baselines []uint64
	audience  meshsync.Audience
	// forwards live until stop: the whole wait.
	forwards context.Context
	stop     context.CancelFunc
}

// istiodReplica is one replica and how it is read.
type istiodReplica struct {
	// pod is nil when the Service's proxy is read without knowing which
	// pod answers (the user may not list endpoints).
	pod *kube.IstiodReplica
	// viaService: one replica, read through the Service's proxy.
	viaService bool
	// forwarded is the local address of a port-forward to the pod, once
	// one is open.
	forwarded string
}

// findIstiod finds the replicas behind istiod's Service. Without the right
// to list its endpoints, it reads through the Service's proxy, which sees
// one replica (at random, when there are several) and says so.
func (w *SyncWaiter) findIstiod(ctx context.Context) ([]*istiodReplica, error) {
	replicas, err := w.Cluster.clients.IstiodReplicas(ctx, w.Namespace, w.Service, w.Port)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("there is no service %s/%s to read istiod's sync status from; point --istiod-namespace and --istiod-service at istiod's Service, or run without --wait", w.Namespace, w.Service)
	case apierrors.IsForbidden(err) && refusedResource(err) == "endpointslices" && w.Via != ViaPortForward:
		w.warn(fmt.Sprintf("not allowed to list endpointslices in namespace %s, so --wait reads istiod through its Service, which reaches one replica: if istiod runs several, --wait may judge by the wrong one", w.Namespace))
		return []*istiodReplica{{viaService: true}}, nil
	case apierrors.IsForbidden(err) && refusedResource(err) == "endpointslices":
		return nil, fmt.Errorf("not allowed to list endpointslices in namespace %s, which --istiod-via port-forward needs to find istiod's pods; ask for that permission or run without --wait: %w", w.Namespace, err)
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("not allowed to get service %s/%s, which --wait needs to find istiod; ask for that permission or run without --wait: %w", w.Namespace, w.Service, err)
	case err != nil:
		return nil, fmt.Errorf("cannot find istiod for --wait: %w; point --istiod-namespace, --istiod-service and --istiod-port at istiod's monitoring port, or run without --wait", err)
	case len(replicas) == 0:
		return nil, fmt.Errorf("service %s/%s has no ready endpoint in a pod: istiod is not running in the cluster, so the API server cannot reach it for its proxies' sync status; start it or run without --wait", w.Namespace, w.Service)
	}
	out := make([]*istiodReplica, len(replicas))
	for i := range replicas {
		out[i] = &istiodReplica{pod: &replicas[i], viaService: len(replicas) == 1}
	}
	return out, nil
}

// refusedResource is the resource a Forbidden error from the API names.
func refusedResource(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Details != nil {
		return status.Status().Details.Kind
	}
	return ""
}

// readSyncStatus reads one replica's sync status (of the proxies of one
// namespace, when proxyNamespace is set), saying what to do when it cannot.
func (w *SyncWaiter) readSyncStatus(ctx context.Context, src *istiodSource, r *istiodReplica, proxyNamespace string) ([]meshsync.Proxy, error) {
	if r.forwarded == "" && w.Via == ViaPortForward {
		if err := w.openForward(src, r); err != nil {
			return nil, err
		}
	}
	if r.forwarded != "" {
		return w.readForwarded(ctx, r, proxyNamespace)
	}
	var replica *kube.IstiodReplica
	if !r.viaService {
		replica = r.pod
	}
	body, err := w.Cluster.clients.IstiodSyncStatus(ctx, w.Namespace, w.Service, w.Port, replica, proxyNamespace)
	where, resource := w.describeIstiod(), "services"
	if replica != nil {
		where, resource = fmt.Sprintf("pod %s/%s port %d", w.Namespace, replica.Pod, replica.Port), "pods"
	}
	refused := apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err)
	if refused {
		// Who said no: the API server's RBAC, or istiod behind it?
		if allowed, checkErr := w.Cluster.clients.MayProxy(ctx, resource, w.Namespace); checkErr == nil && !allowed {
			return nil, fmt.Errorf("not allowed to get %s/proxy in namespace %s, which --wait needs to read istiod's sync status (%s); ask for that permission or run without --wait: %w", resource, w.Namespace, where, err)
		}
		// istiod answers its debug endpoints only to callers on its own
		// pod (or with an Istio token, which the API server does not pass
		// on): ask there, through a port-forward.
		if w.Via == ViaAuto && r.pod != nil {
			if err := w.openForward(src, r); err != nil {
				return nil, err
			}
			return w.readForwarded(ctx, r, proxyNamespace)
		}
	}
	switch {
	case err == nil:
		return meshsync.Parse(body)
	case refused:
		return nil, fmt.Errorf("istiod at %s refused to show its sync status to the API server's proxy (%v): istiod serves /debug/syncz only to callers on its own pod or with an Istio-accepted token, which the proxy does not pass on; use --istiod-via port-forward (needs the list of endpointslices), or run without --wait", where, err)
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("istiod at %s serves no /debug/syncz (is --istiod-port its monitoring port, and ENABLE_DEBUG_ON_HTTP on?); run without --wait, or fix that first: %w", where, err)
	default:
		return nil, fmt.Errorf("cannot reach istiod's sync status at %s through the API server's proxy (is istiod running and reachable from the API server?); run without --wait, or fix that first: %w", where, err)
	}
}

// openForward opens a port-forward to the replica's pod for the rest of the
// wait.
func (w *SyncWaiter) openForward(src *istiodSource, r *istiodReplica) error {
	if r.pod == nil {
		return fmt.Errorf("cannot forward a port to istiod without knowing its pods (list endpointslices in namespace %s); run without --wait", w.Namespace)
	}
	addr, err := w.forwarder()(src.forwards, w.Namespace, r.pod.Pod, r.pod.Port)
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("not allowed to create pods/portforward in namespace %s, which --wait needs to read istiod's sync status on pod %s; ask for that permission or run without --wait: %w", w.Namespace, r.pod.Pod, err)
	case err != nil:
		return fmt.Errorf("cannot forward a port to istiod's pod %s/%s port %d: %w; run without --wait, or fix that first", w.Namespace, r.pod.Pod, r.pod.Port, err)
	}
	r.forwarded = addr
	return nil
}

// readForwarded reads /debug/syncz through the replica's port-forward.
func (w *SyncWaiter) readForwarded(ctx context.Context, r *istiodReplica, proxyNamespace string) ([]meshsync.Proxy, error) {
	u := url.URL{Scheme: "http", Host: r.forwarded, Path: "/debug/syncz"}
	if proxyNamespace != "" {
		u.RawQuery = url.Values{"namespace": {proxyNamespace}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot read istiod's sync status through the port-forward to pod %s/%s: %w", w.Namespace, r.pod.Pod, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %s", resp.Status)
	}
	if err != nil {
		return nil, fmt.Errorf("istiod on pod %s/%s did not give its sync status (is --istiod-port its monitoring port, and ENABLE_DEBUG_ON_HTTP on?): %w", w.Namespace, r.pod.Pod, err)
	}
	return meshsync.Parse(body)
}

// readAll reads every replica at once; a read error fails the whole.
func (w *SyncWaiter) readAll(ctx context.Context, src *istiodSource) ([][]meshsync.Proxy, error) {
	proxies := make([][]meshsync.Proxy, len(src.replicas))
	errs := make([]error, len(src.replicas))
	var wg sync.WaitGroup
	for i, r := range src.replicas {
		wg.Go(func() { proxies[i], errs[i] = w.readSyncStatus(ctx, src, r, src.audience.Namespace()) })
	}
	wg.Wait()
	return proxies, errors.Join(errs...)
}

// baseline finds istiod and reads, per replica, the newest push it has sent,
// right before the change is written: a proxy has the change once it
// acknowledges a newer push. Doing this first also means a --wait that
// cannot work fails before anything is written. It takes at most
// --wait-timeout.
func (w *SyncWaiter) baseline(ctx context.Context, plan *routing.Plan) (*istiodSource, error) {
	src := &istiodSource{audience: meshsync.AudienceOf(virtualServicesOf(plan))}
	src.audience.AddGatewayAPIRoutes(gatewayAPIRoutesOf(plan))
	src.forwards, src.stop = context.WithCancel(ctx)
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	var err error
	if src.replicas, err = w.findIstiod(ctx); err == nil {
		var all [][]meshsync.Proxy
		if all, err = w.readAll(ctx, src); err == nil {
			for _, proxies := range all {
				var latest uint64
				if latest, err = meshsync.LatestPush(proxies); err != nil {
					break
				}
				src.baselines = append(src.baselines, latest)
			}
		}
	}
	if err != nil {
		src.stop()
		return nil, fmt.Errorf("--wait cannot work, so nothing was changed: %w", err)
	}
	return src, nil
}

// judgeSync tells which proxies of the audience have the change, from
// every replica's sync status; changed is false when nothing was written,
// and then the proxies need only have acknowledged everything sent to them.
func judgeSync(src *istiodSource, all [][]meshsync.Proxy, changed bool) (meshsync.Verdict, error) {
	var verdict meshsync.Verdict
	for i, proxies := range all {
		var newerThan *uint64
		if changed {
			newerThan = &src.baselines[i]
		}
		v, err := meshsync.Judge(proxies, src.audience, newerThan)
		if err != nil {
			return meshsync.Verdict{}, err
		}
		verdict.InSync = append(verdict.InSync, v.InSync...)
		verdict.Pending = append(verdict.Pending, v.Pending...)
	}
	return verdict, nil
}

// rebaseline moves each replica's baseline to its newest push, when the
// sync status was read too soon after the first write for any push to carry
// the writes: a push that began between the first baseline and the writes
// (another change's, debounced) then does not count as this change's.
func rebaseline(src *istiodSource, all [][]meshsync.Proxy) {
	for i, proxies := range all {
		if latest, err := meshsync.LatestPush(proxies); err == nil && latest > src.baselines[i] {
			src.baselines[i] = latest
		}
	}
}

// forProxies waits until every proxy that calls the Service has the change,
// or the timeout runs out, asking less often as it goes on.
func (w *SyncWaiter) forProxies(ctx context.Context, src *istiodSource, result *Result) error {
	defer src.stop()
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	started := time.Now()
	interval := waitPollInterval
	plan := result.Plan
	var verdict meshsync.Verdict
	var lastErr error
	for first := true; ; first = false {
		all, err := w.readAll(ctx, src)
		if err == nil && first && plan.Changed() && !result.FirstWriteAnswered.IsZero() && time.Since(result.FirstWriteAnswered) < w.readTooSoon() {
			rebaseline(src, all)
		}
		if err == nil {
			verdict, err = judgeSync(src, all, plan.Changed())
		}
		if err == nil && verdict.Done() {
			if w.Synced != nil {
				w.Synced(syncSummary(plan, verdict, time.Since(started), w))
			}
			return nil
		}
		// A failed read while waiting may be a passing hiccup: retry until
		// the timeout, then report it (unless the timeout itself cut it off).
		if ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return w.timedOut(plan, verdict, lastErr, ctx.Err())
		case <-time.After(interval):
		}
		interval = min(2*interval, maxWaitPollInterval)
	}
}

func (w *SyncWaiter) timedOut(plan *routing.Plan, verdict meshsync.Verdict, lastErr, ctxErr error) error {
	what := fmt.Sprintf("waited %s for the proxies calling service %s/%s", w.Timeout, plan.Namespace, plan.Service)
	if !errors.Is(ctxErr, context.DeadlineExceeded) {
		what = fmt.Sprintf("stopped waiting for the proxies calling service %s/%s", plan.Namespace, plan.Service)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d in sync (istiod at %s). The change is written; ", what, len(verdict.InSync), len(verdict.InSync)+len(verdict.Pending), w.describeIstiod())
	if lastErr != nil {
		fmt.Fprintf(&b, "the last read of istiod's sync status failed: %v", lastErr)
	} else {
		b.WriteString("not in sync yet:")
		for _, p := range verdict.Pending {
			fmt.Fprintf(&b, "\n  %s %s", p.ID, p.Reason)
		}
		b.WriteString("\nA proxy that a Sidecar resource keeps from seeing the Service gets no push for it; `istioctl proxy-status` shows each proxy's state")
	}
	return errors.New(b.String())
}

func syncSummary(plan *routing.Plan, v meshsync.Verdict, took time.Duration, w *SyncWaiter) string {
	n := len(v.InSync)
	if n == 0 {
		return fmt.Sprintf("no proxy connected to istiod (%s) calls service %s/%s: nothing to wait for", w.describeIstiod(), plan.Namespace, plan.Service)
	}
	proxies := "proxies"
	if n == 1 {
		proxies = "proxy"
	}
	return fmt.Sprintf("%d of %d %s calling service %s/%s in sync with the new routing after %s", n, n, proxies, plan.Namespace, plan.Service, took.Round(10*time.Millisecond))
}

// virtualServicesOf lists the VirtualServices of a plan as they are once
// it is written: they say which proxies call the Service.
func virtualServicesOf(plan *routing.Plan) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, c := range plan.Changes {
		if c.Desired.GetKind() == "VirtualService" {
			out = append(out, c.Desired)
		}
	}
	return out
}

// gatewayAPIRoutesOf lists the Gateway API routes of a plan as they are
// once it is written: their parentRefs say which proxies call the Service.
func gatewayAPIRoutesOf(plan *routing.Plan) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, c := range plan.Changes {
		if slices.Contains(routing.GatewayAPIRouteKinds, c.Desired.GetKind()) {
			out = append(out, c.Desired)
		}
	}
	return out
}

func (w *SyncWaiter) warn(message string) {
	if w.Warn != nil {
		w.Warn(message)
	}
}

func (w *SyncWaiter) readTooSoon() time.Duration {
	if w.ReadTooSoon > 0 {
		return w.ReadTooSoon
	}
	return readTooSoon
}

// forwarder is Forward, or the API server's port forwarding.
func (w *SyncWaiter) forwarder() PortForwarder {
	if w.Forward != nil {
		return w.Forward
	}
	return w.Cluster.clients.ForwardPort
}
