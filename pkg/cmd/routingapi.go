package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// routingAPIs are the values of --routing-api, the default first.
var routingAPIs = []routing.RoutingAPI{routing.RoutingAPIAuto, routing.RoutingAPIIstio, routing.RoutingAPIGatewayAPI}

// routingAPIFlag is --routing-api: the API a new canary's routing is
// written in. A running canary keeps the API it was started on.
type routingAPIFlag struct{ value string }

func (f *routingAPIFlag) addFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.value, "routing-api", string(routing.RoutingAPIAuto),
		"Routing API of the canary: auto (the API that routes the Service already; else Istio's, or the Gateway API in ambient namespaces, behind a waypoint or without Istio's CRDs), istio (VirtualService and DestinationRule) or gateway-api (HTTPRoute, GRPCRoute, TCPRoute, TLSRoute with a Service per version).")
	_ = cmd.RegisterFlagCompletionFunc("routing-api", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		choices := []cobra.Completion{
			cobra.CompletionWithDesc(string(routing.RoutingAPIAuto), "the API that routes the Service already"),
			cobra.CompletionWithDesc(string(routing.RoutingAPIIstio), "VirtualService and DestinationRule"),
			cobra.CompletionWithDesc(string(routing.RoutingAPIGatewayAPI), "Kubernetes Gateway API routes"),
		}
		return choices, cobra.ShellCompDirectiveNoFileComp
	})
}

// api is the value, checked.
func (f *routingAPIFlag) api() (routing.RoutingAPI, error) {
	for _, api := range routingAPIs {
		if f.value == string(api) {
			return api, nil
		}
	}
	return "", fmt.Errorf("--routing-api %q is no routing API; pass %s, %s or %s", f.value, routing.RoutingAPIAuto, routing.RoutingAPIIstio, routing.RoutingAPIGatewayAPI)
}
