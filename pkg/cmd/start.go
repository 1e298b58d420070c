package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

var startLong = templates.LongDesc(`
	Start a canary of a Service: add DestinationRule subsets for the stable and
	canary versions where none selects them, and split the managed routes of
	every VirtualService that routes the Service between stable and canary.
	Creates a VirtualService and DestinationRule named after the Service when
	none exists.

	The versions are the Deployments whose pods the Service selects, told apart
	by a version label: --version-label, else version, app.kubernetes.io/version,
	service.istio.io/canonical-revision, else the one label whose values differ.
	Stable is the version the routes send traffic to today (else the oldest
	Deployment); the canary is the other one, or --canary when there are several.

	With --routing-api gateway-api (or by default where the Gateway API routes the
	Service already, in ambient namespaces, behind a waypoint), the split is
	written in the backendRefs of HTTPRoutes, GRPCRoutes, TCPRoutes and TLSRoutes,
	to one Service per version (SERVICE-VERSION, created where none selects the
	version). Both APIs routing one Service is refused.`)

var startExample = templates.Examples(`
	# Send 10% of reviews' traffic to its other version
	kubectl canary start reviews

	# Bookinfo has three versions: pick the canary, start at 5%
	kubectl canary start reviews --canary v3 --weight 5

	# Name the canary by its Deployment, and manage only the route named default
	kubectl canary start reviews --canary-deployment reviews-v3 --route default

	# Dark launch: only testers (header x-tester: yes) reach the canary
	kubectl canary start reviews --weight 0 --header x-tester=yes

	# External traffic for www.example.com through the ingress gateway too
	kubectl canary start productpage --gateway istio-system/public-gateway --host www.example.com

	# 5% of users, who then stay on the canary, and a shadow copy of 20% of traffic
	kubectl canary start reviews --weight 5 --sticky --mirror 20

	# Split with the Kubernetes Gateway API (HTTPRoute, a Service per version)
	kubectl canary start reviews --routing-api gateway-api

	# See what would change without writing anything
	kubectl canary start reviews --dry-run`)

// StartOptions holds the flags of `kubectl canary start`.
type StartOptions struct {
	*changeOptions
	startFlags
}

// startFlags are the flags of start that choose the versions and shape the
// new canary's routing: start takes them, and run for the start of its
// first step.
type startFlags struct {
	matches    matchFlags
	mirror     mirrorFlag
	gateway    string
	hosts      []string
	routingAPI routingAPIFlag
}

func newCmdStart(g *globalOptions) *cobra.Command {
	o := &StartOptions{changeOptions: newChangeOptions(g, routing.ActionStart)}
	cmd := &cobra.Command{
		Use:     "start SERVICE [--canary VERSION | --canary-deployment NAME] [--weight PERCENT]",
		Short:   "Start a canary: split a Service's traffic between its stable and canary versions",
		Long:    startLong,
		Example: startExample,
		Args:    exactlyOneService,
		RunE:    runVerb(o),
	}
	cmd.Flags().IntVar(&o.intent.Weight, "weight", 10, "Share of traffic for the canary, in percent (0-100).")
	o.startFlags.addStartFlags(cmd, &o.intent)
	o.addFlags(cmd)
	return cmd
}

// addStartFlags adds the flags that fill intent's versions and routing.
func (f *startFlags) addStartFlags(cmd *cobra.Command, intent *routing.Intent) {
	cmd.Flags().StringVar(&intent.Canary, "canary", "", "Version label value of the canary; needed when the Service has more than two versions.")
	cmd.Flags().StringVar(&intent.CanaryDeployment, "canary-deployment", "", "Deployment of the canary, instead of --canary.")
	cmd.Flags().StringVar(&intent.Stable, "stable", "", "Version label value of the stable version, when the routes do not say it.")
	cmd.Flags().StringVar(&intent.VersionLabel, "version-label", "", "Pod label that tells the versions apart, instead of inferring it.")
	cmd.Flags().StringArrayVar(&intent.Routes, "route", nil, "Manage only the named routes (repeatable); by default every route that sends traffic to the stable version alone.")
	cmd.Flags().BoolVar(&intent.Sticky, "sticky", false, "Keep a client that reached the canary on it: the canary sets a cookie that later requests are routed by.")
	f.matches.addFlags(cmd)
	f.mirror.addFlag(cmd)
	cmd.Flags().StringVar(&f.gateway, "gateway", "", "Ingress Gateway (NAMESPACE/NAME; Istio's, or the Gateway API's with --routing-api gateway-api) whose external traffic for --host gets the same split.")
	cmd.Flags().StringArrayVar(&f.hosts, "host", nil, "External host served by --gateway (repeatable).")
	f.routingAPI.addFlag(cmd)
}

// startFlagNames are the flags startFlags adds.
var startFlagNames = []string{"canary", "canary-deployment", "stable", "version-label", "route", "sticky", "header", "cookie", "mirror", "gateway", "host", "routing-api"}

// Complete reads SERVICE, the match rules and the mirror.
func (o *StartOptions) Complete(cmd *cobra.Command, args []string) error {
	if err := o.startFlags.completeStart(cmd, &o.intent); err != nil {
		return err
	}
	return o.changeOptions.Complete(cmd, args)
}

// completeStart reads the match rules, the mirror, the routing API and the
// gateway into intent.
func (f *startFlags) completeStart(cmd *cobra.Command, intent *routing.Intent) error {
	var err error
	if intent.Matches, err = f.matches.rules(); err != nil {
		return err
	}
	if intent.Mirror, err = f.mirror.intent(cmd); err != nil {
		return err
	}
	if intent.RoutingAPI, err = f.routingAPI.api(); err != nil {
		return err
	}
	switch {
	case f.gateway != "" && len(f.hosts) == 0:
		return fmt.Errorf("--gateway %s needs at least one --host: the external host names whose traffic gets the split", f.gateway)
	case f.gateway == "" && len(f.hosts) > 0:
		return fmt.Errorf("--host needs --gateway NAMESPACE/NAME: the Istio ingress gateway the host enters through")
	case f.gateway != "":
		namespace, name, err := parseGatewayRef(f.gateway)
		if err != nil {
			return err
		}
		for _, h := range f.hosts {
			if h == "" || strings.Contains(h, "*") {
				return fmt.Errorf("--host %q: give an exact host name such as www.example.com; a wildcard would claim hosts the canary does not serve", h)
			}
		}
		intent.Gateway = &routing.GatewayIntent{Namespace: namespace, Name: name, Hosts: f.hosts}
	}
	return nil
}

// Validate checks the flags before the cluster is read.
func (o *StartOptions) Validate() error {
	return checkPercent("--weight", o.intent.Weight, "the canary's share")
}

func exactlyOneService(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s needs exactly one SERVICE argument, got %d; see kubectl canary %s --help", cmd.Name(), len(args), cmd.Name())
	}
	return nil
}
