// Package manifests reads Kubernetes objects from manifest files and writes
// changed objects back into them, editing the YAML a person wrote in place:
// only the nodes that change are rewritten, every other byte stays.
package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/cli-runtime/pkg/resource"
	"sigs.k8s.io/yaml"
)

// Set is the manifest files a command was pointed at, as read.
type Set struct {
	// Namespace is given to the objects whose manifests name none, as
	// kubectl apply -f does with -n.
	Namespace string
	Files     []*File
	// NewObjectsFile is where objects the plan creates are written.
	NewObjectsFile string
}

// File is one manifest file: its text and the objects its documents hold.
type File struct {
	Path string
	// Text is the file as read, or as edited since.
	Text []byte
	// OnDisk is the file as read from disk (nil when it does not exist
	// yet), to tell whether someone changed it before it is written.
	OnDisk  []byte
	JSON    bool
	Objects []*Object
}

// Object is one object of a file, located by its document.
type Object struct {
	*unstructured.Unstructured
	File *File
	// Document is the index of the document that holds it.
	Document int
	// ImplicitNamespace says the manifest names no namespace: the object is
	// in the Set's Namespace and its manifest stays without one.
	ImplicitNamespace bool
}

// separator is a YAML document separator line.
var separator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?\r?$`)

// Load reads the manifests of paths (files or directories; directories
// recursively with recursive), following kubectl's -f and -R. Objects
// created later go into newObjectsFile, which is read as well when it
// exists.
func Load(paths []string, recursive bool, namespace, newObjectsFile string) (*Set, error) {
	set := &Set{Namespace: namespace, NewObjectsFile: newObjectsFile}
	var files []string
	for _, p := range paths {
		if p == "-" || strings.Contains(p, "://") {
			return nil, fmt.Errorf("-f %s: kubectl canary writes the changes back into the files, so -f takes local files and directories only", p)
		}
		visitors, err := resource.ExpandPathsToFileVisitors(nil, p, recursive, resource.FileExtensions, nil)
		if err != nil {
			return nil, fmt.Errorf("-f %s: %w", p, err)
		}
		for _, v := range visitors {
			files = appendPath(files, v.(*resource.FileVisitor).Path)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("-f %s: no manifest files found (kubectl reads .yaml, .yml and .json files; pass -R for subdirectories)", strings.Join(paths, ","))
	}
	if _, err := os.Stat(newObjectsFile); err == nil {
		files = appendPath(files, newObjectsFile)
	}
	for _, path := range files {
		f, err := readFile(path, namespace)
		if err != nil {
			return nil, err
		}
		set.Files = append(set.Files, f)
	}
	return set, set.checkDefinedOnce()
}

func appendPath(paths []string, path string) []string {
	path = filepath.Clean(path)
	if slices.Contains(paths, path) {
		return paths
	}
	return append(paths, path)
}

// readFile reads one manifest file and the objects of its documents.
func readFile(path, namespace string) (*File, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read manifest %s: %w", path, err)
	}
	if line := templateLine(text); line > 0 {
		return nil, fmt.Errorf("%s:%d is a template ({{ }}): kubectl canary edits plain manifests; render it first (helm template, or your tool's equivalent) and point -f at the rendered files, or leave this file out of -f", path, line)
	}
	f := &File{Path: path, Text: text, OnDisk: text, JSON: isJSON(path, text)}
	return f, f.parse(namespace)
}

// parse reads the objects of the file's documents.
func (f *File) parse(namespace string) error {
	f.Objects = nil
	for i, doc := range documents(f.Text) {
		fields, err := decode(f.Text[doc.start:doc.end])
		if err != nil {
			return fmt.Errorf("%s: document %d is not valid YAML: %w", f.Path, i+1, err)
		}
		if len(fields) == 0 {
			continue
		}
		obj := &Object{Unstructured: &unstructured.Unstructured{Object: fields}, File: f, Document: i}
		if obj.GetKind() == "" || obj.GetName() == "" {
			// Not a Kubernetes object (a kustomization, values): not ours to read.
			continue
		}
		if obj.GetNamespace() == "" {
			obj.ImplicitNamespace = true
			obj.SetNamespace(namespace)
		}
		f.Objects = append(f.Objects, obj)
	}
	return nil
}

// decode reads a document the way the API machinery reads objects, whole
// numbers as int64, so that objects from files compare equal to planned ones.
func decode(document []byte) (map[string]interface{}, error) {
	asJSON, err := yaml.YAMLToJSON(document)
	if err != nil {
		return nil, err
	}
	var fields map[string]interface{}
	if err := utiljson.Unmarshal(asJSON, &fields); err != nil {
		return nil, err
	}
	return fields, nil
}

// span is where one document's text lies in its file.
type span struct{ start, end int }

// documents splits a file at its separator lines.
func documents(text []byte) []span {
	var out []span
	start := 0
	for _, sep := range separator.FindAllIndex(text, -1) {
		out = append(out, span{start, sep[0]})
		start = sep[1]
		if start < len(text) && text[start] == '\n' {
			start++
		}
	}
	return append(out, span{start, len(text)})
}

// templateLine is the first line (from 1) holding a template action, or 0.
func templateLine(text []byte) int {
	for i, line := range bytes.Split(text, []byte("\n")) {
		trimmed := bytes.TrimSpace(line)
		if bytes.HasPrefix(trimmed, []byte("#")) {
			continue
		}
		if bytes.Contains(line, []byte("{{")) && bytes.Contains(line, []byte("}}")) {
			return i + 1
		}
	}
	return 0
}

func isJSON(path string, text []byte) bool {
	trimmed := bytes.TrimSpace(text)
	return strings.EqualFold(filepath.Ext(path), ".json") || bytes.HasPrefix(trimmed, []byte("{")) || bytes.HasPrefix(trimmed, []byte("["))
}

// checkDefinedOnce refuses an object that two documents define: which one
// the cluster ends up with depends on the order they are applied in.
func (s *Set) checkDefinedOnce() error {
	seen := map[string]*Object{}
	var errs []error
	for _, f := range s.Files {
		for _, obj := range f.Objects {
			key := objectKey(obj.Unstructured)
			if first, ok := seen[key]; ok {
				errs = append(errs, fmt.Errorf("%s is defined twice, in %s and in %s; keep one definition, then run the command again", describe(obj.Unstructured), where(first), where(obj)))
				continue
			}
			seen[key] = obj
		}
	}
	return errors.Join(errs...)
}

func objectKey(obj *unstructured.Unstructured) string {
	return obj.GroupVersionKind().Group + "/" + obj.GetKind() + "/" + obj.GetNamespace() + "/" + obj.GetName()
}

func describe(obj *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", obj.GetKind(), obj.GetNamespace(), obj.GetName())
}

// where is the file and document of an object, as people count them.
func where(obj *Object) string {
	if len(documents(obj.File.Text)) == 1 {
		return obj.File.Path
	}
	return fmt.Sprintf("%s (document %d)", obj.File.Path, obj.Document+1)
}

// Objects are every object of the set, of the given kinds (all when none),
// in file order.
func (s *Set) Objects(kinds ...string) []*Object {
	var out []*Object
	for _, f := range s.Files {
		for _, obj := range f.Objects {
			if len(kinds) == 0 || slices.Contains(kinds, obj.GetKind()) {
				out = append(out, obj)
			}
		}
	}
	return out
}

// Find is the object of that group, kind, namespace and name, or nil.
func (s *Set) Find(obj *unstructured.Unstructured) *Object {
	key := objectKey(obj)
	for _, o := range s.Objects() {
		if objectKey(o.Unstructured) == key {
			return o
		}
	}
	return nil
}

// ChangedOnDiskError says a file changed on disk after it was read: the
// edit is planned again on what it holds now.
type ChangedOnDiskError struct{ Path string }

func (e *ChangedOnDiskError) Error() string {
	return fmt.Sprintf("%s changed on disk after it was read", e.Path)
}

// Apply puts desired into the set's text, in the document that defines it,
// or, when no document does, into the new objects file. It returns the
// file it changed; nothing is written to disk (Save does that).
func (s *Set) Apply(desired *unstructured.Unstructured) (*File, error) {
	existing := s.Find(desired)
	if existing == nil {
		return s.add(desired)
	}
	f := existing.File
	if f.JSON {
		return nil, fmt.Errorf("%s holds %s as JSON; kubectl canary edits YAML so that comments and formatting survive: convert the file to YAML (for example with yq -P), then run the command again; nothing was written", f.Path, describe(desired))
	}
	wanted := desired.DeepCopy()
	if existing.ImplicitNamespace && wanted.GetNamespace() == s.Namespace {
		unstructured.RemoveNestedField(wanted.Object, "metadata", "namespace")
	}
	doc := documents(f.Text)[existing.Document]
	edited, err := Edit(f.Text[doc.start:doc.end], wanted.Object)
	if err != nil {
		return nil, fmt.Errorf("cannot edit %s in %s: %w", describe(desired), where(existing), err)
	}
	text := append(append(append([]byte{}, f.Text[:doc.start]...), edited...), f.Text[doc.end:]...)
	return f, f.replaceText(text, s.Namespace)
}

// add appends a new object to the new objects file, as its own document.
func (s *Set) add(desired *unstructured.Unstructured) (*File, error) {
	f := s.fileAt(s.NewObjectsFile)
	if f == nil {
		f = &File{Path: s.NewObjectsFile}
		s.Files = append(s.Files, f)
	}
	if f.JSON {
		return nil, fmt.Errorf("%s is JSON; kubectl canary adds new objects to YAML files only: convert it to YAML, then run the command again", f.Path)
	}
	obj := desired.DeepCopy()
	if s.namespacesImplicit(obj.GetNamespace()) {
		unstructured.RemoveNestedField(obj.Object, "metadata", "namespace")
	}
	encoded, err := yaml.Marshal(obj.Object)
	if err != nil {
		return nil, fmt.Errorf("cannot encode %s: %w", describe(desired), err)
	}
	text := append([]byte{}, f.Text...)
	if len(bytes.TrimSpace(text)) > 0 {
		if !bytes.HasSuffix(text, []byte("\n")) {
			text = append(text, '\n')
		}
		text = append(text, "---\n"...)
	}
	return f, f.replaceText(append(text, encoded...), s.Namespace)
}

func (s *Set) fileAt(path string) *File {
	for _, f := range s.Files {
		if f.Path == filepath.Clean(path) {
			return f
		}
	}
	return nil
}

// namespacesImplicit says the manifests of a namespace leave the namespace
// out (to be given at apply time), so new objects should too.
func (s *Set) namespacesImplicit(namespace string) bool {
	found := false
	for _, obj := range s.Objects() {
		if obj.GetNamespace() != namespace {
			continue
		}
		if !obj.ImplicitNamespace {
			return false
		}
		found = true
	}
	return found
}

// replaceText sets the file's text and reads its objects again.
func (f *File) replaceText(text []byte, namespace string) error {
	f.Text = text
	return f.parse(namespace)
}

// Changed reports whether the file's text differs from what is on disk.
func (f *File) Changed() bool { return f.OnDisk == nil || !bytes.Equal(f.Text, f.OnDisk) }

// ChangedFiles are the files whose text was changed since they were read.
func (s *Set) ChangedFiles() []*File {
	var out []*File
	for _, f := range s.Files {
		if f.Changed() {
			out = append(out, f)
		}
	}
	return out
}

// Save writes a changed file, unless it changed on disk since it was read.
// The new text replaces the old in one rename, so a reader never sees half
// a file.
func (f *File) Save() error {
	if !f.Changed() {
		return nil
	}
	current, err := os.ReadFile(f.Path)
	switch {
	case errors.Is(err, os.ErrNotExist) && f.OnDisk == nil:
	case err != nil:
		return fmt.Errorf("cannot read %s again before writing it: %w", f.Path, err)
	case f.OnDisk == nil || !bytes.Equal(current, f.OnDisk):
		return &ChangedOnDiskError{Path: f.Path}
	}
	mode := os.FileMode(0o644)
	if info, err := os.Stat(f.Path); err == nil {
		mode = info.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), "."+filepath.Base(f.Path)+".*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", f.Path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(f.Text); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write %s: %w", f.Path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", f.Path, err)
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return fmt.Errorf("cannot write %s: %w", f.Path, err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("cannot write %s: %w", f.Path, err)
	}
	f.OnDisk = f.Text
	return nil
}

// Clone is a copy of the set whose edits leave the set as it is.
func (s *Set) Clone() *Set {
	out := &Set{Namespace: s.Namespace, NewObjectsFile: s.NewObjectsFile}
	for _, f := range s.Files {
		copied := &File{Path: f.Path, Text: f.Text, OnDisk: f.OnDisk, JSON: f.JSON}
		// The text parsed once already; parsing it again cannot fail.
		_ = copied.parse(s.Namespace)
		out.Files = append(out.Files, copied)
	}
	return out
}
