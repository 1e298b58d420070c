// Package cmd holds one thin command per verb of `kubectl canary`. Each has
// its own Options with Complete, Validate and Run; the routing decisions
// live in pkg/routing, and pkg/canary carries them out.
package cmd

import (
	"flag"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	// Before kubectl's packages initialise: see the package's comment.
	_ "github.com/kubectl-canary/kubectl-canary/pkg/kubectltext"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

var rootLong = templates.LongDesc(`
	Run Istio canary releases of plain Kubernetes Deployments.

	kubectl canary sends a small, controlled share of a Service's traffic to a
	new version, then promotes it or rolls it back by changing Istio routing
	only: VirtualServices and DestinationRules are created or patched in place,
	keeping every route and field the plugin does not own. Deployments are never
	edited, scaled or restarted. The canary's state lives in annotations on the
	routing objects, so everyone sees the same canary.`)

var rootExample = templates.Examples(`
	# Send 10% of the reviews Service's traffic to its new version
	kubectl canary start reviews

	# Move to half and half, then make the canary the stable version
	kubectl canary weight reviews 50
	kubectl canary promote reviews

	# Or send everything back to the stable version at once
	kubectl canary abort reviews

	# See every canary in the cluster
	kubectl canary status -A`)

// globalOptions are shared by every command: kubectl's connection flags and
// the streams to write to.
type globalOptions struct {
	configFlags     *genericclioptions.ConfigFlags
	conn            *canary.Connection
	clusterDomain   string
	istioAPIVersion string
	genericiooptions.IOStreams
	// portForward, when set, replaces the API server's port forwarding
	// (tests without a kubelet).
	portForward canary.PortForwarder
	// syncReadTooSoon, when set, replaces SyncWaiter's bound on a read of
	// istiod too soon after a write to hold its push (tests whose fake
	// istiod pushes on a later read, however slow the machine).
	syncReadTooSoon time.Duration
	// now, when set, is the clock of the GitOps mode's state annotations
	// (tests compare the files written with golden ones).
	now func() time.Time
	contextFlags
	// prometheusTimeout, when set, bounds each request to a
	// --prometheus-url instead of the kubeconfig's request timeout (tests).
	prometheusTimeout time.Duration
	// contextConnections, when set, replaces the kubeconfig's contexts
	// (tests give fake clusters).
	contextConnections func(contexts []string, all bool) ([]canary.ContextConnection, error)
	// terms words the core's messages with the flags the user gave, set
	// once the flags are parsed.
	terms flagTerms
	// klogFlags hold klog's settings, of which -v is on the command line.
	klogFlags *flag.FlagSet
}

// NewCmdCanary builds `kubectl canary` and its verbs.
func NewCmdCanary(streams genericiooptions.IOStreams) *cobra.Command {
	configFlags := genericclioptions.NewConfigFlags(true)
	timeout := canary.DefaultRequestTimeout
	configFlags.Timeout = &timeout
	o := &globalOptions{configFlags: configFlags, IOStreams: streams}
	o.conn = canary.Connect(configFlags, &o.istioAPIVersion)
	return newCmdCanary(o)
}

// newCmdCanary lets tests inject a connection to fake clients.
func newCmdCanary(o *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:          "canary",
		Short:        "Run Istio canary releases of Deployments from the command line",
		Long:         rootLong,
		Example:      rootExample,
		SilenceUsage: true,
		// Errors are printed once, by main.
		SilenceErrors: true,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl canary",
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			o.terms = flagTerms{target: targetFlags(cmd)}
			return o.setUpLogging(cmd)
		},
	}
	cmd.SetIn(o.In)
	cmd.SetOut(o.Out)
	cmd.SetErr(o.ErrOut)
	if o.configFlags != nil {
		o.configFlags.AddFlags(cmd.PersistentFlags())
	}
	cmd.PersistentFlags().StringVar(&o.istioAPIVersion, "istio-api-version", "", "networking.istio.io version to read and write (v1, v1beta1 or v1alpha3); default: the newest the cluster serves")
	o.contextFlags.addFlags(cmd.PersistentFlags())
	o.addLogFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().StringVar(&o.clusterDomain, "cluster-domain", routing.DefaultClusterDomain, "DNS suffix of the cluster's Service names, for host names the plugin writes")
	cmd.AddCommand(
		newCmdStart(o),
		newCmdWeight(o),
		newCmdRoute(o),
		newCmdPromote(o),
		newCmdAbort(o),
		newCmdStatus(o),
		newCmdCheck(o),
		newCmdAnalyze(o),
		newCmdRun(o),
		newCmdVersion(o),
	)
	addCompletion(cmd, o)
	o.inFlagTermsEverywhere(cmd)
	return cmd
}

// addLogFlags adds kubectl's -v: at 6 and above client-go logs every
// request (method, URL, status, time), at 8 their bodies too, as kubectl
// -v does. klog keeps its settings in the process, so they are set anew
// for every run (setUpLogging).
func (o *globalOptions) addLogFlags(fl *pflag.FlagSet) {
	o.klogFlags = flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(o.klogFlags)
	_ = o.klogFlags.Set("v", "0")
	v := o.klogFlags.Lookup("v")
	v.Usage = "Number for the log level verbosity, as kubectl's: 6 logs every request to the API server (and Prometheus through it), 8 their bodies too. Logs go to standard error."
	fl.AddGoFlag(v)
}

// setUpLogging sends klog's lines to standard error when -v asks for them,
// and nowhere otherwise: at the default level client-go's own lines (retries,
// discovery failures) would only repeat the one error the command reports.
func (o *globalOptions) setUpLogging(cmd *cobra.Command) error {
	if o.klogFlags == nil {
		return nil
	}
	level := "0"
	if v := cmd.Flags().Lookup("v"); v != nil && v.Changed {
		level = v.Value.String()
	}
	for name, value := range map[string]string{"v": level, "logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		if err := o.klogFlags.Set(name, value); err != nil {
			return err
		}
	}
	var out io.Writer = io.Discard
	if level != "0" && o.ErrOut != nil {
		out = o.ErrOut
	}
	klog.SetOutput(out)
	return nil
}
