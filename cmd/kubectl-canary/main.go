// Command kubectl-canary is the `kubectl canary` plugin: kubectl finds it on
// PATH by its name and runs it for `kubectl canary ...`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	// Cloud kubeconfigs (OIDC, exec, GCP, Azure) authenticate through these.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"github.com/kubectl-canary/kubectl-canary/pkg/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := cmd.NewCmdCanary(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}
