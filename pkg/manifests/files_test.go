package manifests

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const routing = `# reviews routing
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: other
data: {a: "1"}
`

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

func TestLoadFollowsKubectlPaths(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "routing.yaml", routing)
	write(t, dir, "notes.txt", "{{ not a manifest }}")
	write(t, dir, "sub/deep.yml", "apiVersion: v1\nkind: Service\nmetadata: {name: deep}\n")
	write(t, dir, "kustomization.yaml", "resources: [routing.yaml]\n")

	set, err := Load([]string{dir}, false, "shop", filepath.Join(dir, "reviews-canary.yaml"))
	require.NoError(t, err)
	var names []string
	for _, obj := range set.Objects() {
		names = append(names, obj.GetKind()+" "+obj.GetNamespace()+"/"+obj.GetName())
	}
	// A kustomization is no object; sub/ needs -R; .txt files are skipped.
	assert.Equal(t, []string{"VirtualService shop/reviews", "ConfigMap other/settings"}, names)
	assert.True(t, set.Objects("VirtualService")[0].ImplicitNamespace)
	assert.False(t, set.Objects("ConfigMap")[0].ImplicitNamespace)

	set, err = Load([]string{dir}, true, "shop", "")
	require.NoError(t, err)
	assert.Len(t, set.Objects("Service"), 1, "-R reads subdirectories")
}

func TestLoadRefusals(t *testing.T) {
	cases := map[string]struct {
		files map[string]string
		want  string
	}{
		"template":      {map[string]string{"vs.yaml": "kind: VirtualService\nmetadata:\n  name: {{ .Values.name }}\n"}, "vs.yaml:3 is a template"},
		"defined twice": {map[string]string{"a.yaml": routing, "b.yaml": "---\n" + routing}, "VirtualService shop/reviews is defined twice, in "},
		"invalid":       {map[string]string{"a.yaml": "kind: [\n"}, "a.yaml: document 1 is not valid YAML"},
		"nothing":       {map[string]string{"a.txt": routing}, "no manifest files found"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for file, text := range tc.files {
				write(t, dir, file, text)
			}
			_, err := Load([]string{dir}, false, "shop", "")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := Load([]string{"-"}, false, "shop", "")
	assert.ErrorContains(t, err, "-f takes local files and directories only")
}

func TestApplyEditsInPlaceAndAddsNewObjects(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "routing.yaml", routing)
	newFile := filepath.Join(dir, "reviews-canary.yaml")
	set, err := Load([]string{path}, false, "shop", newFile)
	require.NoError(t, err)

	vs := set.Objects("VirtualService")[0].DeepCopy()
	require.NoError(t, unstructured.SetNestedSlice(vs.Object, []interface{}{
		map[string]interface{}{"destination": map[string]interface{}{"host": "reviews", "subset": "v1"}, "weight": int64(90)},
		map[string]interface{}{"destination": map[string]interface{}{"host": "reviews", "subset": "v2"}, "weight": int64(10)},
	}, "spec", "http"))
	_, err = set.Apply(vs)
	require.NoError(t, err)
	dr := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]interface{}{"name": "reviews", "namespace": "shop"},
		"spec":     map[string]interface{}{"host": "reviews"},
	}}
	_, err = set.Apply(dr)
	require.NoError(t, err)

	changed := set.ChangedFiles()
	require.Len(t, changed, 2)
	assert.Contains(t, string(changed[0].Text), "# reviews routing\n", "comments kept")
	assert.Contains(t, string(changed[0].Text), "---\napiVersion: v1\nkind: ConfigMap\n", "the other document kept")
	assert.NotContains(t, string(changed[0].Text), "namespace: shop", "an implicit namespace stays implicit")
	assert.Equal(t, newFile, changed[1].Path)
	assert.Equal(t, "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\nspec:\n  host: reviews\n", string(changed[1].Text))
	for _, f := range changed {
		require.NoError(t, f.Save())
	}

	// Read again, the edits are there, and nothing is left to change.
	again, err := Load([]string{path}, false, "shop", newFile)
	require.NoError(t, err)
	assert.Len(t, again.Objects("DestinationRule"), 1, "the new objects file is read with the paths")
	_, err = again.Apply(vs)
	require.NoError(t, err)
	assert.Empty(t, again.ChangedFiles())
}

func TestSaveRefusesAFileChangedOnDisk(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "routing.yaml", routing)
	set, err := Load([]string{path}, false, "shop", "")
	require.NoError(t, err)
	vs := set.Objects("VirtualService")[0].DeepCopy()
	vs.SetLabels(map[string]string{"team": "shop"})
	f, err := set.Apply(vs)
	require.NoError(t, err)
	write(t, dir, "routing.yaml", routing+"# someone else\n")
	var changed *ChangedOnDiskError
	require.ErrorAs(t, f.Save(), &changed)
	assert.Equal(t, routing+"# someone else\n", string(must(os.ReadFile(path))))
}

func TestApplyRefusesJSON(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "vs.json", `{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"reviews"},"spec":{"hosts":["reviews"]}}`)
	set, err := Load([]string{path}, false, "shop", "")
	require.NoError(t, err)
	vs := set.Objects("VirtualService")[0].DeepCopy()
	vs.SetLabels(map[string]string{"team": "shop"})
	_, err = set.Apply(vs)
	assert.ErrorContains(t, err, path+" holds VirtualService shop/reviews as JSON")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
