// Command kubectl_complete-canary completes `kubectl canary ...` on the
// command line. kubectl 1.26 and newer, asked by the shell to complete the
// arguments of a plugin, runs the executable named kubectl_complete-<plugin>
// found on PATH with the words typed after the plugin's name; this one asks
// the plugin itself, through cobra's hidden `__complete` command, so that
// verbs, flags and Service names complete as they would for any kubectl verb.
//
// It is a program rather than a shell script so that it works on Windows too.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// plugin is the executable kubectl runs for `kubectl canary`.
const plugin = "kubectl-canary"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run asks the kubectl-canary on PATH, the one kubectl would run, for the
// completions of args, and returns its exit code. The completions go to
// stdout, cobra's debug lines to stderr, which kubectl's shell scripts discard.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	path, err := exec.LookPath(plugin)
	if err != nil {
		fmt.Fprintf(stderr, "kubectl_complete-canary: %s is not on PATH, so there is nothing to complete: %v\n", plugin, err)
		return 1
	}
	cmd := exec.Command(path, append([]string{"__complete"}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		fmt.Fprintf(stderr, "kubectl_complete-canary: %v\n", err)
		return 1
	}
}
