package cmd

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// RouteOptions holds the flags of `kubectl canary route`.
type RouteOptions struct {
	*changeOptions
	matches      matchFlags
	clearMatches bool
}

func newCmdRoute(g *globalOptions) *cobra.Command {
	o := &RouteOptions{changeOptions: newChangeOptions(g, routing.ActionRoute)}
	cmd := &cobra.Command{
		Use:   "route SERVICE (--header RULE | --cookie NAME=VALUE)... | --clear-matches",
		Short: "Change which requests a running canary receives by header or cookie",
		Long: templates.LongDesc(`
			Replace the match rules of a running canary: requests that carry the
			given headers and cookies go to the canary whatever its weight. The
			split of the other traffic stays as it is. --clear-matches removes the
			rules.`),
		Example: templates.Examples(`
			# Testers and the QA bot reach the canary
			kubectl canary route reviews --header x-tester=yes --header user-agent^qa-bot

			# Users with the beta cookie reach the canary
			kubectl canary route reviews --cookie beta=on

			# Stop routing by request attributes
			kubectl canary route reviews --clear-matches`),
		Args: exactlyOneService,
		RunE: runVerb(o),
	}
	o.matches.addFlags(cmd)
	cmd.Flags().BoolVar(&o.clearMatches, "clear-matches", false, "Remove the canary's header and cookie rules.")
	o.addFlags(cmd)
	return cmd
}

// Complete reads SERVICE and the rules.
func (o *RouteOptions) Complete(cmd *cobra.Command, args []string) error {
	var err error
	if o.intent.Matches, err = o.matches.rules(); err != nil {
		return err
	}
	return o.changeOptions.Complete(cmd, args)
}

// Validate asks for rules or --clear-matches, not both.
func (o *RouteOptions) Validate() error {
	switch {
	case o.clearMatches && len(o.intent.Matches) > 0:
		return fmt.Errorf("--clear-matches removes every rule; give it alone, or give the new --header/--cookie rules without it")
	case !o.clearMatches && len(o.intent.Matches) == 0:
		return fmt.Errorf("give the new rules with --header or --cookie, or remove them with --clear-matches")
	}
	return nil
}
