package cmd

import "github.com/spf13/cobra"

// verb is the Complete, Validate, Run shape every command's Options have.
type verb interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(cmd *cobra.Command) error
}

// runVerb is the RunE of a command with Options of that shape.
func runVerb(o verb) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd)
	}
}

// inFlagTermsEverywhere has every command's errors name the flags: the
// routing core's errors name parts of the intent, and the commands they
// suggest the target by placeholder (see flagTerms).
func (g *globalOptions) inFlagTermsEverywhere(root *cobra.Command) {
	for _, cmd := range root.Commands() {
		if run := cmd.RunE; run != nil {
			cmd.RunE = func(cmd *cobra.Command, args []string) error { return g.terms.error(run(cmd, args)) }
		}
		g.inFlagTermsEverywhere(cmd)
	}
}
