package canary

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// someoneEditsFirst is the manifests, edited on disk by someone else right
// before the first write: a teammate saving the file meanwhile.
type someoneEditsFirst struct {
	*Files
	path   string
	edited bool
}

func (s *someoneEditsFirst) Write(ctx context.Context, c routing.Change, dryRun bool) (*unstructured.Unstructured, error) {
	if !s.edited && !dryRun {
		s.edited = true
		text, err := os.ReadFile(s.path)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(s.path, append(text, "# reviewed by the on-call\n"...), 0o644); err != nil {
			return nil, err
		}
	}
	return s.Files.Write(ctx, c, dryRun)
}

// A file changed on disk between the read and the write is a conflict: the
// engine reads it again and plans anew, and both edits are kept.
func TestFilesReplanAfterAFileChangedOnDisk(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"app.yaml", "routing.yaml"} {
		text, err := os.ReadFile(testutil.Testdata("manifests", "verbs", "in", name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), text, 0o644))
	}
	routingFile := filepath.Join(dir, "routing.yaml")
	store := &someoneEditsFirst{Files: &Files{Paths: []string{dir}, Namespace: "shop"}, path: routingFile}
	engine := &Engine{Store: store}
	result, err := engine.Change(context.Background(), Request{Namespace: "shop", Service: "reviews", Intent: routing.Intent{Action: routing.ActionWeight, Weight: 30}})
	require.Error(t, err, "no canary runs yet")
	assert.Nil(t, result)

	store.edited = true // not during start
	_, err = engine.Change(context.Background(), Request{Namespace: "shop", Service: "reviews", Intent: routing.Intent{Action: routing.ActionStart, Weight: 10}})
	require.NoError(t, err)
	store.edited = false
	_, err = engine.Change(context.Background(), Request{Namespace: "shop", Service: "reviews", Intent: routing.Intent{Action: routing.ActionWeight, Weight: 30}})
	require.NoError(t, err)
	text, err := os.ReadFile(routingFile)
	require.NoError(t, err)
	assert.Contains(t, string(text), "# reviewed by the on-call\n", "the other edit was lost")
	assert.Contains(t, string(text), "      weight: 30\n", "the change was lost")
	assert.True(t, store.edited)
}
