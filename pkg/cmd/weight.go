package cmd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

var weightExample = templates.Examples(`
	# Send half of reviews' traffic to the canary
	kubectl canary weight reviews 50

	# Hold the canary at 0% without ending it
	kubectl canary weight reviews 0

	# Move to 25% and stop shadowing traffic
	kubectl canary weight reviews 25 --mirror 0`)

// WeightOptions holds the arguments of `kubectl canary weight`.
type WeightOptions struct {
	*changeOptions
	mirror mirrorFlag
}

func newCmdWeight(g *globalOptions) *cobra.Command {
	o := &WeightOptions{changeOptions: newChangeOptions(g, routing.ActionWeight)}
	cmd := &cobra.Command{
		Use:   "weight SERVICE PERCENT",
		Short: "Set the canary's share of a Service's traffic",
		Long: templates.LongDesc(`
			Set the share of traffic, in percent, that the managed routes of a
			running canary send to the canary version; the stable version gets the
			rest. Nothing else in the routing objects changes.`),
		Example: weightExample,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("weight needs SERVICE and PERCENT, got %d argument(s); for example: kubectl canary weight reviews 50", len(args))
			}
			return nil
		},
		RunE: runVerb(o),
	}
	o.mirror.addFlag(cmd)
	o.addFlags(cmd)
	return cmd
}

// Complete reads SERVICE and PERCENT.
func (o *WeightOptions) Complete(cmd *cobra.Command, args []string) error {
	w, err := parsePercent(args[1])
	if err != nil {
		return err
	}
	o.intent.Weight = w
	if o.intent.Mirror, err = o.mirror.intent(cmd); err != nil {
		return err
	}
	return o.changeOptions.Complete(cmd, args)
}

// Validate checks the weight before the cluster is read.
func (o *WeightOptions) Validate() error {
	return checkPercent("weight", o.intent.Weight, "the canary's share")
}

// checkPercent is the one range check of a share of traffic given on the
// command line (a weight, a mirror): a whole number from 0 to 100. given
// is how the user gave it ("--weight", "weight" for the argument); share
// says what it is a share of.
func checkPercent(given string, percent int, share string) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("%s %d is out of range; give %s as a whole number from 0 to 100", given, percent, share)
	}
	return nil
}

// parsePercent accepts "25" and "25%".
func parsePercent(s string) (int, error) {
	w, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if err != nil {
		return 0, fmt.Errorf("weight %q is not a whole number; give the canary's share from 0 to 100, for example 25", s)
	}
	return w, nil
}
