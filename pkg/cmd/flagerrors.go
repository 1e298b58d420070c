package cmd

import (
	"errors"
	"strings"

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

// inFlagTerms rewords an error of the routing core so that it names the
// flags to change where the core names parts of the intent ("pass
// --stable", not "pass stable"). Errors that name none pass unchanged; the
// reworded one still unwraps to the original.
func inFlagTerms(err error) error {
	var preflight *canary.PreflightError
	if errors.As(err, &preflight) {
		message := strings.Replace(err.Error(), preflight.Error(), preflight.Describe(findingMessage, "pass --force"), 1)
		return &flagTermsError{message: message, err: err}
	}
	var intentErr *routing.IntentError
	if !errors.As(err, &intentErr) {
		return err
	}
	// The core's message may be wrapped in more words; only its own change.
	message := strings.Replace(err.Error(), intentErr.Error(), intentErr.Text.Render(flagOf), 1)
	return &flagTermsError{message: message, err: err}
}

type flagTermsError struct {
	message string
	err     error
}

func (e *flagTermsError) Error() string { return e.message }
func (e *flagTermsError) Unwrap() error { return e.err }

// findingMessage is a preflight finding's message as the command line
// says it, naming --force and --version-label.
func findingMessage(f routing.Finding) string {
	if message := f.Text.Render(flagOf); message != "" {
		return message
	}
	return f.Message // a finding made without a Text
}

// findingsInFlagTerms are the findings with their messages as the command
// line says them, for printing (a table, -o json|yaml, warnings, the
// preflight error).
func findingsInFlagTerms(findings []routing.Finding) []routing.Finding {
	if findings == nil {
		return nil
	}
	out := make([]routing.Finding, len(findings))
	for i, f := range findings {
		out[i] = f
		out[i].Message = findingMessage(f)
	}
	return out
}
