package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// intentFlags are the flags that set each part of the intent the routing
// core's messages may name.
var intentFlags = map[routing.Field]string{
	routing.FieldStable:           "--stable",
	routing.FieldCanary:           "--canary",
	routing.FieldCanaryDeployment: "--canary-deployment",
	routing.FieldVersionLabel:     "--version-label",
	routing.FieldRoutes:           "--route",
	routing.FieldHeaderMatches:    "--header",
	routing.FieldCookieMatches:    "--cookie",
	routing.FieldMirror:           "--mirror",
	routing.FieldGateway:          "--gateway",
	routing.FieldHosts:            "--host",
	routing.FieldRoutingAPI:       "--routing-api",
	routing.FieldOverride:         "--force",
}

// flagOf names a field by its flag; a field no flag sets keeps the core's word.
func flagOf(f routing.Field) string {
	if flag, ok := intentFlags[f]; ok {
		return flag
	}
	return f.Word()
}

// flagTerms words the routing core's messages as the command line gives
// them: each field by its flag, and the command's target (routing's
// FieldTarget, in the commands a message suggests) by the flags that
// selected it, so that a pasted hint acts on the same Service.
type flagTerms struct {
	// target is " -n shop --context prod" or empty: see targetFlags.
	target string
}

// name names a field by its flag, the target by its flags.
func (t flagTerms) name(f routing.Field) string {
	if f == routing.FieldTarget {
		return t.target
	}
	return flagOf(f)
}

// targetFlagNames are the flags that select what a command acts on, in
// the order a hint gives them.
var targetFlagNames = []string{"namespace", "context", "kubeconfig", "contexts", "all-contexts", "filename", "recursive", "local"}

// targetFlags are the target flags the user gave cmd, each after a space,
// as they would be typed again: "-n shop --context prod -f deploy/".
func targetFlags(cmd *cobra.Command) string {
	var b strings.Builder
	for _, name := range targetFlagNames {
		flag := cmd.Flags().Lookup(name)
		if flag == nil || !flag.Changed {
			continue
		}
		spelled := "--" + name
		if flag.Shorthand != "" {
			spelled = "-" + flag.Shorthand
		}
		switch value := flag.Value.(type) {
		case pflag.SliceValue:
			if name == "contexts" {
				fmt.Fprintf(&b, " %s %s", spelled, shellQuote(strings.Join(value.GetSlice(), ",")))
				continue
			}
			for _, v := range value.GetSlice() {
				fmt.Fprintf(&b, " %s %s", spelled, shellQuote(v))
			}
		default:
			if flag.Value.Type() == "bool" {
				if flag.Value.String() == "true" {
					fmt.Fprintf(&b, " %s", spelled)
				}
				continue
			}
			fmt.Fprintf(&b, " %s %s", spelled, shellQuote(flag.Value.String()))
		}
	}
	return b.String()
}

// shellQuote quotes a flag's value for a POSIX shell where it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/:=,@%+-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// error rewords an error of the routing core so that it names the flags
// to change where the core names parts of the intent ("pass --stable",
// not "pass stable") and the target flags in the commands it suggests.
// Errors that name none pass unchanged; the reworded one still unwraps to
// the original.
func (t flagTerms) error(err error) error {
	if err == nil {
		return nil
	}
	message := t.reword(err)
	if message == err.Error() {
		return err
	}
	return &flagTermsError{message: message, err: err}
}

// reword is err's message with each error of its tree that has a Text (or
// is a preflight error) in the command line's words. An error's own words
// wrap those of the errors it wraps, in their order (errors.Join, as
// several clusters' errors come, lists them line by line), so each inner
// message is found after the previous one: identical messages of two
// clusters are each reworded once.
func (t flagTerms) reword(e error) string {
	if preflight, ok := e.(*canary.PreflightError); ok {
		return preflight.Describe(t.finding, "pass --force", t.target)
	}
	message := e.Error()
	if text, ok := routing.Textual(e); ok {
		message = text.Render(t.name)
	}
	var inner []error
	switch wrapping := e.(type) {
	case interface{ Unwrap() []error }:
		inner = wrapping.Unwrap()
	case interface{ Unwrap() error }:
		if w := wrapping.Unwrap(); w != nil {
			inner = []error{w}
		}
	}
	var b strings.Builder
	for _, w := range inner {
		if w == nil {
			continue
		}
		before, after, found := strings.Cut(message, w.Error())
		if !found {
			continue
		}
		b.WriteString(before)
		b.WriteString(t.reword(w))
		message = after
	}
	b.WriteString(message)
	return b.String()
}

type flagTermsError struct {
	message string
	err     error
}

func (e *flagTermsError) Error() string { return e.message }
func (e *flagTermsError) Unwrap() error { return e.err }

// finding is a preflight finding's message as the command line says it,
// naming --force and --version-label.
func (t flagTerms) finding(f routing.Finding) string {
	if message := f.Text.Render(t.name); message != "" {
		return message
	}
	return f.Message // a finding made without a Text
}

// findings are the findings with their messages as the command line says
// them, for printing (a table, -o json|yaml, warnings, the preflight
// error); never nil, so that JSON has [] for none.
func (t flagTerms) findings(findings []routing.Finding) []routing.Finding {
	out := make([]routing.Finding, len(findings))
	for i, f := range findings {
		out[i] = f
		out[i].Message = t.finding(f)
	}
	return out
}
