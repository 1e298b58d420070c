package cmd

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kubectl-canary/kubectl-canary/pkg/version"
)

// VersionOptions holds the flags of `kubectl canary version`.
type VersionOptions struct {
	*globalOptions
	output string
}

func newCmdVersion(g *globalOptions) *cobra.Command {
	o := &VersionOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.Run()
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "Output format: json (default: one line).")
	return cmd
}

// Run prints the build identity; it never contacts a cluster.
func (o *VersionOptions) Run() error {
	info := version.Get()
	switch o.output {
	case "json":
		data, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(o.Out, string(data))
		return err
	case "":
		_, err := fmt.Fprintf(o.Out, "kubectl-canary %s (commit %s, %s, %s)\n", info.Version, info.Commit, info.GoVersion, info.Platform)
		return err
	default:
		return fmt.Errorf("--output %q is not supported; use json, or leave it out", o.output)
	}
}
