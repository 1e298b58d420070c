package cmd

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// -v 6 logs every request to the API server on standard error, as kubectl
// -v 6 does; without -v client-go's lines stay out of the output.
func TestVerbosityLogsRequests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden by the test","reason":"Forbidden","code":403}`)
	}))
	t.Cleanup(srv.Close)
	kubeconfig := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: secret-token}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: shop}}]
current-context: c
`, srv.URL)), 0o600))
	run := func(args ...string) (stderr string) {
		var out, errOut bytes.Buffer
		cmd := NewCmdCanary(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		cmd.SetArgs(append(args, "--kubeconfig", kubeconfig))
		require.Error(t, cmd.Execute())
		return errOut.String()
	}
	stderr := run("check", "reviews", "-v", "6")
	assert.Regexp(t, `round_trippers\.go:\d+\] "Response" verb="GET" url="`+srv.URL+`/api[^"]*" status="403 Forbidden" milliseconds=\d+`, stderr)
	assert.NotContains(t, stderr, "secret-token", "-v 6 shows no credentials")

	stderr = run("check", "reviews", "--v=8")
	assert.Contains(t, stderr, `"Response Body" body=`, "-v 8 logs the bodies too")

	assert.Empty(t, run("check", "reviews"), "the default level logs nothing")
	assert.Empty(t, run("check", "reviews", "-v", "0"))
}
