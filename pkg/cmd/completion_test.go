package cmd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
)

// completions runs cobra's hidden __complete command, as the shell scripts and
// kubectl_complete-canary do, and returns the choices (without their
// descriptions) and the directive line.
func completions(t *testing.T, o *globalOptions, args ...string) (choices []string, directive string) {
	t.Helper()
	var out bytes.Buffer
	o.IOStreams = genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &bytes.Buffer{}}
	cmd := newCmdCanary(o)
	cmd.SetArgs(append([]string{"__complete"}, args...))
	require.NoError(t, cmd.ExecuteContext(context.Background()))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.NotEmpty(t, lines)
	for _, line := range lines[:len(lines)-1] {
		choice, _, _ := strings.Cut(line, "\t")
		choices = append(choices, choice)
	}
	return choices, lines[len(lines)-1]
}

// servicesCluster is the bookinfo namespace with three more Services, and a
// Service of the same prefix in another namespace.
func servicesCluster(t *testing.T) *fakeCluster {
	t.Helper()
	f := newFakeCluster(t, "bookinfo-adopted", "bookinfo")
	for _, svc := range []struct{ namespace, name string }{
		{"bookinfo", "ratings"}, {"bookinfo", "details"}, {"bookinfo", "productpage"}, {"shop", "reviews-legacy"},
	} {
		_, err := f.core.CoreV1().Services(svc.namespace).Create(context.Background(),
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: svc.namespace, Name: svc.name}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	return f
}

const noFiles = ":4" // cobra.ShellCompDirectiveNoFileComp

func TestVerbsComplete(t *testing.T) {
	choices, directive := completions(t, &globalOptions{conn: canary.ConnectWith(servicesCluster(t))}, "")
	for _, verb := range []string{"start", "weight", "route", "promote", "abort", "status", "check", "version", "completion"} {
		assert.Contains(t, choices, verb)
	}
	assert.Equal(t, noFiles, directive)
}

func TestServiceArgumentCompletesTheNamespacesServices(t *testing.T) {
	f := servicesCluster(t)
	for _, verb := range []string{"start", "weight", "route", "promote", "abort", "status", "check"} {
		t.Run(verb, func(t *testing.T) {
			choices, directive := completions(t, &globalOptions{conn: canary.ConnectWith(f)}, verb, "r")
			assert.Equal(t, []string{"ratings", "reviews"}, choices)
			assert.Equal(t, noFiles, directive)

			choices, _ = completions(t, &globalOptions{conn: canary.ConnectWith(f)}, verb, "")
			assert.Equal(t, []string{"details", "productpage", "ratings", "reviews"}, choices)
		})
	}
}

func TestOnlyTheFirstArgumentIsAService(t *testing.T) {
	choices, directive := completions(t, &globalOptions{conn: canary.ConnectWith(servicesCluster(t))}, "weight", "reviews", "")
	assert.Empty(t, choices, "PERCENT is not a Service")
	assert.Equal(t, noFiles, directive)
}

func TestNamespaceFlagCompletesNamespaces(t *testing.T) {
	f := servicesCluster(t)
	for _, name := range []string{"bookinfo", "shop", "istio-system"} {
		_, err := f.core.CoreV1().Namespaces().Create(context.Background(),
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	o := &globalOptions{configFlags: genericclioptions.NewConfigFlags(false), conn: canary.ConnectWith(f)}
	choices, directive := completions(t, o, "status", "-n", "")
	assert.Equal(t, []string{"bookinfo", "istio-system", "shop"}, choices)
	assert.Equal(t, noFiles, directive)

	choices, _ = completions(t, o, "start", "--namespace", "s")
	assert.Equal(t, []string{"shop"}, choices)
}

// unreachable is a cluster that cannot be reached.
type unreachable struct{}

func (unreachable) Clients() (*kube.Clients, error) {
	return nil, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
}
func (unreachable) Namespace() (string, error) { return "default", nil }

func TestUnreachableClusterCompletesNothingAndNoFiles(t *testing.T) {
	choices, directive := completions(t, &globalOptions{conn: canary.ConnectWith(unreachable{})}, "start", "")
	assert.Empty(t, choices)
	assert.Equal(t, noFiles, directive)
}

// bareCanary finds "canary" as a word of its own, not within kubectl-canary
// or __kubectl_canary_debug.
var bareCanary = regexp.MustCompile(`(^|[^-_A-Za-z])canary`)

func TestCompletionScriptsCompleteThePluginBinary(t *testing.T) {
	f := servicesCluster(t)
	for _, shell := range completionShells {
		for _, flags := range [][]string{nil, {"--no-descriptions"}} {
			stdout, _, err := f.run(append([]string{"completion", shell}, flags...)...)
			require.NoError(t, err, shell)
			assert.Contains(t, stdout, "kubectl-canary", shell)
			assert.Contains(t, stdout, "__complete", shell)
			// A script for a program named canary would never fire.
			assert.Empty(t, bareCanary.FindAllString(stdout, -1), shell)
		}
	}
	stdout, _, err := f.run("completion", "bash")
	require.NoError(t, err)
	assert.Contains(t, stdout, "complete -o default -F __start_kubectl-canary kubectl-canary")

	choices, _ := completions(t, &globalOptions{conn: canary.ConnectWith(f)}, "completion", "")
	assert.Equal(t, completionShells, choices)
}

func TestCompletionHelpSaysKubectlCanary(t *testing.T) {
	stdout, _, err := servicesCluster(t).run("completion", "--help")
	require.NoError(t, err)
	assert.Contains(t, stdout, "kubectl canary completion SHELL")
	assert.Contains(t, stdout, "kubectl_complete-canary")
	for _, line := range strings.Split(stdout, "\n") {
		assert.False(t, strings.HasPrefix(strings.TrimSpace(line), "canary "), "help names a program called canary: %q", line)
	}
}

func TestCompletionNeedsAKnownShell(t *testing.T) {
	f := servicesCluster(t)
	_, _, err := f.run("completion")
	assert.ErrorContains(t, err, "completion needs the name of one shell: bash, zsh, fish, powershell")
	_, _, err = f.run("completion", "tcsh")
	assert.ErrorContains(t, err, `there is no completion script for "tcsh"`)
}

// --canary and --stable offer the versions behind the Service, as start
// tells them apart; without a Service there is nothing to offer.
func TestVersionFlagsCompleteTheServicesVersions(t *testing.T) {
	f := servicesCluster(t)
	for _, flag := range []string{"--canary", "--stable"} {
		choices, directive := completions(t, &globalOptions{conn: canary.ConnectWith(f)}, "start", "reviews", flag, "")
		assert.Equal(t, []string{"v1", "v2", "v3"}, choices, flag)
		assert.Equal(t, noFiles, directive)
	}
	choices, _ := completions(t, &globalOptions{conn: canary.ConnectWith(f)}, "start", "reviews", "--canary", "v3")
	assert.Equal(t, []string{"v3"}, choices)
	choices, _ = completions(t, &globalOptions{conn: canary.ConnectWith(f)}, "start", "reviews", "--version-label", "app", "--canary", "")
	assert.Empty(t, choices, "the versions of --version-label, which tells none apart")
	choices, directive := completions(t, &globalOptions{conn: canary.ConnectWith(f)}, "start", "--canary", "")
	assert.Empty(t, choices, "no SERVICE yet")
	assert.Equal(t, noFiles, directive)
}

// -o offers kubectl's formats; only a command with a table has wide.
func TestOutputFlagCompletesTheFormats(t *testing.T) {
	f := servicesCluster(t)
	formats := []string{"custom-columns", "custom-columns-file", "go-template", "go-template-file", "json", "jsonpath", "jsonpath-as-json", "jsonpath-file", "kyaml", "name", "template", "templatefile"}
	for _, verb := range []string{"status", "check", "analyze"} {
		choices, directive := completions(t, &globalOptions{conn: canary.ConnectWith(f)}, verb, "-o", "")
		assert.Equal(t, append(slices.Clone(formats), "wide", "yaml"), choices, verb)
		assert.Equal(t, noFiles, directive)
	}
	for _, verb := range []string{"version", "start", "weight", "abort"} {
		choices, _ := completions(t, &globalOptions{conn: canary.ConnectWith(f)}, verb, "-o", "")
		assert.Equal(t, append(slices.Clone(formats), "yaml"), choices, verb)
	}
	choices, _ := completions(t, &globalOptions{conn: canary.ConnectWith(f)}, "status", "--output", "j")
	assert.Equal(t, []string{"json", "jsonpath", "jsonpath-as-json", "jsonpath-file"}, choices, "those that start with what is typed")
}

// --context and --contexts offer the kubeconfig's contexts; --contexts
// each of a comma-separated list, without those given already.
func TestContextFlagsCompleteTheKubeconfigsContexts(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts:
- {name: west, context: {cluster: c, user: u}}
- {name: east, context: {cluster: c, user: u}}
- {name: prod-eu, context: {cluster: c, user: u}}
current-context: east
`), 0o600))
	o := func() *globalOptions {
		flags := genericclioptions.NewConfigFlags(false)
		flags.KubeConfig = &kubeconfig
		return &globalOptions{configFlags: flags, conn: canary.ConnectWith(servicesCluster(t))}
	}
	choices, directive := completions(t, o(), "status", "--context", "")
	assert.Equal(t, []string{"east", "prod-eu", "west"}, choices)
	assert.Equal(t, noFiles, directive)
	choices, _ = completions(t, o(), "weight", "reviews", "10", "--contexts", "east,")
	assert.Equal(t, []string{"east,prod-eu", "east,west"}, choices)
	choices, _ = completions(t, o(), "status", "--contexts", "east,w")
	assert.Equal(t, []string{"east,west"}, choices)
	choices, _ = completions(t, o(), "check", "reviews", "--context", "p")
	assert.Equal(t, []string{"prod-eu"}, choices)
}

// --routing-api offers the routing APIs on every command that takes it.
func TestRoutingAPIFlagCompletes(t *testing.T) {
	for _, verb := range []string{"start", "check"} {
		choices, directive := completions(t, &globalOptions{conn: canary.ConnectWith(servicesCluster(t))}, verb, "reviews", "--routing-api", "")
		assert.Equal(t, []string{"auto", "istio", "gateway-api"}, choices, verb)
		assert.Equal(t, noFiles, directive)
	}
}
