package cmd

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
)

// outputFlag is -o/--output, the same for every command that takes it:
// kubectl's JSON and YAML printers, or the command's own text when it is
// not given.
type outputFlag struct {
	format string
	flags  *genericclioptions.JSONYamlPrintFlags
	// otherwise says what the command prints without -o, for messages.
	otherwise string
}

// addOutputFlag adds -o to cmd; otherwise names what the command prints
// without it ("a table").
func addOutputFlag(cmd *cobra.Command, otherwise string) *outputFlag {
	f := &outputFlag{flags: genericclioptions.NewJSONYamlPrintFlags(), otherwise: otherwise}
	cmd.Flags().StringVarP(&f.format, "output", "o", "", fmt.Sprintf("Output format: yaml or json (default: %s).", otherwise))
	return f
}

// printer is kubectl's printer for -o, or nil when -o was not given.
func (f *outputFlag) printer() (printers.ResourcePrinter, error) {
	if f.format == "" {
		return nil, nil
	}
	p, err := f.flags.ToPrinter(f.format)
	if err != nil {
		return nil, fmt.Errorf("--output %q is not supported; use yaml or json, or leave it out for %s", f.format, f.otherwise)
	}
	return p, nil
}

// printReport prints a value that is not an API object (a status, a list of
// findings, a verdict) with printer, as encoding/json encodes it.
func printReport(printer printers.ResourcePrinter, report any, out io.Writer) error {
	data, err := json.Marshal(report)
	if err != nil {
		return err
	}
	return printer.PrintObj(&runtime.Unknown{Raw: data}, out)
}
