package cmd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/util/retry"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// conflictBackoff bounds how often a command re-reads and re-plans after
// losing a race with another writer (about 5 s in all).
var conflictBackoff = wait.Backoff{Steps: 8, Duration: 20 * time.Millisecond, Factor: 2, Jitter: 0.2}

// changeOptions is the part every mutating verb shares: read the cluster,
// plan the intent, then diff, print or write the plan.
type changeOptions struct {
	*globalOptions
	namespace string
	service   string
	intent    routing.Intent
	dryRun    cmdutil.DryRunStrategy
	output    *outputFlag
	printer   printers.ResourcePrinter
	// force and minAvailable tune the preflight check.
	force        bool
	minAvailable int32
	// amend, when set, changes a computed plan before it is checked and
	// written (run records its progress in the state this way).
	amend func(*routing.Plan) error
	wait  syncWaiter
	// written names the objects this run has written, across the retries
	// that follow a conflict, for the error of a refused later write.
	written []string
}

func newChangeOptions(g *globalOptions, action routing.Action) *changeOptions {
	return &changeOptions{globalOptions: g, intent: routing.Intent{Action: action}}
}

func (o *changeOptions) addFlags(cmd *cobra.Command) {
	cmdutil.AddDryRunFlag(cmd)
	cmd.Flags().Lookup("dry-run").Usage = `"client" (or no value) prints a diff of what would change and writes nothing; "server" also sends the writes with dryRun=All so that the API server validates them.`
	o.output = addOutputFlag(cmd, "a summary")
	cmd.Flags().Lookup("output").Usage = "Print the objects as they must become (with --dry-run) or as written, in this format: yaml or json."
	if o.intent.Action != routing.ActionAbort {
		// Abort is the way back and must always work: it is never checked.
		cmd.Flags().BoolVar(&o.force, "force", false, "Write even when the preflight check finds errors (an unready canary, objects another tool manages, broken routes).")
		cmd.Flags().Int32Var(&o.minAvailable, "min-available", 1, "Fewest available canary replicas that may take traffic.")
	}
	o.wait.addFlags(cmd)
	if o.portForward != nil {
		o.wait.forward = o.portForward
	}
}

// Complete reads SERVICE, the namespace and the output flags.
func (o *changeOptions) Complete(cmd *cobra.Command, args []string) error {
	o.service = args[0]
	o.intent.ClusterDomain = o.clusterDomain
	var err error
	if o.namespace, err = o.factory.Namespace(); err != nil {
		return err
	}
	if o.dryRun, err = dryRunStrategy(cmd); err != nil {
		return err
	}
	if o.printer, err = o.output.printer(); err != nil {
		return err
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

// outcome is one object of a plan once the command has acted on it.
type outcome struct {
	change routing.Change
	// result is the object as written (or as the server would write it).
	result *unstructured.Unstructured
}

// Validate has nothing to check for verbs whose only argument is SERVICE.
func (o *changeOptions) Validate() error { return nil }

// Run carries out the intent against the cluster.
func (o *changeOptions) Run(cmd *cobra.Command) error { return o.run(cmd.Context()) }

// run reads, plans and writes, starting over when another writer changed an
// object in between, so neither that writer's change nor the intent is lost.
func (o *changeOptions) run(ctx context.Context) error {
	o.written = nil
	clients, err := o.factory.Clients()
	if err != nil {
		return err
	}
	var plan *routing.Plan
	var outcomes []outcome
	// istiod, for --wait, with its newest pushes right before the write.
	var istiod *istiodSource
	permissionsChecked := false
	err = retry.OnError(conflictBackoff, kube.IsRetryable, func() error {
		// Start looks for VirtualServices of other namespaces that route the
		// Service and records them; the commands after it read just those.
		starting := o.intent.Action == routing.ActionStart
		opts := kube.SnapshotOptions{OtherNamespaces: starting, ClusterDomain: o.clusterDomain, WarnIfNotAllowed: starting}
		if g := o.intent.Gateway; g != nil {
			opts.Gateways = append(opts.Gateways, types.NamespacedName{Namespace: g.Namespace, Name: g.Name})
		}
		snap, err := clients.ReadSnapshot(ctx, o.namespace, o.service, opts)
		if err != nil {
			return err
		}
		if plan, err = routing.Compute(*snap, o.intent); err != nil {
			return err
		}
		if o.amend != nil {
			if err := o.amend(plan); err != nil {
				return err
			}
		}
		if err := o.preflight(snap, plan); err != nil {
			return err
		}
		if o.dryRun == cmdutil.DryRunClient {
			outcomes = plannedOutcomes(plan)
			return nil
		}
		// Asking first matters only when a refusal could come after another
		// write; a lone write that is refused has changed nothing. start
		// runs every write as a server dry run first, which the API server
		// authorises like the real one, so it needs no question either.
		if !permissionsChecked && changedCount(plan) > 1 && o.dryRun == cmdutil.DryRunNone && o.intent.Action != routing.ActionStart {
			if err := clients.CheckPermissions(ctx, plan.Changes); err != nil {
				return err
			}
			permissionsChecked = true
		}
		// Read once, as late as possible: after start's server dry run,
		// right before the first write. A retry after a conflict may follow
		// a write, and the first baseline stays a lower bound for it.
		beforeWrites := func() error {
			if !o.wait.enabled || o.dryRun != cmdutil.DryRunNone || istiod != nil {
				return nil
			}
			istiod, err = o.wait.baseline(ctx, clients, plan, o.ErrOut)
			return err
		}
		outcomes, err = o.write(ctx, clients, plan, beforeWrites)
		return err
	})
	if err != nil && istiod != nil {
		istiod.stop() // no wait follows
	}
	if kube.IsRetryable(err) {
		return fmt.Errorf("other writers kept changing the routing objects of service %s/%s; nothing more was written, run the command again: %w", o.namespace, o.service, err)
	}
	if err != nil {
		return err
	}
	if err := o.report(plan, outcomes); err != nil || !o.wait.enabled {
		return err
	}
	out := o.Out
	if o.printer != nil {
		out = o.ErrOut // keep -o yaml|json parseable
	}
	return o.wait.forProxies(ctx, clients, istiod, plan, out)
}

// preflight runs the checks before a change is written: errors stop the
// command unless --force, warnings are printed. Abort is never stopped, and
// a plan that writes nothing needs no check.
func (o *changeOptions) preflight(snap *routing.Snapshot, plan *routing.Plan) error {
	if o.intent.Action == routing.ActionAbort || !plan.Changed() {
		return nil
	}
	st := plan.State
	idle := st.Weight == 0 && len(st.Matches) == 0 && st.Mirror == 0 && !st.Sticky && o.intent.Action != routing.ActionPromote
	findings := routing.Check(*snap, o.intent, routing.CheckOptions{MinAvailable: o.minAvailable, IdleCanary: idle})
	var errs []string
	for _, f := range findings {
		if f.Severity == routing.SeverityError && !o.force {
			errs = append(errs, fmt.Sprintf("  %s: %s", f.Object, f.Message))
			continue
		}
		fmt.Fprintf(o.ErrOut, "Warning: %s: %s\n", f.Object, f.Message)
	}
	if len(errs) > 0 {
		return fmt.Errorf("preflight check of service %s/%s failed, nothing was changed:\n%s\nFix these, or pass --force to go ahead anyway (kubectl canary check %s shows every finding)", o.namespace, o.service, strings.Join(errs, "\n"), o.service)
	}
	return nil
}

func plannedOutcomes(plan *routing.Plan) []outcome {
	out := make([]outcome, 0, len(plan.Changes))
	for _, c := range plan.Changes {
		out = append(out, outcome{change: c, result: c.Desired})
	}
	return out
}

// write applies a plan in its order: subsets, then routes, then pruning.
// A start that writes several objects first sends them all as a server dry
// run, so a change the API server would reject (schema, admission) is
// refused before anything is stored, not halfway.
// beforeWrites runs between that dry run and the first write.
func (o *changeOptions) write(ctx context.Context, clients *kube.Clients, plan *routing.Plan, beforeWrites func() error) ([]outcome, error) {
	serverDryRun := o.dryRun == cmdutil.DryRunServer
	if !serverDryRun && o.intent.Action == routing.ActionStart && changedCount(plan) > 1 {
		if _, err := o.writeAll(ctx, clients, plan, true); err != nil {
			return nil, err
		}
	}
	if err := beforeWrites(); err != nil {
		return nil, err
	}
	return o.writeAll(ctx, clients, plan, serverDryRun)
}

func (o *changeOptions) writeAll(ctx context.Context, clients *kube.Clients, plan *routing.Plan, serverDryRun bool) ([]outcome, error) {
	var out []outcome
	for _, c := range plan.Changes {
		if !c.Changed() {
			out = append(out, outcome{change: c, result: c.Live})
			continue
		}
		result, err := clients.Write(ctx, c, serverDryRun)
		if err != nil {
			if kube.IsRetryable(err) {
				return nil, err
			}
			verb := "update"
			if c.Live == nil {
				verb = "create"
			}
			if apierrors.IsForbidden(err) && len(o.written) > 0 {
				// Permissions changed since they were checked. The writes
				// are ordered so that stopping between two is safe.
				return nil, fmt.Errorf("not allowed to %s %s in namespace %s, after %s was written (traffic only goes to subsets that exist); ask for this permission (see the RBAC section of the README) and run the same command again to finish: %w", verb, kube.ResourceOf(c.Desired), c.Desired.GetNamespace(), strings.Join(o.written, " and "), err)
			}
			if apierrors.IsForbidden(err) {
				return nil, fmt.Errorf("not allowed to %s %s in namespace %s; nothing was changed. Ask for this permission (see the RBAC section of the README): %w", verb, kube.ResourceOf(c.Desired), c.Desired.GetNamespace(), err)
			}
			if serverDryRun {
				return nil, fmt.Errorf("the API server would reject the %s of %s %s/%s (found by a server dry run; nothing was written): %w", verb, c.Desired.GetKind(), c.Desired.GetNamespace(), c.Desired.GetName(), err)
			}
			return nil, fmt.Errorf("cannot %s %s %s/%s: %w", verb, c.Desired.GetKind(), c.Desired.GetNamespace(), c.Desired.GetName(), err)
		}
		out = append(out, outcome{change: c, result: result})
		if name := fmt.Sprintf("%s %s/%s", c.Desired.GetKind(), c.Desired.GetNamespace(), c.Desired.GetName()); !serverDryRun && !slices.Contains(o.written, name) {
			o.written = append(o.written, name)
		}
	}
	return out, nil
}

func changedCount(plan *routing.Plan) int {
	n := 0
	for _, c := range plan.Changes {
		if c.Changed() {
			n++
		}
	}
	return n
}

func (o *changeOptions) report(plan *routing.Plan, outcomes []outcome) error {
	for _, w := range plan.Warnings {
		fmt.Fprintf(o.ErrOut, "Warning: %s\n", w)
	}
	if o.printer != nil {
		list := &unstructured.UnstructuredList{Object: map[string]interface{}{"apiVersion": "v1", "kind": "List"}}
		for _, oc := range outcomes {
			list.Items = append(list.Items, *oc.result)
		}
		return o.printer.PrintObj(list, o.Out)
	}
	suffix := ""
	switch o.dryRun {
	case cmdutil.DryRunClient:
		suffix = " (dry run)"
	case cmdutil.DryRunServer:
		suffix = " (server dry run)"
	}
	if o.dryRun != cmdutil.DryRunNone {
		if err := printDiff(o.IOStreams, outcomes); err != nil {
			return err
		}
	} else {
		for _, oc := range outcomes {
			verb := "configured"
			switch {
			case oc.change.Live == nil:
				verb = "created"
			case !oc.change.Changed():
				verb = "unchanged"
			}
			fmt.Fprintf(o.Out, "%s.%s/%s %s\n", strings.ToLower(oc.change.Desired.GetKind()), kube.IstioNetworkingGroup, oc.change.Desired.GetName(), verb)
		}
	}
	fmt.Fprintf(o.Out, "%s%s\n", summary(plan, o.intent.Action), suffix)
	return nil
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
