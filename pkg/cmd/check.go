package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// CheckOptions holds the flags of `kubectl canary check`.
type CheckOptions struct {
	*globalOptions
	namespace    string
	service      string
	versionLabel string
	// canary, canaryDeployment, stable and routes are start's: check plans
	// the start they describe.
	canary           string
	canaryDeployment string
	stable           string
	routes           []string
	minAvailable     int32
	output           *outputFlags
	printer          printers.ResourcePrinter
	manifests        manifestFlags
	routingAPI       routingAPIFlag
}

func newCmdCheck(g *globalOptions) *cobra.Command {
	o := &CheckOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "check SERVICE",
		Short: "Check a Service and its routing before (or during) a canary",
		Long: withExitStatuses(templates.LongDesc(`
			Run the preflight check that start, weight, route and promote run
			before they write, and, with no canary in progress, plan the start
			that --canary, --canary-deployment, --stable and --route describe
			(writing nothing): each reason start would refuse is a finding, so
			"ready for a canary" means start would go ahead. It checks the canary's readiness, subsets that select no
			pods, routes to undefined subsets, weights that do not sum to 100,
			several VirtualServices or DestinationRules for one host, and routing
			objects another tool (Flagger, Argo Rollouts, a Kiali wizard) manages.
			Each finding names its object and what to do. Every finding is
			reported at once: a Service whose versions cannot be told apart (a
			single Deployment, say) still has its routing checked. Exits 3 when a
			finding is an error.`)),
		Example: templates.Examples(`
			# Is reviews ready for a canary?
			kubectl canary check reviews

			# Would kubectl canary start reviews --canary v3 go ahead?
			kubectl canary check reviews --canary v3

			# The same, for scripts
			kubectl canary check reviews -o json

			# The routing as the manifests in Git give it
			kubectl canary check reviews -f deploy/ --local`),
		Args: exactlyOneService,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.versionLabel, "version-label", "", "Pod label that tells the versions apart, instead of inferring it.")
	cmd.Flags().StringVar(&o.canary, "canary", "", "Version label value of the canary, as start would be given it.")
	cmd.Flags().StringVar(&o.canaryDeployment, "canary-deployment", "", "Deployment of the canary, instead of --canary.")
	cmd.Flags().StringVar(&o.stable, "stable", "", "Version label value of the stable version, as start would be given it.")
	cmd.Flags().StringArrayVar(&o.routes, "route", nil, "Check a start that manages only the named routes (repeatable).")
	cmd.Flags().Int32Var(&o.minAvailable, "min-available", 1, "Fewest available canary replicas that may take traffic.")
	o.routingAPI.addFlag(cmd)
	o.output = addOutputFlags(cmd, "a table", true)
	o.manifests.addFlags(cmd)
	return cmd
}

// Complete reads SERVICE, the namespace and the output format.
func (o *CheckOptions) Complete(args []string) error {
	o.service = args[0]
	if _, err := o.routingAPI.api(); err != nil {
		return err
	}
	var err error
	if o.printer, err = o.output.printer(); err != nil {
		return err
	}
	o.namespace, err = o.conn.Namespace()
	return err
}

// Validate rejects -R and --local without -f, and -f with --contexts.
func (o *CheckOptions) Validate() error {
	if err := o.contextFlags.validate(); err != nil {
		return err
	}
	if o.contextFlags.enabled() && o.manifests.enabled() {
		return fmt.Errorf("-f checks manifest files, --contexts the clusters; give one of them")
	}
	return o.manifests.validate()
}

// Run checks the Service and prints the findings.
func (o *CheckOptions) Run(ctx context.Context) error {
	findings, err := o.check(ctx)
	if err != nil {
		return err
	}
	findings = o.terms.findings(findings)
	if o.printer != nil {
		doc := CanaryCheck{TypeMeta: typeMeta(KindCanaryCheck), Metadata: canaryMeta(o.namespace, o.service), Service: o.namespace + "/" + o.service, Findings: findings}
		if err := printDocument(o.printer, doc, o.Out); err != nil {
			return err
		}
	} else if len(findings) == 0 {
		fmt.Fprintf(o.Out, "service %s/%s: no findings, ready for a canary\n", o.namespace, o.service)
	} else {
		w := printers.GetNewTabWriter(o.Out)
		if o.output.headers() {
			fmt.Fprintln(w, "SEVERITY\tOBJECT\tFINDING")
		}
		for _, f := range findings {
			fmt.Fprintf(w, "%s\t%s\t%s\n", f.Severity, f.Object, f.Message)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if n := routing.Errors(findings); n > 0 {
		return &findingsError{namespace: o.namespace, service: o.service, errors: n}
	}
	return nil
}

// check reads the Service and its routing from the cluster, or from the
// files with -f, and checks them.
func (o *CheckOptions) check(ctx context.Context) ([]routing.Finding, error) {
	intent, opts := o.intent(), o.checkOptions()
	if o.contextFlags.enabled() {
		return o.checkOnClusters(ctx)
	}
	if o.manifests.enabled() {
		files, err := o.manifests.store(o.globalOptions, o.namespace)
		if err != nil {
			return nil, err
		}
		findings, notes, err := files.CheckService(ctx, o.namespace, o.service, intent, opts)
		for _, note := range notes {
			fmt.Fprintf(o.ErrOut, "Note: %s\n", note)
		}
		return findings, err
	}
	cluster, err := o.conn.Cluster()
	if err != nil {
		return nil, err
	}
	return cluster.CheckService(ctx, o.namespace, o.service, intent, opts)
}

// intent is the start check plans: the version flags as start takes them.
func (o *CheckOptions) intent() routing.Intent {
	return routing.Intent{
		VersionLabel: o.versionLabel, ClusterDomain: o.clusterDomain, RoutingAPI: routing.RoutingAPI(o.routingAPI.value),
		Canary: o.canary, CanaryDeployment: o.canaryDeployment, Stable: o.stable, Routes: o.routes,
	}
}

// checkOptions run the preflight with start's planning, so that "ready for
// a canary" means start would go ahead.
func (o *CheckOptions) checkOptions() routing.CheckOptions {
	return routing.CheckOptions{MinAvailable: o.minAvailable, Drift: true, PlanStart: true}
}
