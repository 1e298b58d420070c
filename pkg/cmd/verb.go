package cmd

import "github.com/spf13/cobra"

// verb is the Complete, Validate, Run shape every command's Options have.
type verb interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(cmd *cobra.Command) error
}

// runVerb is the RunE of every mutating command. The routing core's
// errors name parts of the intent; Run's are reworded to name the flags.
func runVerb(o verb) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return inFlagTerms(o.Run(cmd))
	}
}
