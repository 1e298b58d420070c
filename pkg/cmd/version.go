package cmd

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/kubectl-canary/kubectl-canary/pkg/version"
)

// VersionOptions holds the flags of `kubectl canary version`.
type VersionOptions struct {
	*globalOptions
	output  *outputFlags
	printer printers.ResourcePrinter
}

func newCmdVersion(g *globalOptions) *cobra.Command {
	o := &VersionOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			return o.Run()
		},
	}
	o.output = addOutputFlags(cmd, "one line", false)
	return cmd
}

// Complete reads the output format.
func (o *VersionOptions) Complete() error {
	var err error
	o.printer, err = o.output.printer()
	return err
}

// Run prints the build identity; it never contacts a cluster.
func (o *VersionOptions) Run() error {
	info := version.Get()
	if o.printer != nil {
		return printDocument(o.printer, Version{TypeMeta: typeMeta(KindVersion), Metadata: ObjectMeta{Name: pluginBinary}, Info: info}, o.Out)
	}
	_, err := fmt.Fprintf(o.Out, "kubectl-canary %s (commit %s, %s, %s)\n", info.Version, info.Commit, info.GoVersion, info.Platform)
	return err
}
