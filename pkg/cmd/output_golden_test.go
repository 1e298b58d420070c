package cmd

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// goldenNow is the clock of the golden tests: an hour after the recorded
// canary of testdata/routing/recorded-state started.
var goldenNow = time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)

// runAt is run with the commands' clock at now.
func (f *fakeCluster) runAt(now time.Time, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := newCmdCanary(&globalOptions{conn: canary.ConnectWith(f), now: func() time.Time { return now }, syncReadTooSoon: fakeSyncReadTooSoon,
		IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}})
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// outputFormats are the -o formats of every golden file, by the name of
// the file, for a command whose templates are testdata/cmd/output/NAME.*;
// table adds the command's own table, -o wide and --no-headers.
func outputFormats(name string, table bool) map[string][]string {
	templates := func(ext string) string { return testutil.Testdata("cmd", "output", name+"."+ext) }
	jsonpath := map[string]string{
		"status":  `{.items[*].metadata.name}`,
		"check":   `{.findings[*].severity}`,
		"analyze": `{.decision.verdict}`,
		"version": `{.version}`,
	}[name]
	columns := map[string]string{
		"status":  "SERVICE:.metadata.name,NAMESPACE:.metadata.namespace,WEIGHT:.weight,PHASE:.phase",
		"check":   "SERVICE:.metadata.name,SEVERITIES:.findings[*].severity,OBJECTS:.findings[*].object",
		"analyze": "SERVICE:.metadata.name,VERDICT:.decision.verdict,WINDOW:.window",
		"version": "VERSION:.version,COMMIT:.commit",
	}[name]
	formats := map[string][]string{
		"json":                {"-o", "json"},
		"yaml":                {"-o", "yaml"},
		"name":                {"-o", "name"},
		"jsonpath":            {"-o", "jsonpath=" + jsonpath},
		"jsonpath-file":       {"-o", "jsonpath-file=" + templates("jsonpath")},
		"jsonpath-as-json":    {"-o", "jsonpath-as-json=" + jsonpath},
		"kyaml":               {"-o", "kyaml"},
		"template":            {"--template", "{{.apiVersion}}"},
		"go-template":         {"-o", "go-template={{.kind}} {{.apiVersion}}"},
		"go-template-file":    {"-o", "go-template-file=" + templates("gotemplate")},
		"custom-columns":      {"-o", "custom-columns=" + columns},
		"custom-columns-file": {"-o", "custom-columns-file=" + templates("columns")},
		"text":                nil,
	}
	if table {
		formats["wide"] = []string{"-o", "wide"}
		formats["no-headers"] = []string{"--no-headers"}
		formats["custom-columns-no-headers"] = []string{"-o", "custom-columns=" + columns, "--no-headers"}
	}
	return formats
}

// goldenOutput compares what one command printed in one format with its
// golden file: JSON and YAML as documents, the rest as text.
func goldenOutput(t *testing.T, file, format string, out string) {
	t.Helper()
	// The Go version and platform of the build are not the golden file's.
	out = strings.ReplaceAll(out, runtime.Version(), "GOVERSION")
	out = strings.ReplaceAll(out, runtime.GOOS+"/"+runtime.GOARCH, "PLATFORM")
	switch format {
	case "json":
		testutil.GoldenJSON(t, testutil.Testdata("cmd", "output", file+".json"), []byte(out))
		assert.NotContains(t, out, "null", "empty lists are [], never null")
	case "yaml":
		testutil.GoldenYAML(t, testutil.Testdata("cmd", "output", file+".yaml"), []byte(out))
		assert.NotContains(t, out, "null")
	default:
		testutil.Golden(t, testutil.Testdata("cmd", "output", file+"."+format+".txt"), []byte(out))
	}
}

// Every -o format of status, check, analyze and version, against golden
// files (testdata/cmd/output; go test ./pkg/cmd -run TestOutputGolden
// -update rewrites them).
func TestOutputGolden(t *testing.T) {
	prom := healthyPrometheus(t)
	unready := func(f *fakeCluster) {
		d, err := f.core.AppsV1().Deployments("shop").Get(context.Background(), "reviews-v2", metav1GetOptions)
		require.NoError(t, err)
		d.Status.AvailableReplicas = 0
		_, err = f.core.AppsV1().Deployments("shop").UpdateStatus(context.Background(), d, metav1UpdateOptions)
		require.NoError(t, err)
	}
	cases := []struct {
		file, templates string
		table           bool
		setup           func(*fakeCluster)
		args            []string
		// verdict: the command exits with a verdict or findings, not an
		// error of its own.
		exits bool
	}{
		{"status", "status", true, nil, []string{"status"}, false},
		{"status-all-namespaces", "status", true, nil, []string{"status", "-A"}, false},
		{"check", "check", true, unready, []string{"check", "reviews"}, true},
		{"check-clean", "check", true, nil, []string{"check", "reviews"}, false},
		{"analyze", "analyze", true, nil, []string{"analyze", "reviews", "--window", "10s", "--prometheus-url", prom}, true},
		{"version", "version", false, nil, []string{"version"}, false},
	}
	for _, c := range cases {
		for format, flags := range outputFormats(c.templates, c.table) {
			t.Run(c.file+"/"+format, func(t *testing.T) {
				f := newFakeCluster(t, "recorded-state", "shop")
				if c.setup != nil {
					c.setup(f)
				}
				out, _, err := f.runAt(goldenNow, append(c.args, flags...)...)
				if c.exits && err != nil {
					var verdict interface{ ExitCode() int }
					if !errors.As(err, &verdict) {
						assert.Contains(t, err.Error(), "error(s) found", "check's findings")
					}
				} else {
					require.NoError(t, err)
				}
				goldenOutput(t, c.file, format, out)
			})
		}
	}
}

// With no canary, status -o json is a List whose items are [], and -o name
// prints nothing; the table says so on standard error.
func TestStatusOfNoCanaries(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	out, stderr, err := f.run("status", "-o", "json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": []}`, out)
	assert.Empty(t, stderr)
	out, _, err = f.run("status", "-o", "name")
	require.NoError(t, err)
	assert.Empty(t, out)
	out, stderr, err = f.run("status", "--no-headers")
	require.NoError(t, err)
	assert.Empty(t, out)
	assert.Equal(t, "No canaries found in namespace shop.\n", stderr)
}

// The template files of the golden tests exist (a missing one would make
// the -file formats fail, not pass).
func TestOutputTemplatesExist(t *testing.T) {
	for _, name := range []string{"status", "check", "analyze", "version"} {
		for _, ext := range []string{"jsonpath", "gotemplate", "columns"} {
			assert.FileExists(t, filepath.Join(testutil.Testdata("cmd", "output"), name+"."+ext))
		}
	}
}
