package cmd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// runLocal runs `kubectl canary ARGS` with no cluster at all, at a fixed
// time so that the state annotations written into files are golden.
func runLocal(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	fixed := func() time.Time { return time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC) }
	cmd := newCmdCanary(&globalOptions{conn: canary.ConnectWith(noCluster{}), now: fixed, IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}})
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// noCluster is a connection to no cluster: namespace shop, no clients.
type noCluster struct{}

func (noCluster) Namespace() (string, error) { return "shop", nil }
func (noCluster) Clients() (*kube.Clients, error) {
	return nil, errors.New("this test has no cluster to connect to")
}

// copyManifests copies the files of a testdata directory into a new one.
func copyManifests(t *testing.T, from string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, e := range entries {
		text, err := os.ReadFile(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), text, 0o644))
	}
	return dir
}

// goldenDir compares every file of dir with the golden directory.
func goldenDir(t *testing.T, dir, golden string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		text, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		testutil.Golden(t, filepath.Join(golden, e.Name()), text)
	}
	wanted, err := os.ReadDir(golden)
	require.NoError(t, err)
	for _, e := range wanted {
		assert.Contains(t, names, e.Name(), "a file of %s was not written", golden)
	}
}

// Every verb on manifests, byte for byte: the files of testdata/manifests/
// verbs/in go through start, weight, route, promote, a second canary and
// its abort; after each, every file must equal its golden copy (the edited
// nodes changed, every comment and the untouched documents as they were).
func TestEveryVerbOnManifestFiles(t *testing.T) {
	dir := copyManifests(t, testutil.Testdata("manifests", "verbs", "in"))
	steps := []struct {
		name string
		args []string
	}{
		{"1-start", []string{"start", "reviews", "--weight", "10"}},
		{"2-weight", []string{"weight", "reviews", "50"}},
		{"3-route", []string{"route", "reviews", "--header", "x-tester=yes"}},
		{"4-promote", []string{"promote", "reviews"}},
		{"5-start-again", []string{"start", "reviews", "--canary", "v1", "--weight", "20", "--sticky"}},
		{"6-abort", []string{"abort", "reviews"}},
	}
	for _, step := range steps {
		stdout, stderr, err := runLocal(append(step.args, "-f", dir, "--local")...)
		require.NoError(t, err, "%s: %s", step.name, stderr)
		testutil.Golden(t, testutil.Testdata("manifests", "verbs", step.name+".stdout"), []byte(strings.ReplaceAll(stdout, dir, "DIR")))
		goldenDir(t, dir, testutil.Testdata("manifests", "verbs", step.name))
		if step.name != "4-promote" {
			assert.Contains(t, stderr, "readiness not checked")
		}
		// Running it again changes nothing.
		before := snapshotDir(t, dir)
		_, stderr, err = runLocal(append(step.args, "-f", dir, "--local")...)
		require.NoError(t, err, "%s again: %s", step.name, stderr)
		assert.Equal(t, before, snapshotDir(t, dir), "%s run twice changed the files", step.name)
	}
}

func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		text, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = string(text)
	}
	return out
}

// --dry-run prints the diff of the files and writes nothing; status and
// check read the files.
func TestManifestDryRunStatusAndCheck(t *testing.T) {
	dir := copyManifests(t, testutil.Testdata("manifests", "verbs", "in"))
	before := snapshotDir(t, dir)
	stdout, stderr, err := runLocal("start", "reviews", "-f", dir, "--local", "--dry-run")
	require.NoError(t, err, stderr)
	testutil.Golden(t, testutil.Testdata("manifests", "verbs", "start-dry-run.diff"), []byte(strings.ReplaceAll(stdout, dir, "DIR")))
	assert.Equal(t, before, snapshotDir(t, dir), "--dry-run wrote")

	_, stderr, err = runLocal("start", "reviews", "-f", dir, "--local", "--weight", "25")
	require.NoError(t, err, stderr)
	stdout, stderr, err = runLocal("status", "-f", dir, "--local")
	require.NoError(t, err, stderr)
	rows := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, rows, 2, stdout)
	assert.Regexp(t, `^reviews\s+v1\s+v2\s+25%\s+-\s+Progressing\s+\?/3\s+\?/1\s`, rows[1])
	stdout, stderr, err = runLocal("check", "reviews", "-f", dir, "--local")
	require.NoError(t, err, stderr)
	assert.Contains(t, stdout, "no findings")
	assert.Contains(t, stderr, "Note: readiness not checked")
}

func TestManifestFlagsThatCannotGoTogether(t *testing.T) {
	for args, want := range map[string]string{
		"start reviews --local":                        "--local reads the objects from manifest files only",
		"start reviews -R":                             "-R reads the directories of -f",
		"start reviews -f x --wait":                    "leave out --wait with -f",
		"weight reviews 5 -f x --dry-run=server":       "use --dry-run to see the diff of the files",
		"status -f x --watch":                          "leave out one or the other",
		"check reviews --local":                        "--local reads the objects from manifest files only",
		"start reviews -f " + os.DevNull + "x --local": "no such file",
		"run reviews -f x":                             "run steps the canary in the live cluster and cannot write manifests",
		"start reviews --contexts a --all-contexts":    "--contexts and --all-contexts both pick the clusters",
		"weight reviews 5 --skip-unreachable":          "--skip-unreachable goes with --contexts",
		"start reviews -f x --contexts a":              "leave out --contexts",
	} {
		_, _, err := runLocal(strings.Fields(args)...)
		require.Error(t, err, args)
		assert.Contains(t, err.Error(), want, args)
	}
}
