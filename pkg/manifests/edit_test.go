package manifests

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	k8syaml "sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/manifests/edit/*/out.yaml with Edit's output")

// editCases is where the golden cases live: one directory per case with
// in.yaml (the document), desired.yaml (the object to hold, in any
// formatting) and out.yaml (the exact expected text).
var editCases = filepath.Join("..", "..", "testdata", "manifests", "edit")

// strictEdit makes a precise edit that misses fail the test instead of
// falling back to re-encoding the whole document.
func strictEdit(t testing.TB) {
	rewriteWholeOnFailure = false
	t.Cleanup(func() { rewriteWholeOnFailure = true })
}

func TestEditGolden(t *testing.T) {
	strictEdit(t)
	dirs, err := filepath.Glob(filepath.Join(editCases, "*"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			in := goldenBytes(t, filepath.Join(dir, "in.yaml"))
			desired := goldenObject(t, filepath.Join(dir, "desired.yaml"))
			out, err := Edit(in, desired)
			require.NoError(t, err)
			golden := filepath.Join(dir, "out.yaml")
			if *update {
				require.NoError(t, os.WriteFile(golden, out, 0o644))
			}
			assert.Equal(t, string(goldenBytes(t, golden)), string(out), "output differs from %s", golden)
			assertHolds(t, out, desired)
			again, err := Edit(out, desired)
			require.NoError(t, err)
			assert.Equal(t, string(out), string(again), "a second Edit changed the output")
		})
	}
}

func goldenBytes(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

func goldenObject(t testing.TB, path string) map[string]interface{} {
	t.Helper()
	var obj map[string]interface{}
	require.NoError(t, k8syaml.Unmarshal(goldenBytes(t, path), &obj))
	return obj
}

// assertHolds checks that document parses to exactly want, comparing both
// after a JSON round trip so that int64 and float64 compare alike.
func assertHolds(t testing.TB, document []byte, want map[string]interface{}) {
	t.Helper()
	var got map[string]interface{}
	require.NoError(t, k8syaml.Unmarshal(document, &got), "output does not parse:\n%s", document)
	assert.Equal(t, jsonRoundTrip(t, want), jsonRoundTrip(t, got), "output:\n%s", document)
}

func jsonRoundTrip(t testing.TB, v interface{}) interface{} {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	var out interface{}
	require.NoError(t, json.Unmarshal(data, &out))
	return out
}

func TestEditRefuses(t *testing.T) {
	strictEdit(t)
	desired := map[string]interface{}{"kind": "Service", "metadata": map[string]interface{}{"name": "b"}}
	for name, tc := range map[string]struct{ document, err string }{
		"not YAML":          {"kind: [Service\n", "does not parse as YAML"},
		"a list at root":    {"- kind: Service\n", "not a YAML mapping at its root"},
		"a scalar at root":  {"Service\n", "not a YAML mapping at its root"},
		"empty":             {"# only a comment\n", "document is empty"},
		"two documents":     {"kind: Service\n---\nkind: Pod\n", "more than one YAML document"},
		"an anchor":         {"kind: Service\nmetadata: &m\n  name: a\n", "line 2: YAML anchors and aliases are not supported"},
		"an alias":          {"kind: Service\nx: &n 1\nmetadata:\n  name: *n\n", "anchors and aliases are not supported"},
		"a merge key":       {"kind: Service\nmetadata:\n  <<: {name: a}\n", "merge keys (<<) are not supported"},
		"a lone CR":         {"kind: Service\rmetadata:\r  name: a\r", "line breaks other than LF and CRLF"},
		"a duplicate key":   {"kind: Service\nmetadata:\n  name: a\n  name: a\n", "name"},
		"a NaN in the text": {"kind: Service\nx: .nan\nmetadata:\n  name: a\n", "does not parse as a Kubernetes object"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Edit([]byte(tc.document), desired)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}

func TestEditReturnsAnUnchangedDocumentAsItIs(t *testing.T) {
	// Even one Edit could not change: nothing to change, nothing refused.
	document := []byte("kind: Service\na: &n 1\nb: *n # alias\n")
	out, err := Edit(document, map[string]interface{}{"kind": "Service", "a": int64(1), "b": 1.0})
	require.NoError(t, err)
	assert.Equal(t, string(document), string(out))
}

func TestEditKeepsCRLF(t *testing.T) {
	strictEdit(t)
	document := "kind: Service # crlf\r\nmetadata:\r\n  name: a\r\n  labels:\r\n    app: a\r\nspec:\r\n  ports:\r\n  - port: 80\r\n"
	desired := map[string]interface{}{
		"kind":     "Service",
		"metadata": map[string]interface{}{"name": "b", "labels": map[string]interface{}{"app": "a", "tier": "web"}},
		"spec":     map[string]interface{}{"ports": []interface{}{map[string]interface{}{"port": int64(80)}, map[string]interface{}{"port": int64(443)}}},
	}
	out, err := Edit([]byte(document), desired)
	require.NoError(t, err)
	assert.Equal(t, "kind: Service # crlf\r\nmetadata:\r\n  name: b\r\n  labels:\r\n    app: a\r\n    tier: web\r\n"+
		"spec:\r\n  ports:\r\n  - port: 80\r\n  - port: 443\r\n", string(out))
}

func TestEditKeepsAMissingFinalNewline(t *testing.T) {
	strictEdit(t)
	out, err := Edit([]byte("kind: Service\nmetadata:\n  name: a"), map[string]interface{}{
		"kind": "Service", "metadata": map[string]interface{}{"name": "a", "namespace": "ns"},
	})
	require.NoError(t, err)
	assert.Equal(t, "kind: Service\nmetadata:\n  name: a\n  namespace: ns", string(out))

	// A block scalar at the very end reads the newline an edit adds after
	// it, so it gets written again.
	out, err = Edit([]byte("a: 1\nb: |\n  text"), map[string]interface{}{"a": int64(2), "b": "text"})
	require.NoError(t, err)
	assertHolds(t, out, map[string]interface{}{"a": int64(2), "b": "text"})
}

func TestEditRewritesAFlowRoot(t *testing.T) {
	strictEdit(t)
	out, err := Edit([]byte("# head\n{kind: Service, metadata: {name: a}} # line\n# foot\n"), map[string]interface{}{
		"kind": "Service", "metadata": map[string]interface{}{"name": "b"},
	})
	require.NoError(t, err)
	assert.Equal(t, "# head\n{kind: Service, metadata: {name: b}} # line\n# foot\n", string(out))
}
