package cmd

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
)

// pluginBinary is the executable's name, which the completion scripts
// register; the root command's name, canary, is not a program on PATH.
const pluginBinary = "kubectl-canary"

// completionShells are the shells `completion` writes scripts for.
var completionShells = []string{"bash", "zsh", "fish", "powershell"}

// completionTimeout bounds the cluster read behind one <TAB>, so that an
// unreachable cluster costs a short pause instead of a hung shell.
const completionTimeout = 5 * time.Second

var completionLong = templates.LongDesc(`
	Print a shell completion script for kubectl-canary.

	To complete "kubectl canary ..." as you type, nothing from this command is
	needed: kubectl 1.26 or newer completes plugins itself, by running the
	kubectl_complete-canary helper that ships beside the plugin. Load kubectl's
	own completion (see "kubectl completion --help") and put
	kubectl_complete-canary in a folder on your PATH; then verbs, flags,
	namespaces and the Services of the namespace complete.

	The scripts printed here complete the plugin when it is run by its file
	name, kubectl-canary.`)

var completionExample = templates.Examples(`
	# Complete "kubectl-canary ..." in the current bash session
	source <(kubectl canary completion bash)

	# Every new zsh session
	kubectl canary completion zsh > "${fpath[1]}/_kubectl-canary"

	# fish
	kubectl canary completion fish > ~/.config/fish/completions/kubectl-canary.fish

	# PowerShell: add this line to your profile
	kubectl canary completion powershell | Out-String | Invoke-Expression`)

// CompletionOptions holds the arguments of `kubectl canary completion`.
type CompletionOptions struct {
	*globalOptions
	shell          string
	noDescriptions bool
}

// newCmdCompletion replaces cobra's default completion command, whose scripts
// would register a command named canary and whose help would say so.
func newCmdCompletion(g *globalOptions) *cobra.Command {
	o := &CompletionOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:                   "completion SHELL",
		Short:                 "Print a shell completion script (bash, zsh, fish or powershell)",
		Long:                  completionLong,
		Example:               completionExample,
		DisableFlagsInUseLine: true,
		ValidArgs:             completionShells,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("completion needs the name of one shell: %s; for example: kubectl canary completion bash", strings.Join(completionShells, ", "))
			}
			return nil
		},
		RunE: runVerb(o),
	}
	cmd.Flags().BoolVar(&o.noDescriptions, "no-descriptions", false, "Complete without the one-line description of each choice.")
	return cmd
}

// Complete reads SHELL.
func (o *CompletionOptions) Complete(_ *cobra.Command, args []string) error {
	o.shell = args[0]
	return nil
}

// Validate rejects shells there is no script for.
func (o *CompletionOptions) Validate() error {
	if !slices.Contains(completionShells, o.shell) {
		return fmt.Errorf("there is no completion script for %q; choose one of %s", o.shell, strings.Join(completionShells, ", "))
	}
	return nil
}

// Run writes the script. Cobra's scripts hold nothing but the program's name:
// they ask the program itself (`kubectl-canary __complete ...`) for every
// choice, so a bare command of that name is all they are generated from.
func (o *CompletionOptions) Run(_ *cobra.Command) error {
	prog := &cobra.Command{Use: pluginBinary}
	descriptions := !o.noDescriptions
	switch o.shell {
	case "bash":
		return prog.GenBashCompletionV2(o.Out, descriptions)
	case "zsh":
		if descriptions {
			return prog.GenZshCompletion(o.Out)
		}
		return prog.GenZshCompletionNoDesc(o.Out)
	case "fish":
		return prog.GenFishCompletion(o.Out, descriptions)
	default:
		if descriptions {
			return prog.GenPowerShellCompletionWithDesc(o.Out)
		}
		return prog.GenPowerShellCompletion(o.Out)
	}
}

// addCompletion adds the completion command to root and teaches the
// completion of arguments and flags about the cluster: the first argument of
// every verb whose usage line starts with SERVICE completes the Services of
// the namespace, -n/--namespace the namespaces, --canary and --stable the
// versions of the Service, and --context and --contexts the kubeconfig's
// contexts. (-o and --routing-api complete their values where they are
// added.)
func addCompletion(root *cobra.Command, g *globalOptions) {
	root.AddCommand(newCmdCompletion(g))
	for _, cmd := range root.Commands() {
		if takesService(cmd) && cmd.ValidArgsFunction == nil {
			cmd.ValidArgsFunction = completeService(g)
		}
		for _, name := range []string{"canary", "stable"} {
			if cmd.Flags().Lookup(name) != nil {
				// Fails only if the flag is missing or already has a function.
				_ = cmd.RegisterFlagCompletionFunc(name, completeVersion(g))
			}
		}
	}
	if root.PersistentFlags().Lookup("namespace") != nil {
		_ = root.RegisterFlagCompletionFunc("namespace", completeNamespace(g))
	}
	if root.PersistentFlags().Lookup("context") != nil {
		_ = root.RegisterFlagCompletionFunc("context", completeContexts(g, false))
	}
	if root.PersistentFlags().Lookup("contexts") != nil {
		_ = root.RegisterFlagCompletionFunc("contexts", completeContexts(g, true))
	}
}

// completeVersion completes --canary and --stable with the versions behind
// the Service of the first argument, told apart as start tells them (by
// --version-label when it is given).
func completeVersion(g *globalOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		label := ""
		if flag := cmd.Flags().Lookup("version-label"); flag != nil {
			label = flag.Value.String()
		}
		return g.completeFromCluster(cmd, toComplete, func(ctx context.Context, c *canary.Cluster) ([]string, error) {
			namespace, err := g.conn.Namespace()
			if err != nil {
				return nil, err
			}
			return c.VersionNames(ctx, namespace, args[0], label)
		})
	}
}

// completeContexts completes --context, or each of the comma-separated
// --contexts, with the contexts of the kubeconfig.
func completeContexts(g *globalOptions, several bool) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if g.configFlags == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		config, err := g.configFlags.ToRawKubeConfigLoader().RawConfig()
		if err != nil {
			cobra.CompErrorln(err.Error())
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		given, last := "", toComplete
		if i := strings.LastIndex(toComplete, ","); several && i >= 0 {
			given, last = toComplete[:i+1], toComplete[i+1:]
		}
		var choices []cobra.Completion
		for _, name := range slices.Sorted(maps.Keys(config.Contexts)) {
			if strings.HasPrefix(name, last) && !slices.Contains(strings.Split(given, ","), name) {
				choices = append(choices, given+name)
			}
		}
		return choices, cobra.ShellCompDirectiveNoFileComp
	}
}

// takesService tells whether a command's first argument is a Service, by its
// usage line ("start SERVICE ...", "status [SERVICE]").
func takesService(cmd *cobra.Command) bool {
	words := strings.Fields(cmd.Use)
	return len(words) > 1 && strings.Trim(words[1], "[]") == "SERVICE"
}

// completeService completes the SERVICE argument; later arguments (such as
// weight's PERCENT) get no suggestions, and never file names.
func completeService(g *globalOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return g.completeFromCluster(cmd, toComplete, func(ctx context.Context, c *canary.Cluster) ([]string, error) {
			namespace, err := g.conn.Namespace()
			if err != nil {
				return nil, err
			}
			return c.ServiceNames(ctx, namespace)
		})
	}
}

// completeNamespace completes -n/--namespace, for users allowed to list them.
func completeNamespace(g *globalOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return g.completeFromCluster(cmd, toComplete, func(ctx context.Context, c *canary.Cluster) ([]string, error) {
			return c.NamespaceNames(ctx)
		})
	}
}

// completeFromCluster returns the names list gives that start with
// toComplete. A cluster that cannot be read gives no choices rather than an
// error: the reason goes to cobra's completion log (BASH_COMP_DEBUG_FILE).
func (g *globalOptions) completeFromCluster(cmd *cobra.Command, toComplete string, list func(context.Context, *canary.Cluster) ([]string, error)) ([]cobra.Completion, cobra.ShellCompDirective) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	cluster, err := g.conn.Cluster()
	var names []string
	if err == nil {
		names, err = list(ctx, cluster)
	}
	if err != nil {
		cobra.CompErrorln(err.Error())
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var choices []cobra.Completion
	for _, name := range names {
		if strings.HasPrefix(name, toComplete) {
			choices = append(choices, name)
		}
	}
	return choices, cobra.ShellCompDirectiveNoFileComp
}
