// Command kubectl-canary is the `kubectl canary` plugin: kubectl finds it on
// PATH by its name and runs it for `kubectl canary ...`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	// Cloud kubeconfigs (OIDC, exec, GCP, Azure) authenticate through these.
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/klog/v2"

	"github.com/kubectl-canary/kubectl-canary/pkg/analysis"
	"github.com/kubectl-canary/kubectl-canary/pkg/cmd"
)

func isTimeout(err error) bool {
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) {
		return true
	}
	// Discovery flattens its errors into text.
	return strings.Contains(err.Error(), "Client.Timeout exceeded") || strings.Contains(err.Error(), "context deadline exceeded")
}

func quietLibraryLogs() {
	flags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(flags)
	for name, value := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		_ = flags.Set(name, value)
	}
	klog.SetOutput(io.Discard)
}

func main() {
	// client-go logs retries and discovery failures through klog; the
	// command reports every error itself, in one clear line, so the raw
	// library lines would only repeat it.
	quietLibraryLogs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := cmd.NewCmdCanary(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		var prom *analysis.PrometheusError
		if isTimeout(err) && !errors.As(err, &prom) {
			fmt.Fprintln(os.Stderr, "The API server did not answer in time: check that the cluster is reachable, or allow more time per request with --request-timeout (30s unless given).")
		}
		// A verdict (analyze, run, check) has its own exit status.
		os.Exit(cmd.ExitCode(err))
	}
}
