package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/kubectl/pkg/cmd/get"
)

// outputFlags are -o/--output (with kubectl's --template,
// --allow-missing-template-keys and --show-managed-fields), the same for
// every command that takes it: kubectl's own printers, cli-runtime's
// PrintFlags and kubectl get's custom columns, for json, yaml, name,
// jsonpath, go-template, custom-columns and their -file forms; the
// command's own text when -o is not given. A command that prints a table
// also takes -o wide (the table with more columns) and --no-headers.
type outputFlags struct {
	print   *genericclioptions.PrintFlags
	columns *get.CustomColumnsPrintFlags
	// table says the command prints a table: -o wide and --no-headers.
	table     bool
	noHeaders bool
	// otherwise says what the command prints without -o, for messages.
	otherwise string
}

// addOutputFlags adds -o to cmd; otherwise names what the command prints
// without it ("a table"), and table says whether that is a table.
func addOutputFlags(cmd *cobra.Command, otherwise string, table bool) *outputFlags {
	f := &outputFlags{print: genericclioptions.NewPrintFlags(""), columns: get.NewCustomColumnsPrintFlags(), table: table, otherwise: otherwise}
	f.print.AddFlags(cmd)
	cmd.Flags().Lookup("output").Usage = fmt.Sprintf("Output format. One of: (%s). Default: %s.", strings.Join(f.formats(), ", "), otherwise)
	if table {
		cmd.Flags().BoolVar(&f.noHeaders, "no-headers", false, "When using the default, wide or custom-column output format, don't print headers (default print headers).")
	}
	// Fails only if the flag is missing or already has a function.
	_ = cmd.RegisterFlagCompletionFunc("output", func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var choices []cobra.Completion
		for _, format := range f.formats() {
			if strings.HasPrefix(format, toComplete) {
				choices = append(choices, format)
			}
		}
		return choices, cobra.ShellCompDirectiveNoFileComp
	})
	return f
}

// formats are the values -o takes, as kubectl lists them.
func (f *outputFlags) formats() []string {
	formats := append(f.print.AllowedFormats(), f.columns.AllowedFormats()...)
	if f.table {
		formats = append(formats, "wide")
	}
	slices.Sort(formats)
	return formats
}

// wide says -o wide was given: the table with more columns.
func (f *outputFlags) wide() bool { return f != nil && f.table && *f.print.OutputFormat == "wide" }

// headers says whether a table has its header: not with --no-headers.
func (f *outputFlags) headers() bool { return f == nil || !f.noHeaders }

// printer is kubectl's printer for -o, or nil when the command prints its
// own text (no -o, or -o wide).
func (f *outputFlags) printer() (printers.ResourcePrinter, error) {
	format := *f.print.OutputFormat
	template := f.print.TemplatePrinterFlags.TemplateArgument
	switch {
	case format == "" && (template == nil || *template == ""):
		return nil, nil
	case f.wide():
		return nil, nil
	case strings.HasPrefix(format, "custom-columns"):
		f.columns.NoHeaders = f.noHeaders
		p, err := f.columns.ToPrinter(format)
		if columns, ok := p.(*get.CustomColumnsPrinter); ok {
			columns.NoHeaders = f.noHeaders // kubectl forgets it for -file
		}
		if genericclioptions.IsNoCompatiblePrinterError(err) {
			return nil, f.unsupported(format)
		}
		return p, err
	}
	p, err := f.print.ToPrinter()
	if genericclioptions.IsNoCompatiblePrinterError(err) {
		return nil, f.unsupported(format)
	}
	return p, err
}

func (f *outputFlags) unsupported(format string) error {
	return fmt.Errorf("--output %q is not supported; use one of %s, or leave it out for %s", format, strings.Join(f.formats(), ", "), f.otherwise)
}

// printDocument prints one document of schema.go with printer, as
// encoding/json encodes it, with [] for every empty list.
func printDocument(printer printers.ResourcePrinter, doc any, out io.Writer) error {
	u, err := toUnstructured(doc)
	if err != nil {
		return err
	}
	return printer.PrintObj(u, out)
}

// printList prints documents of schema.go as one v1 List, as kubectl get
// prints several objects; items is [] when there are none.
func printList[T any](printer printers.ResourcePrinter, docs []T, out io.Writer) error {
	list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": ""}}}
	for _, doc := range docs {
		u, err := toUnstructured(doc)
		if err != nil {
			return err
		}
		list.Items = append(list.Items, *u)
	}
	return printer.PrintObj(list, out)
}

// toUnstructured is a document as kubectl's printers take it.
func toUnstructured(doc any) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(emptyLists(doc))
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return u, nil
}

// emptyLists is a copy of v in which every nil slice or map is empty, so
// that JSON has [] or {} where encoding/json would write null; a field
// with omitempty is left out either way.
func emptyLists(v any) any {
	value := reflect.New(reflect.TypeOf(v)).Elem()
	value.Set(reflect.ValueOf(v))
	fillEmpty(value)
	return value.Interface()
}

// fillEmpty makes the nil slices and maps within the settable value v empty.
func fillEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			copied := reflect.New(v.Elem().Type())
			copied.Elem().Set(v.Elem())
			fillEmpty(copied.Elem())
			v.Set(copied)
		}
	case reflect.Interface:
		if !v.IsNil() {
			inner := reflect.New(v.Elem().Type()).Elem()
			inner.Set(v.Elem())
			fillEmpty(inner)
			v.Set(inner)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			if t.Field(i).IsExported() || t.Field(i).Anonymous {
				if field := v.Field(i); field.CanSet() {
					fillEmpty(field)
				}
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			if v.Type().Elem().Kind() != reflect.Uint8 { // []byte is base64, not a list
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
			return
		}
		copied := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(copied, v)
		for i := range copied.Len() {
			fillEmpty(copied.Index(i))
		}
		v.Set(copied)
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
			return
		}
		copied := reflect.MakeMapWithSize(v.Type(), v.Len())
		for iter := v.MapRange(); iter.Next(); {
			elem := reflect.New(iter.Value().Type()).Elem()
			elem.Set(iter.Value())
			fillEmpty(elem)
			copied.SetMapIndex(iter.Key(), elem)
		}
		v.Set(copied)
	}
}

// printObjects prints API objects (the routing objects of a change) with
// printer, as one v1 List.
func printObjects(printer printers.ResourcePrinter, objects []unstructured.Unstructured, out io.Writer) error {
	list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List"}, Items: objects}
	if list.Items == nil {
		list.Items = []unstructured.Unstructured{}
	}
	return printer.PrintObj(list, out)
}
