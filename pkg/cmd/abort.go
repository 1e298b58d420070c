package cmd

import (
	"fmt"
	"io"
	"strings"

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
			the stable version again, and the canary nothing. A routing object
			that existed before start gets its pre-start spec back, unless
			someone changed it meanwhile (then only the weights are reset, with a
			warning); where a managed route already gave the canary a share
			before start (a 90/10 split start adopted), that share goes to stable
			too, and abort says so and how to return to that split. A VirtualService the plugin created is kept, pinned to
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

// printPreStartShares says, after an abort, which managed routes had given
// the canary a share before start, which abort sent to stable too, and how
// to return to that split.
func printPreStartShares(w io.Writer, plan *routing.Plan, target string) {
	shares := plan.PreStartShares
	if len(shares) == 0 {
		return
	}
	st := plan.State
	for _, s := range shares {
		fmt.Fprintf(w, "Note: before the canary started, %s gave canary %s=%s %d%% of its traffic; abort sent that share to stable %s=%s too\n", s.Object+" ("+s.Route+")", st.VersionLabel, st.Canary, s.Percent, st.VersionLabel, st.Stable)
	}
	weight := shares[0].Percent
	for _, s := range shares[1:] {
		if s.Percent != weight {
			weight = -1
		}
	}
	apply := "kubectl apply the manifest that gave it"
	if weight < 0 {
		fmt.Fprintf(w, "To return to that split (its weights differ between routes): %s\n", apply)
		return
	}
	// target is the user's own -n, --context, -f... (flagTerms), each after
	// a space, so that the pasted command acts on the same Service.
	start := []string{"kubectl canary start " + plan.Service + target, "--canary", st.Canary, "--stable", st.Stable, fmt.Sprintf("--weight %d", weight)}
	if st.VersionLabel != "" && st.VersionLabel != "version" {
		start = append(start, "--version-label", st.VersionLabel)
	}
	fmt.Fprintf(w, "To return to that split: %s (a canary again, at that share), or %s\n", strings.Join(start, " "), apply)
}
