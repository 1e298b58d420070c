package main

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const input = `# leading comment
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: wasmplugins.extensions.istio.io
spec:
  group: extensions.istio.io
  versions:
  - name: v1alpha1
    served: true
    storage: true
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: virtualservices.networking.istio.io
spec:
  group: networking.istio.io
  versions:
  - name: v1
    served: true
    storage: true
  - name: v1alpha3
    served: true
    storage: false
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        properties:
          big:
            maximum: 4294967295
            type: integer
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: onlyv1.networking.istio.io
spec:
  group: networking.istio.io
  versions:
  - name: v1
    served: true
    storage: true
---
`

type crd struct {
	Metadata struct{ Name string }
	Spec     struct {
		Versions []struct {
			Name            string
			Served, Storage bool
			Schema          map[string]any
		}
	}
}

func TestRewrite(t *testing.T) {
	out, notes, err := Rewrite([]byte(input), "networking.istio.io", []string{"v1beta1", "v1alpha3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "onlyv1.networking.istio.io") {
		t.Errorf("notes = %q, want one about onlyv1", notes)
	}
	docs := strings.Split(string(out), "---\n")
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2:\n%s", len(docs), out)
	}
	if !strings.HasPrefix(docs[0], "# leading comment\n") || !strings.Contains(docs[0], "extensions.istio.io") {
		t.Errorf("other group's CRD not copied through unchanged:\n%s", docs[0])
	}
	var vs crd
	if err := yaml.Unmarshal([]byte(docs[1]), &vs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs.Spec.Versions {
		got = append(got, v.Name)
		if !v.Served {
			t.Errorf("%s not served", v.Name)
		}
		if v.Storage != (v.Name == "v1beta1") {
			t.Errorf("%s storage = %v", v.Name, v.Storage)
		}
	}
	if strings.Join(got, ",") != "v1alpha3,v1beta1" {
		t.Errorf("versions = %v, want [v1alpha3 v1beta1]", got)
	}
	if !strings.Contains(docs[1], "maximum: 4294967295") {
		t.Errorf("large integer was rewritten as a float:\n%s", docs[1])
	}
}

func TestRewriteErrors(t *testing.T) {
	if _, _, err := Rewrite([]byte(input), "security.istio.io", []string{"v1"}); err == nil {
		t.Error("no error for a group without CRDs")
	}
	if _, _, err := Rewrite([]byte(input), "networking.istio.io", []string{"v2"}); err == nil {
		t.Error("no error for a version no CRD serves")
	}
	if _, err := parseVersions(" , "); err == nil {
		t.Error("no error for an empty version list")
	}
}
