package cmd

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
)

// waitFlags are the --wait flags of every mutating verb.
type waitFlags struct {
	enabled   bool
	timeout   time.Duration
	namespace string
	service   string
	port      int
	via       string
}

func (w *waitFlags) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&w.enabled, "wait", false, "After writing, wait until istiod reports that the proxies calling the Service (sidecars, and ingress gateways for gateway routes) have acknowledged the new routing. Reads the sync status of every istiod replica through the API server's proxy (--istiod-namespace, --istiod-service, --istiod-port).")
	fl.DurationVar(&w.timeout, "wait-timeout", time.Minute, "How long --wait waits for the proxies; the change stays written when it runs out.")
	fl.StringVar(&w.namespace, "istiod-namespace", istioNamespace, "Namespace of istiod's Service, for --wait.")
	fl.StringVar(&w.service, "istiod-service", "istiod", "Name of istiod's Service, for --wait.")
	fl.IntVar(&w.port, "istiod-port", 15014, "Port of istiod's Service that serves /debug/syncz (its monitoring port), for --wait.")
	fl.StringVar(&w.via, "istiod-via", canary.ViaAuto, `How --wait reaches istiod: "proxy" (the API server's service or pod proxy), "port-forward" (the API server's port forwarding to each replica's pod, which istiod answers when it turns proxied requests away, as it does since Istio 1.11 unless they come with an Istio token), or "auto" (the proxy, then port-forward if istiod refuses).`)
}

// validate rejects --wait where there is nothing to wait for.
func (w *waitFlags) validate(dryRun bool) error {
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
	case canary.ViaAuto, canary.ViaProxy, canary.ViaPortForward:
		return nil
	}
	return fmt.Errorf("--istiod-via %q is not one of auto, proxy, port-forward", w.via)
}

// observer is the engine's observer that carries out --wait, reporting on
// out and warning on the command's ErrOut.
func (w *waitFlags) observer(cluster *canary.Cluster, g *globalOptions, out io.Writer) *canary.SyncWaiter {
	return &canary.SyncWaiter{
		Cluster: cluster, Timeout: w.timeout,
		Namespace: w.namespace, Service: w.service, Port: w.port, Via: w.via,
		Forward: g.portForward, ReadTooSoon: g.syncReadTooSoon,
		Warn:   func(message string) { fmt.Fprintf(g.ErrOut, "Warning: %s\n", message) },
		Synced: func(summary string) { fmt.Fprintln(out, summary) },
	}
}
