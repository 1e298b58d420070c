package cmd

import (
	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// PromoteOptions holds the flags of `kubectl canary promote`.
type PromoteOptions struct {
	*changeOptions
}

func newCmdPromote(g *globalOptions) *cobra.Command {
	o := &PromoteOptions{changeOptions: newChangeOptions(g, routing.ActionPromote)}
	cmd := &cobra.Command{
		Use:   "promote SERVICE",
		Short: "Send all of a Service's traffic to the canary and make it the stable version",
		Long: templates.LongDesc(`
			Promote a running canary: its managed routes send 100% of the traffic
			to the canary, which is recorded as the new stable version, so the next
			kubectl canary start works from it. Subsets the canary added and no
			route uses any more are removed afterwards. The old Deployment is left
			alone: scale it down when you are ready.`),
		Example: templates.Examples(`
			# Make the canary of reviews the stable version
			kubectl canary promote reviews`),
		Args: exactlyOneService,
		RunE: runVerb(o),
	}
	o.addFlags(cmd)
	return cmd
}
