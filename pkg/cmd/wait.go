package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
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
)

// How --wait reaches istiod (--istiod-via).
const (
	// viaAuto asks through the API server's proxy and, when istiod turns
	// the proxy away, through a port-forward to the replica's pod.
	viaAuto = "auto"
	// viaProxy asks only through the API server's service or pod proxy.
	viaProxy = "proxy"
	// viaPortForward asks only through port-forwards to the replicas' pods.
	viaPortForward = "port-forward"
)

// syncWaiter carries out --wait: it finds istiod's replicas, reads their
// sync status before and after the write, and waits until the proxies
// calling the Service have the change. Its fields are the --wait flags.
type syncWaiter struct {
	enabled   bool
	timeout   time.Duration
	namespace string
	service   string
	port      int
	via       string
	// forward opens a port-forward to a pod until ctx ends and returns its
	// local address; tests replace it.
	forward func(ctx context.Context, clients *kube.Clients, namespace, pod string, port int32) (string, error)
}

func (w *syncWaiter) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&w.enabled, "wait", false, "After writing, wait until istiod reports that the proxies calling the Service (sidecars, and ingress gateways for gateway routes) have acknowledged the new routing. Reads the sync status of every istiod replica through the API server's proxy (--istiod-namespace, --istiod-service, --istiod-port).")
	fl.DurationVar(&w.timeout, "wait-timeout", time.Minute, "How long --wait waits for the proxies; the change stays written when it runs out.")
	fl.StringVar(&w.namespace, "istiod-namespace", "istio-system", "Namespace of istiod's Service, for --wait.")
	fl.StringVar(&w.service, "istiod-service", "istiod", "Name of istiod's Service, for --wait.")
	fl.IntVar(&w.port, "istiod-port", 15014, "Port of istiod's Service that serves /debug/syncz (its monitoring port), for --wait.")
	fl.StringVar(&w.via, "istiod-via", viaAuto, `How --wait reaches istiod: "proxy" (the API server's service or pod proxy), "port-forward" (the API server's port forwarding to each replica's pod, which istiod answers when it turns proxied requests away, as it does since Istio 1.11 unless they come with an Istio token), or "auto" (the proxy, then port-forward if istiod refuses).`)
	w.forward = func(ctx context.Context, clients *kube.Clients, namespace, pod string, port int32) (string, error) {
		return clients.ForwardPort(ctx, namespace, pod, port)
	}
}

// validate rejects --wait where there is nothing to wait for.
func (w *syncWaiter) validate(dryRun bool) error {
	if !w.enabled {
		return nil
	}
	if dryRun {
		return fmt.Errorf("--wait waits for a written change to reach the proxies; a --dry-run writes nothing, so leave one of them out")
	}
	if w.timeout <= 0 {
		return fmt.Errorf("--wait-timeout %s must be positive, for example 30s or 2m", w.timeout)
	}
	switch w.via {
	case viaAuto, viaProxy, viaPortForward:
		return nil
	}
	return fmt.Errorf("--istiod-via %q is not one of auto, proxy, port-forward", w.via)
}

// describeIstiod names istiod's Service and port in messages.
func (w *syncWaiter) describeIstiod() string {
	return fmt.Sprintf("service %s/%s port %d", w.namespace, w.service, w.port)
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
func (w *syncWaiter) findIstiod(ctx context.Context, clients *kube.Clients, errOut io.Writer) ([]*istiodReplica, error) {
	replicas, err := clients.IstiodReplicas(ctx, w.namespace, w.service, w.port)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("there is no service %s/%s to read istiod's sync status from; point --istiod-namespace and --istiod-service at istiod's Service, or run without --wait", w.namespace, w.service)
	case apierrors.IsForbidden(err) && refusedResource(err) == "endpointslices" && w.via != viaPortForward:
		fmt.Fprintf(errOut, "Warning: not allowed to list endpointslices in namespace %s, so --wait reads istiod through its Service, which reaches one replica: if istiod runs several, --wait may judge by the wrong one\n", w.namespace)
		return []*istiodReplica{{viaService: true}}, nil
	case apierrors.IsForbidden(err) && refusedResource(err) == "endpointslices":
		return nil, fmt.Errorf("not allowed to list endpointslices in namespace %s, which --istiod-via port-forward needs to find istiod's pods; ask for that permission or run without --wait: %w", w.namespace, err)
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("not allowed to get service %s/%s, which --wait needs to find istiod; ask for that permission or run without --wait: %w", w.namespace, w.service, err)
	case err != nil:
		return nil, fmt.Errorf("cannot find istiod for --wait: %w; point --istiod-namespace, --istiod-service and --istiod-port at istiod's monitoring port, or run without --wait", err)
	case len(replicas) == 0:
		return nil, fmt.Errorf("service %s/%s has no ready endpoint in a pod: istiod is not running in the cluster, so the API server cannot reach it for its proxies' sync status; start it or run without --wait", w.namespace, w.service)
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
func (w *syncWaiter) readSyncStatus(ctx context.Context, clients *kube.Clients, src *istiodSource, r *istiodReplica, proxyNamespace string) ([]meshsync.Proxy, error) {
	if r.forwarded == "" && w.via == viaPortForward {
		if err := w.openForward(clients, src, r); err != nil {
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
	body, err := clients.IstiodSyncStatus(ctx, w.namespace, w.service, w.port, replica, proxyNamespace)
	where, resource := w.describeIstiod(), "services"
	if replica != nil {
		where, resource = fmt.Sprintf("pod %s/%s port %d", w.namespace, replica.Pod, replica.Port), "pods"
	}
	refused := apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err)
	if refused {
		// Who said no: the API server's RBAC, or istiod behind it?
		if allowed, checkErr := clients.MayProxy(ctx, resource, w.namespace); checkErr == nil && !allowed {
			return nil, fmt.Errorf("not allowed to get %s/proxy in namespace %s, which --wait needs to read istiod's sync status (%s); ask for that permission or run without --wait: %w", resource, w.namespace, where, err)
		}
		// istiod answers its debug endpoints only to callers on its own
		// pod (or with an Istio token, which the API server does not pass
		// on): ask there, through a port-forward.
		if w.via == viaAuto && r.pod != nil {
			if err := w.openForward(clients, src, r); err != nil {
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
func (w *syncWaiter) openForward(clients *kube.Clients, src *istiodSource, r *istiodReplica) error {
	if r.pod == nil {
		return fmt.Errorf("cannot forward a port to istiod without knowing its pods (list endpointslices in namespace %s); run without --wait", w.namespace)
	}
	addr, err := w.forward(src.forwards, clients, w.namespace, r.pod.Pod, r.pod.Port)
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("not allowed to create pods/portforward in namespace %s, which --wait needs to read istiod's sync status on pod %s; ask for that permission or run without --wait: %w", w.namespace, r.pod.Pod, err)
	case err != nil:
		return fmt.Errorf("cannot forward a port to istiod's pod %s/%s port %d: %w; run without --wait, or fix that first", w.namespace, r.pod.Pod, r.pod.Port, err)
	}
	r.forwarded = addr
	return nil
}

// readForwarded reads /debug/syncz through the replica's port-forward.
func (w *syncWaiter) readForwarded(ctx context.Context, r *istiodReplica, proxyNamespace string) ([]meshsync.Proxy, error) {
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
		return nil, fmt.Errorf("cannot read istiod's sync status through the port-forward to pod %s/%s: %w", w.namespace, r.pod.Pod, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %s", resp.Status)
	}
	if err != nil {
		return nil, fmt.Errorf("istiod on pod %s/%s did not give its sync status (is --istiod-port its monitoring port, and ENABLE_DEBUG_ON_HTTP on?): %w", w.namespace, r.pod.Pod, err)
	}
	return meshsync.Parse(body)
}

// readAll reads every replica at once; a read error fails the whole.
func (w *syncWaiter) readAll(ctx context.Context, clients *kube.Clients, src *istiodSource) ([][]meshsync.Proxy, error) {
	proxies := make([][]meshsync.Proxy, len(src.replicas))
	errs := make([]error, len(src.replicas))
	var wg sync.WaitGroup
	for i, r := range src.replicas {
		wg.Go(func() { proxies[i], errs[i] = w.readSyncStatus(ctx, clients, src, r, src.audience.Namespace()) })
	}
	wg.Wait()
	return proxies, errors.Join(errs...)
}

// baseline finds istiod and reads, per replica, the newest push it has sent,
// right before the change is written: a proxy has the change once it
// acknowledges a newer push. Doing this first also means a --wait that
// cannot work fails before anything is written. It takes at most
// --wait-timeout.
func (w *syncWaiter) baseline(ctx context.Context, clients *kube.Clients, plan *routing.Plan, errOut io.Writer) (*istiodSource, error) {
	src := &istiodSource{audience: meshsync.AudienceOf(virtualServicesOf(plan))}
	src.forwards, src.stop = context.WithCancel(ctx)
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	var err error
	if src.replicas, err = w.findIstiod(ctx, clients, errOut); err == nil {
		var all [][]meshsync.Proxy
		if all, err = w.readAll(ctx, clients, src); err == nil {
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

// readSyncVerdict reads every replica and tells which proxies of the
// audience have the change; changed is false when nothing was written, and
// then the proxies need only have acknowledged everything sent to them.
func (w *syncWaiter) readSyncVerdict(ctx context.Context, clients *kube.Clients, src *istiodSource, changed bool) (meshsync.Verdict, error) {
	all, err := w.readAll(ctx, clients, src)
	if err != nil {
		return meshsync.Verdict{}, err
	}
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

// forProxies waits until every proxy that calls the Service has the change,
// or the timeout runs out, asking less often as it goes on.
func (w *syncWaiter) forProxies(ctx context.Context, clients *kube.Clients, src *istiodSource, plan *routing.Plan, out io.Writer) error {
	defer src.stop()
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	started := time.Now()
	interval := waitPollInterval
	var verdict meshsync.Verdict
	var lastErr error
	for {
		v, err := w.readSyncVerdict(ctx, clients, src, plan.Changed())
		if err == nil {
			verdict = v
			if verdict.Done() {
				fmt.Fprintln(out, syncSummary(plan, verdict, time.Since(started), w))
				return nil
			}
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

func (w *syncWaiter) timedOut(plan *routing.Plan, verdict meshsync.Verdict, lastErr, ctxErr error) error {
	what := fmt.Sprintf("waited %s for the proxies calling service %s/%s", w.timeout, plan.Namespace, plan.Service)
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

func syncSummary(plan *routing.Plan, v meshsync.Verdict, took time.Duration, w *syncWaiter) string {
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
