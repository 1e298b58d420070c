package cmd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
)

// exitStatus is one exit status of kubectl canary and what it means for the
// commands that judge (analyze, run, check). main exits with ExitCode() of
// the error a command returns, else 1.
type exitStatus struct {
	Code int
	Name string
	// Means says what the status means, command by command.
	Means string
}

// Exit statuses. An error (nothing was judged, or the command could not do
// what it was asked) never shares a status with a verdict, so a pipeline
// can tell a Prometheus hiccup from a failing canary.
const (
	exitOK           = 0
	exitError        = 1
	exitInconclusive = 2
	exitFail         = 3
)

// exitStatuses is the one table of exit statuses: the help of analyze, run
// and check and README.md's "Exit statuses" are generated from it or
// checked against it.
var exitStatuses = []exitStatus{
	{exitOK, "success", "analyze: the canary passed; run: it was promoted (or, with --no-promote, passed every step); check: no error finding, ready for a canary"},
	{exitError, "error", "nothing was judged, or the command could not finish: bad flags or arguments, an unknown Service or no running canary, the API server or Prometheus unreachable or refusing (permissions), a write refused; run: also a stop by Ctrl-C or by such an error after a step, the canary staying at its step"},
	{exitInconclusive, "inconclusive", "analyze: too few canary requests, no request metrics at all, a check without a value, or a traffic split that does not match the weight; run: the step stayed inconclusive more than --max-inconclusive times, the canary stays at it"},
	{exitFail, "fail", "analyze: the canary is worse than a threshold or a custom check allows; run: it failed at a step and was aborted (all traffic back on stable); check: an error finding that stops start and the other writes"},
}

// exitStatusHelp is the exit status part of the long help of analyze, run
// and check.
func exitStatusHelp() string {
	var b strings.Builder
	b.WriteString("Exit status:\n")
	for _, s := range exitStatuses {
		fmt.Fprintf(&b, "  %d  %s: %s.\n", s.Code, s.Name, s.Means)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// exitStatusMarkdown is the table README.md shows under "Exit statuses".
func exitStatusMarkdown() string {
	var b strings.Builder
	b.WriteString("| status | name | means |\n| --- | --- | --- |\n")
	for _, s := range exitStatuses {
		fmt.Fprintf(&b, "| %d | %s | %s |\n", s.Code, s.Name, s.Means)
	}
	return b.String()
}

// withExitStatuses appends the exit status table to a command's long help.
func withExitStatuses(long string) string {
	return long + "\n\n" + exitStatusHelp()
}

// findingsError is check's error findings: exit status fail.
type findingsError struct {
	namespace, service string
	errors             int
}

func (e *findingsError) Error() string {
	return fmt.Sprintf("service %s/%s: %d error(s) found", e.namespace, e.service, e.errors)
}

// ExitCode is exitFail: the check found what stops a start.
func (e *findingsError) ExitCode() int { return exitFail }

// ExitCode is the exit status of a command that ended with err (not nil):
// the verdict's for a canary judged inconclusive or failing, exitFail for
// check's error findings, else exitError.
func ExitCode(err error) int {
	var verdict *canary.VerdictError
	var findings *findingsError
	switch {
	case errors.As(err, &verdict) && verdict.Decision.Verdict == analysis.Inconclusive:
		return exitInconclusive
	case errors.As(err, &verdict) && verdict.Decision.Verdict == analysis.Fail:
		return exitFail
	case errors.As(err, &findings):
		return exitFail
	}
	return exitError
}
