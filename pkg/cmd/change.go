package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/printers"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// changeOptions is the part every mutating verb shares: the flags of a
// change, given to the engine, and the report of what it did.
type changeOptions struct {
	*globalOptions
	namespace string
	service   string
	intent    routing.Intent
	dryRun    cmdutil.DryRunStrategy
	output    *outputFlags
	printer   printers.ResourcePrinter
	// force and minAvailable tune the preflight check.
	force        bool
	minAvailable int32
	wait         waitFlags
	manifests    manifestFlags
	// files is the store of the GitOps mode (-f), nil for the cluster.
	files *canary.Files
}

func newChangeOptions(g *globalOptions, action routing.Action) *changeOptions {
	return &changeOptions{globalOptions: g, intent: routing.Intent{Action: action}}
}

func (o *changeOptions) addFlags(cmd *cobra.Command) {
	cmdutil.AddDryRunFlag(cmd)
	cmd.Flags().Lookup("dry-run").Usage = `"client" (or no value) prints a diff of what would change and writes nothing; "server" also sends the writes with dryRun=All so that the API server validates them.`
	o.output = addOutputFlags(cmd, "a summary", false)
	cmd.Flags().Lookup("output").Usage = "Print the objects as they must become (with --dry-run) or as written, in this format, one of: " + strings.Join(o.output.formats(), ", ") + "."
	if o.intent.Action != routing.ActionAbort {
		// Abort is the way back and must always work: it is never checked.
		cmd.Flags().BoolVar(&o.force, "force", false, "Write even when the preflight check finds errors (an unready canary, objects another tool manages, broken routes).")
		cmd.Flags().Int32Var(&o.minAvailable, "min-available", 1, "Fewest available canary replicas that may take traffic.")
	}
	o.wait.addFlags(cmd)
	o.manifests.addFlags(cmd)
}

// Complete reads SERVICE, the namespace and the output flags.
func (o *changeOptions) Complete(cmd *cobra.Command, args []string) error {
	o.service = args[0]
	o.intent.ClusterDomain = o.clusterDomain
	var err error
	if o.namespace, err = o.conn.Namespace(); err != nil {
		return err
	}
	if o.dryRun, err = dryRunStrategy(cmd); err != nil {
		return err
	}
	if o.printer, err = o.output.printer(); err != nil {
		return err
	}
	if err := o.manifests.validateChange(o.dryRun, o.wait.enabled); err != nil {
		return err
	}
	if err := o.contextFlags.validate(); err != nil {
		return err
	}
	if o.contextFlags.enabled() && o.manifests.enabled() {
		return fmt.Errorf("-f edits manifest files, --contexts the clusters; with GitOps, each cluster's tool applies the files: leave out --contexts")
	}
	return o.wait.validate(o.dryRun != cmdutil.DryRunNone)
}

// dryRunStrategy reads --dry-run; a bare --dry-run means client, without
// the deprecation warning kubectl prints for it.
func dryRunStrategy(cmd *cobra.Command) (cmdutil.DryRunStrategy, error) {
	switch value := cmd.Flag("dry-run").Value.String(); value {
	case "unchanged", "client", "true":
		return cmdutil.DryRunClient, nil
	case "server":
		return cmdutil.DryRunServer, nil
	case "none", "false", "":
		return cmdutil.DryRunNone, nil
	default:
		return cmdutil.DryRunNone, fmt.Errorf(`--dry-run %q is not supported; use "client" or "server"`, value)
	}
}

// Validate has nothing to check for verbs whose only argument is SERVICE.
func (o *changeOptions) Validate() error { return nil }

// Run has the engine carry out the intent, the report and --wait watching.
func (o *changeOptions) Run(cmd *cobra.Command) error {
	ctx := cmd.Context()
	if o.contextFlags.enabled() {
		return o.runOnClusters(ctx)
	}
	if o.manifests.enabled() {
		files, err := o.manifests.store(o.globalOptions, o.namespace)
		if err != nil {
			return err
		}
		o.files = files
		_, err = o.engine(files).Change(ctx, o.request(), &reportPrinter{o})
		return err
	}
	cluster, err := o.conn.Cluster()
	if err != nil {
		return err
	}
	observers := []canary.Observer{&reportPrinter{o}, o.routeStatus(cluster)}
	if o.wait.enabled {
		observers = append(observers, o.wait.observer(cluster, o.globalOptions, o.waitOut()))
	}
	_, err = o.engine(cluster).Change(ctx, o.request(), observers...)
	return err
}

// routeStatusTimeout bounds, without --wait, the wait for the controllers'
// status of written Gateway API routes that had one before.
const routeStatusTimeout = 2 * time.Second

// routeStatus reads back the written Gateway API routes' status; --wait
// waits for them to be accepted, then for the proxies.
func (o *changeOptions) routeStatus(cluster *canary.Cluster) *canary.RouteStatusReader {
	r := &canary.RouteStatusReader{Reread: cluster.Reread, Timeout: routeStatusTimeout, RequireAccepted: o.wait.enabled,
		Warn: func(message string) { fmt.Fprintf(o.ErrOut, "Warning: %s\n", message) }}
	if o.wait.enabled {
		r.Timeout = o.wait.timeout
	}
	return r
}

// engine is the engine writing to cluster, warning on ErrOut.
func (o *changeOptions) engine(store canary.Store) *canary.Engine {
	return &canary.Engine{Store: store, Warn: func(f routing.Finding) {
		fmt.Fprintf(o.ErrOut, "Warning: %s: %s\n", f.Object, o.terms.finding(f))
	}}
}

// request is the change the flags ask for.
func (o *changeOptions) request() canary.Request {
	return canary.Request{
		Namespace: o.namespace, Service: o.service, Intent: o.intent, DryRun: dryRunOf(o.dryRun),
		Force: o.force, MinAvailable: o.minAvailable,
	}
}

// waitOut is where --wait reports: stdout, unless -o yaml|json keeps it
// parseable.
func (o *changeOptions) waitOut() io.Writer {
	if o.printer != nil {
		return o.ErrOut
	}
	return o.Out
}

func dryRunOf(s cmdutil.DryRunStrategy) canary.DryRun {
	switch s {
	case cmdutil.DryRunClient:
		return canary.ClientDryRun
	case cmdutil.DryRunServer:
		return canary.ServerDryRun
	}
	return canary.NoDryRun
}

// reportPrinter prints what a change did, once it is done.
type reportPrinter struct{ o *changeOptions }

func (r *reportPrinter) BeforeWrite(context.Context, *routing.Plan) error { return nil }

func (r *reportPrinter) AfterWrite(_ context.Context, result *canary.Result, err error) error {
	if err != nil {
		return nil
	}
	return r.o.report(result)
}

func (o *changeOptions) report(result *canary.Result) error {
	plan := result.Plan
	for _, w := range plan.Warnings {
		fmt.Fprintf(o.ErrOut, "Warning: %s\n", w)
	}
	if o.printer != nil {
		// Standard output holds the objects; what the change wrote over
		// is still said.
		for _, d := range plan.Replaced {
			fmt.Fprintf(o.ErrOut, "Note: %s\n", replacedText(d, plan.State, result.Request.DryRun != canary.NoDryRun))
		}
		var objects []unstructured.Unstructured
		for _, oc := range result.Outcomes {
			// The objects as they must become: a deleted one is no more.
			if !oc.Change.Delete {
				objects = append(objects, *oc.Object)
			}
		}
		if err := printObjects(o.printer, objects, o.Out); err != nil {
			return err
		}
		printPreStartShares(o.ErrOut, plan, o.terms.target)
		return nil
	}
	suffix := ""
	switch result.Request.DryRun {
	case canary.ClientDryRun:
		suffix = " (dry run)"
	case canary.ServerDryRun:
		suffix = " (server dry run)"
	}
	switch {
	case o.files != nil:
		if err := o.reportFiles(result); err != nil {
			return err
		}
	case result.Request.DryRun != canary.NoDryRun:
		if err := printDiff(o.IOStreams, result.Outcomes); err != nil {
			return err
		}
	default:
		for _, oc := range result.Outcomes {
			fmt.Fprintf(o.Out, "%s %s\n", resourceName(oc.Change.Desired), outcomeVerb(oc))
		}
	}
	for _, d := range plan.Replaced {
		fmt.Fprintln(o.Out, replacedText(d, plan.State, result.Request.DryRun != canary.NoDryRun))
	}
	fmt.Fprintf(o.Out, "%s%s\n", summary(plan, result.Request.Intent.Action), suffix)
	printPreStartShares(o.Out, plan, o.terms.target)
	return nil
}

// replacedText says what a change wrote over of the live routing, so that
// its summary, which states the split as written, never hides that the
// split was another one a moment before.
func replacedText(d routing.Drift, st routing.State, dryRun bool) string {
	where := d.Object
	if d.Route != "" {
		where += " " + d.Route
	}
	if d.What == routing.DriftAddedRouteGone {
		if dryRun {
			return fmt.Sprintf("%s, which the canary added, was gone; it would be added again", where)
		}
		return fmt.Sprintf("%s, which the canary added, was gone; it is added again", where)
	}
	now := "it now sends"
	if dryRun {
		now = "it would send"
	}
	return fmt.Sprintf("%s sent %s, not the recorded %s (changed by someone else); %s %s", where, d.Live, d.Recorded, now, st.SplitText())
}

// reportFiles prints, in the GitOps mode, the diff of the files (dry run)
// or each object with the file it was written to.
func (o *changeOptions) reportFiles(result *canary.Result) error {
	if result.Request.DryRun != canary.NoDryRun {
		preview, err := o.files.Preview(result.Plan.Changes)
		if err != nil {
			return err
		}
		return printFilesDiff(o.Out, preview)
	}
	for _, oc := range result.Outcomes {
		fmt.Fprintf(o.Out, "%s: %s %s\n", o.files.FileOf(oc.Change.Desired), resourceName(oc.Change.Desired), outcomeVerb(oc))
	}
	return nil
}

// outcomeVerb says what became of an object, in kubectl apply's words.
func outcomeVerb(oc canary.Outcome) string {
	switch {
	case oc.Change.Delete:
		return "deleted"
	case oc.Change.Live == nil:
		return "created"
	case !oc.Change.Changed():
		return "unchanged"
	}
	return "configured"
}

// resourceName names an object as kubectl apply does: kind.group/name.
func resourceName(obj *unstructured.Unstructured) string {
	if group := obj.GroupVersionKind().Group; group != "" {
		return fmt.Sprintf("%s.%s/%s", strings.ToLower(obj.GetKind()), group, obj.GetName())
	}
	return fmt.Sprintf("%s/%s", strings.ToLower(obj.GetKind()), obj.GetName())
}

// summary is the one line that says where the canary stands.
func summary(plan *routing.Plan, action routing.Action) string {
	st := plan.State
	var where string
	switch st.Phase {
	case routing.PhasePromoted:
		where = fmt.Sprintf("%s=%s is stable and gets 100%% of the traffic", st.VersionLabel, st.Stable)
	case routing.PhaseAborted:
		where = fmt.Sprintf("stable %s=%s gets 100%% of the traffic again", st.VersionLabel, st.Stable)
	default:
		where = fmt.Sprintf("canary %s=%s gets %d%%, stable %s=%s gets %d%%", st.VersionLabel, st.Canary, st.Weight, st.VersionLabel, st.Stable, 100-st.Weight)
	}
	verb := map[routing.Action]string{
		routing.ActionStart: "started", routing.ActionWeight: "reweighted", routing.ActionRoute: "rerouted",
		routing.ActionPromote: "promoted", routing.ActionAbort: "aborted",
	}[action]
	if !plan.Changed() {
		verb = "unchanged (" + strings.ToLower(string(st.Phase)) + ")"
	}
	return fmt.Sprintf("canary %s/%s %s: %s", plan.Namespace, plan.Service, verb, where)
}
