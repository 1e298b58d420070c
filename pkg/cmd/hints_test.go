package cmd

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
)

// runWithKubectlFlags is run with kubectl's connection flags (-n,
// --context, --kubeconfig) on the command line; the fake cluster is
// reached whatever they say.
func (f *fakeCluster) runWithKubectlFlags(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := newCmdCanary(&globalOptions{configFlags: genericclioptions.NewConfigFlags(false), conn: canary.ConnectWith(f), syncReadTooSoon: fakeSyncReadTooSoon,
		IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}})
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// A hint that suggests a kubectl canary command carries the flags that
// chose the Service (-n, --context, --kubeconfig), so that pasted, it acts
// on the same Service; without them it reads as before.
func TestHintsCarryTheTargetFlags(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(*fakeCluster)
		args  []string
		want  string
	}{
		{"no canary to weigh", nil, []string{"weight", "reviews", "20", "-n", "shop", "--context", "prod"},
			"no canary in progress for service shop/reviews; start one with kubectl canary start reviews -n shop --context prod"},
		{"flags before the verb, long forms", nil, []string{"--namespace=shop", "--context=prod", "abort", "reviews"},
			"start one with kubectl canary start reviews -n shop --context prod"},
		{"without flags", nil, []string{"promote", "reviews"},
			"no canary in progress for service shop/reviews; start one with kubectl canary start reviews"},
		{"no canary to analyze", nil, []string{"analyze", "reviews", "-n", "shop", "--kubeconfig", "/home/me/my config"},
			"service shop/reviews has no canary; start one with kubectl canary start reviews -n shop --kubeconfig '/home/me/my config'"},
		{"no canary to watch", nil, []string{"status", "reviews", "--watch", "-n", "shop", "--context", "prod"},
			"service shop/reviews has no canary recorded; start one with kubectl canary start reviews -n shop --context prod"},
		{"preflight", func(f *fakeCluster) {
			d, err := f.core.AppsV1().Deployments("shop").Get(context.Background(), "reviews-v2", metav1GetOptions)
			require.NoError(t, err)
			d.Status.AvailableReplicas = 0
			_, err = f.core.AppsV1().Deployments("shop").UpdateStatus(context.Background(), d, metav1UpdateOptions)
			require.NoError(t, err)
		}, []string{"start", "reviews", "-n", "shop", "--context", "prod"},
			"Fix these, or pass --force to go ahead anyway (kubectl canary check reviews -n shop --context prod shows every finding)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeCluster(t, "no-istio", "shop")
			if c.setup != nil {
				c.setup(f)
			}
			_, _, err := f.runWithKubectlFlags(c.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Empty(t, f.writes())
		})
	}
}

// The target flags are spelled as they would be typed again: -f once per
// file, --contexts as one list, booleans bare, values quoted for a shell
// where they need it; flags that do not choose the target are left out.
func TestTargetFlags(t *testing.T) {
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	genericclioptions.NewConfigFlags(false).AddFlags(cmd.Flags())
	(&contextFlags{}).addFlags(cmd.Flags())
	(&manifestFlags{}).addFlags(cmd)
	cmd.Flags().String("canary", "", "")
	require.NoError(t, cmd.ParseFlags([]string{"-f", "deploy/a.yaml,deploy/b", "--local", "-R", "--contexts", "east", "--contexts=west", "-n", "it's", "--canary", "v2", "--skip-unreachable=false"}))
	assert.Equal(t, ` -n 'it'\''s' --contexts east,west -f deploy/a.yaml -f deploy/b -R --local`, targetFlags(cmd))
	require.NoError(t, cmd.ParseFlags([]string{"--all-contexts"}))
	assert.Contains(t, targetFlags(cmd), " --all-contexts")
}
