//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
// changes, until Ctrl-C, which ends it cleanly.
func TestStatusWatchPrintsChanges(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.mustCanary(t, "start", "reviews", "-n", ns)

	var out syncBuffer
	cmd := exec.Command("kubectl", "canary", "status", "-n", ns, "--watch", "--interval", "200ms")
	cmd.Env = c.commandEnv()
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok(out.String()) {
			require.True(t, time.Now().Before(deadline), "status --watch never printed %s:\n%s", what, out.String())
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("the first row", func(s string) bool { return strings.Contains(s, "10%") })
	c.mustCanary(t, "weight", "reviews", "40", "-n", ns)
	waitFor("the changed row", func(s string) bool { return strings.Contains(s, "40%") })

	// kubectl runs the plugin in its own process, so the signal reaches it.
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	require.NoError(t, cmd.Wait(), "Ctrl-C ends --watch cleanly:\n%s", out.String())
	text := out.String()
	assert.Equal(t, 1, strings.Count(text, "SERVICE"), "one header:\n%s", text)
	assert.Equal(t, 2, strings.Count(text, "\nreviews"), "a row at start and one after the change, none for unchanged reads:\n%s", text)
}
