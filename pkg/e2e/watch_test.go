//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// syncBuffer is a bytes.Buffer a running command and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// status --watch prints the table once, then a row again whenever a canary
// changes, until Ctrl-C, which ends it cleanly. It follows the API server's
// watch events: it reads nothing more while nothing changes, and a change
// shows well within the 2 s it once waited between reads.
func TestStatusWatchPrintsChanges(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.mustCanary(t, "start", "reviews", "-n", ns)

	cmd, out := startWatch(t, c.commandEnv(), "-n", ns)
	waitForOutput(t, out, "the first row", func(s string) bool { return strings.Contains(s, "10%") })
	readsBefore := pluginReads(t, c, ns)
	time.Sleep(2500 * time.Millisecond)
	assert.Equal(t, readsBefore, pluginReads(t, c, ns), "no reads while nothing changes")

	c.mustCanary(t, "weight", "reviews", "40", "-n", ns)
	written := time.Now()
	waitForOutput(t, out, "the changed row", func(s string) bool { return strings.Contains(s, "40%") })
	t.Logf("the changed row came %v after weight returned", time.Since(written))
	assert.Less(t, time.Since(written), time.Second, "the watch event, not a 2 s poll, brings the row")

	// kubectl runs the plugin in its own process, so the signal reaches it.
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	require.NoError(t, cmd.Wait(), "Ctrl-C ends --watch cleanly:\n%s", out.String())
	text := out.String()
	assert.Equal(t, 1, strings.Count(text, "SERVICE"), "one header:\n%s", text)
	assert.Equal(t, 2, strings.Count(text, "\nreviews"), "a row at start and one after the change, none for unchanged reads:\n%s", text)
}

// A user whose Role in the namespace grants watch next to the README's list
// verbs follows the canary too. It may not watch VirtualServices
// everywhere, so the one of another namespace that carries the canary's
// state (weight changes only that one) is read with a GET, on each change
// and every 2 s. Without watch, --watch stops at once and says what to grant.
func TestStatusWatchWithARoleInOneNamespace(t *testing.T) {
	t.Parallel()
	c := shared
	ns, other := c.newNamespace(t), c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.create(t, other, fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop-reviews}
spec:
  hosts: [reviews.%s.svc.cluster.local]
  http:
  - route:
    - destination: {host: reviews.%[1]s.svc.cluster.local}
`, ns))
	c.mustCanary(t, "start", "reviews", "-n", ns, "--weight", "20")
	role := readmeRole(t)
	role.Rules = append(role.Rules,
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"watch"}},
		rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"watch"}},
		rbacv1.PolicyRule{APIGroups: []string{"networking.istio.io"}, Resources: []string{"virtualservices", "destinationrules"}, Verbs: []string{"watch"}})
	c.bindUser(t, ns, role)
	c.bindUser(t, other, &rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: metav1.ObjectMeta{Name: "read-virtualservices"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"networking.istio.io"}, Resources: []string{"virtualservices"}, Verbs: []string{"get"}}}})

	userEnv := c.commandEnv("KUBECONFIG=" + c.userKubeconfig)
	cmd, out := startWatch(t, userEnv, "-n", ns)
	waitForOutput(t, out, "the first row", func(s string) bool { return strings.Contains(s, "20%") })
	c.mustCanary(t, "weight", "reviews", "50", "-n", ns)
	waitForOutput(t, out, "the changed row", func(s string) bool { return strings.Contains(s, "50%") })
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	require.NoError(t, cmd.Wait(), "Ctrl-C ends --watch cleanly:\n%s", out.String())

	listOnly := c.newNamespace(t)
	c.deployVersions(t, listOnly, "reviews", "v1", "v2")
	c.mustCanary(t, "start", "reviews", "-n", listOnly)
	c.bindUser(t, listOnly, readmeRole(t))
	r := c.canary(t, []string{"KUBECONFIG=" + c.userKubeconfig}, "status", "-n", listOnly, "--watch")
	require.Error(t, r.err, "%s", r)
	assert.Regexp(t, `not allowed to list and watch \S+ in namespace `+listOnly, r.stderr)
}

// startWatch starts `kubectl canary status --watch ARGS` in env; out
// gathers its standard output and error.
func startWatch(t *testing.T, env []string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command("kubectl", append([]string{"canary", "status", "--watch"}, args...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, out
}

// waitForOutput waits until ok accepts what the command printed so far.
func waitForOutput(t *testing.T, out *syncBuffer, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok(out.String()) {
		require.True(t, time.Now().Before(deadline), "status --watch never printed %s:\n%s", what, out.String())
		time.Sleep(10 * time.Millisecond)
	}
}

// pluginReads counts the plugin's list and get requests in ns.
func pluginReads(t *testing.T, c *cluster, ns string) int {
	n := 0
	for _, e := range c.audit(t, ns) {
		if strings.HasPrefix(e.UserAgent, "kubectl-canary") && (e.Verb == "list" || e.Verb == "get") {
			n++
		}
	}
	return n
}
