// Package testutil loads the Kubernetes objects of test fixtures and
// compares output with golden files under the repository's testdata/.
package testutil

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

// Testdata returns the path of a file under the repository's testdata/.
func Testdata(parts ...string) string {
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..", "testdata")
	return filepath.Join(append([]string{root}, parts...)...)
}

// ReadObjects decodes a multi-document YAML file into unstructured objects,
// with integers as int64 the way the API machinery decodes them.
func ReadObjects(t testing.TB, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return DecodeObjects(t, data)
}

// DecodeObjects decodes multi-document YAML into unstructured objects.
func DecodeObjects(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(string(data), "\n---") {
		jsonData, err := yaml.YAMLToJSON([]byte(doc))
		require.NoError(t, err)
		if len(bytes.TrimSpace(jsonData)) == 0 || string(jsonData) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		require.NoError(t, u.UnmarshalJSON(jsonData))
		out = append(out, u)
	}
	return out
}

// Golden compares got with the golden file at path, or rewrites the file
// when the tests run with -update.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing; run the tests with -update to create it")
	require.Equal(t, string(want), string(got), "output differs from %s; run the tests with -update if the change is intended", path)
}

// GoldenJSON compares got with the golden file at path as JSON documents
// (the same values, whatever the indentation and key order), or rewrites
// the file when the tests run with -update.
func GoldenJSON(t testing.TB, path string, got []byte) {
	t.Helper()
	goldenDocuments(t, path, got, require.JSONEq)
}

// GoldenYAML is GoldenJSON for YAML documents.
func GoldenYAML(t testing.TB, path string, got []byte) {
	t.Helper()
	goldenDocuments(t, path, got, require.YAMLEq)
}

// goldenDocuments compares got with the golden file at path by equal, or
// rewrites the file when the tests run with -update.
func goldenDocuments(t testing.TB, path string, got []byte, equal func(require.TestingT, string, string, ...interface{})) {
	t.Helper()
	if *update {
		Golden(t, path, got)
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing; run the tests with -update to create it")
	equal(t, string(want), string(got), "output differs from %s; run the tests with -update if the change is intended", path)
}
