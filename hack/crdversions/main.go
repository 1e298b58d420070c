// Command crdversions rewrites a multi-document YAML stream of
// CustomResourceDefinitions so that the CRDs of one API group serve only the
// given versions. hack/cluster.sh uses it to model an older cluster, e.g. one
// that serves networking.istio.io only at v1beta1 and v1alpha3:
//
//	go run ./hack/crdversions -versions v1beta1,v1alpha3 crds.yaml > old-crds.yaml
//
// For every CRD of the group, version entries not in the list are removed and
// the first version of the list that remains becomes the storage version. A
// CRD left with no version is dropped (with a note on stderr). Every other
// document is copied through unchanged.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	group := flag.String("group", "networking.istio.io", "API group whose CRDs are rewritten")
	versions := flag.String("versions", "", "comma-separated versions to keep serving, storage version first (required)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: crdversions -versions v1beta1,v1alpha3 [-group G] [FILE]\n\nReads FILE (or stdin), writes the rewritten stream to stdout.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	keep, err := parseVersions(*versions)
	if err == nil && flag.NArg() > 1 {
		err = errors.New("at most one input file")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crdversions:", err)
		flag.Usage()
		os.Exit(2)
	}

	in := io.Reader(os.Stdin)
	if flag.NArg() == 1 {
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "crdversions:", err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crdversions:", err)
		os.Exit(1)
	}
	out, notes, err := Rewrite(data, *group, keep)
	for _, n := range notes {
		fmt.Fprintln(os.Stderr, "crdversions:", n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crdversions:", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fmt.Fprintln(os.Stderr, "crdversions:", err)
		os.Exit(1)
	}
}

func parseVersions(s string) ([]string, error) {
	var keep []string
	seen := map[string]bool{}
	for _, v := range strings.Split(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if !seen[v] {
			seen[v] = true
			keep = append(keep, v)
		}
	}
	if len(keep) == 0 {
		return nil, errors.New("-versions needs at least one version, e.g. v1beta1,v1alpha3")
	}
	return keep, nil
}

// Rewrite applies the version filter to every CRD of group in the YAML stream
// data. notes says which CRDs were dropped because none of their versions
// remained. It fails if no CRD of the group is found, or if no CRD of the group
// serves any of the versions in keep, since either means the caller asked for
// something the input cannot model.
func Rewrite(data []byte, group string, keep []string) (out []byte, notes []string, err error) {
	var docs [][]byte
	found, kept := 0, 0
	for i, doc := range splitDocuments(data) {
		obj, err := decode(doc)
		if err != nil {
			return nil, nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if obj == nil {
			continue // only comments or blank lines
		}
		if !isCRDOf(obj, group) {
			docs = append(docs, doc)
			continue
		}
		found++
		name := nestedString(obj, "metadata", "name")
		ok, err := filterVersions(obj, keep)
		if err != nil {
			return nil, nil, fmt.Errorf("CRD %s: %w", name, err)
		}
		if !ok {
			notes = append(notes, fmt.Sprintf("dropped CRD %s: it serves none of %s", name, strings.Join(keep, ",")))
			continue
		}
		kept++
		j, err := json.Marshal(obj)
		if err != nil {
			return nil, nil, fmt.Errorf("CRD %s: %w", name, err)
		}
		y, err := yaml.JSONToYAML(j)
		if err != nil {
			return nil, nil, fmt.Errorf("CRD %s: %w", name, err)
		}
		docs = append(docs, y)
	}
	if found == 0 {
		return nil, notes, fmt.Errorf("no CustomResourceDefinition of group %s in the input", group)
	}
	if kept == 0 {
		return nil, notes, fmt.Errorf("no CRD of group %s serves any of %s", group, strings.Join(keep, ","))
	}
	var buf bytes.Buffer
	for i, d := range docs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(d)
		if len(d) > 0 && d[len(d)-1] != '\n' {
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes(), notes, nil
}

// splitDocuments splits a YAML stream at its "---" separator lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	for sc.Scan() {
		line := sc.Text()
		if t := strings.TrimRight(line, " \t\r"); t == "---" || strings.HasPrefix(t, "--- ") || strings.HasPrefix(t, "---\t") {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	docs = append(docs, bytes.Clone(cur.Bytes()))
	return docs
}

// decode turns one YAML document into generic JSON data, keeping numbers as
// written (a float64 round trip would turn 4294967295 into 4.294967295e+09).
func decode(doc []byte) (map[string]any, error) {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	if s := bytes.TrimSpace(j); len(s) == 0 || bytes.Equal(s, []byte("null")) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	return obj, nil
}

func isCRDOf(obj map[string]any, group string) bool {
	return obj["kind"] == "CustomResourceDefinition" &&
		strings.HasPrefix(fmt.Sprint(obj["apiVersion"]), "apiextensions.k8s.io/") &&
		nestedString(obj, "spec", "group") == group
}

// filterVersions keeps the entries of spec.versions named in keep, marks them
// served, and makes the first name of keep that remains the storage version.
// It reports false if no entry remains.
func filterVersions(obj map[string]any, keep []string) (bool, error) {
	spec, _ := obj["spec"].(map[string]any)
	list, ok := spec["versions"].([]any)
	if !ok {
		return false, errors.New("spec.versions is missing or not a list")
	}
	byName := map[string]map[string]any{}
	var remaining []any
	for _, v := range list {
		m, ok := v.(map[string]any)
		if !ok {
			return false, errors.New("spec.versions has an entry that is not an object")
		}
		name, _ := m["name"].(string)
		for _, k := range keep {
			if name == k {
				byName[name] = m
				remaining = append(remaining, m)
				break
			}
		}
	}
	if len(remaining) == 0 {
		return false, nil
	}
	storageSet := false
	for _, k := range keep {
		m, ok := byName[k]
		if !ok {
			continue
		}
		m["served"] = true
		m["storage"] = !storageSet
		storageSet = true
	}
	spec["versions"] = remaining
	return true, nil
}

func nestedString(obj map[string]any, path ...string) string {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}
