//go:build e2e

package e2e

import (
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// TestHungAPIServer: an "API server" that accepts connections and never
// answers. With --request-timeout 2s the plugin gives up within a few
// seconds and says that the API server did not answer, for discovery (cold
// cache) and for the requests after it (warm cache), for reads and writes.
func TestHungAPIServer(t *testing.T) {
	t.Parallel()
	c := shared
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn) // held open, never read or written
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, conn := range conns {
			conn.Close()
		}
	})
	hung := editKubeconfig(t, c.kubeconfig, func(cfg *clientcmdapi.Config) {
		for _, cl := range cfg.Clusters {
			cl.Server = "https://" + ln.Addr().String()
		}
	})
	ns := c.newNamespace(t)
	c.deployVersions(t, ns, "reviews", "v1", "v2")

	// A discovery cache of the test's own. Warm: the shared cluster's
	// discovery, filed under the hung server's address, so that the plugin
	// gets past discovery and hangs on its first real request.
	cold := t.TempDir()
	warm := t.TempDir()
	r := run(t, c.commandEnv("KUBECACHEDIR="+warm), "", "canary", "check", "reviews", "-n", ns)
	require.NoError(t, r.err, "%s", r)
	entries, err := os.ReadDir(filepath.Join(warm, "discovery"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "discovery cache of the shared cluster")
	hungKey := filepath.Join(warm, "discovery", "127.0.0.1_"+portOf(t, ln.Addr()))
	require.NoError(t, os.Rename(filepath.Join(warm, "discovery", entries[0].Name()), hungKey))

	for _, tc := range []struct {
		name  string
		cache string
		args  []string
	}{
		{"discovery", cold, []string{"status"}},
		{"list", warm, []string{"status"}},
		{"list in a namespace", warm, []string{"status", "reviews", "-n", ns}},
		{"start", warm, []string{"start", "reviews", "-n", ns}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"canary", "--kubeconfig", hung, "--request-timeout", "2s"}, tc.args...)
			started := time.Now()
			r := run(t, c.commandEnv("KUBECACHEDIR="+tc.cache), "", args...)
			took := time.Since(started)
			require.Error(t, r.err, "%s", r)
			assert.Less(t, took, 10*time.Second, "%v took %s with --request-timeout 2s", tc.args, took)
			assert.Contains(t, r.stderr, "did not answer", "the error says the API server did not answer:\n%s", r)
			assert.Contains(t, r.stderr, "--request-timeout", "the error says how to wait longer")
			assert.Contains(t, r.stderr, ln.Addr().String(), "the error names the server")
		})
	}
	t.Cleanup(func() {
		assert.Empty(t, c.versionsOf(t, ns), "nothing reached the real cluster")
	})
}

func portOf(t *testing.T, addr net.Addr) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr.String())
	require.NoError(t, err)
	return port
}
