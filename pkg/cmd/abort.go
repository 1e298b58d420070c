package cmd

import (
	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// AbortOptions holds the flags of `kubectl canary abort`.
type AbortOptions struct {
	*changeOptions
}

func newCmdAbort(g *globalOptions) *cobra.Command {
	o := &AbortOptions{changeOptions: newChangeOptions(g, routing.ActionAbort)}
	cmd := &cobra.Command{
		Use:   "abort SERVICE",
		Short: "Send all of a Service's traffic back to the stable version at once",
		Long: templates.LongDesc(`
			Abort a running canary: its managed routes send 100% of the traffic to
			the stable version again. A VirtualService or DestinationRule that
			existed before start gets its pre-start spec back exactly, unless
			someone changed it meanwhile (then only the weights are reset, with a
			warning). A VirtualService the plugin created is kept, pinned to
			stable: deleting it would let the Service balance over every version's
			pods again. Where someone deleted the canary's VirtualService (or its
			stable subset), abort creates it again, sending everything to stable,
			and says so; where nothing records the canary any more, it says what
			it could not do and exits non-zero.`),
		Example: templates.Examples(`
			# Roll reviews back to its stable version
			kubectl canary abort reviews`),
		Args: exactlyOneService,
		RunE: runVerb(o),
	}
	o.addFlags(cmd)
	return cmd
}
