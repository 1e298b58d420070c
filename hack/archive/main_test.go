package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeFiles lays out a plugin binary, the completion helper and a license in
// a fresh folder, with the given permissions and file times.
func writeFiles(t *testing.T, exePerm, filePerm os.FileMode, fileTime time.Time) []string {
	t.Helper()
	dir := t.TempDir()
	files := []struct {
		name string
		perm os.FileMode
		data string
	}{
		{"kubectl-canary", exePerm, "plugin binary"},
		{"LICENSE", filePerm, "Apache License"},
		{"kubectl_complete-canary", exePerm, "helper binary"},
	}
	var paths []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, []byte(f.data), 0o600); err != nil {
			t.Fatal(err)
		}
		// Chmod, because WriteFile's permissions go through the umask.
		if err := os.Chmod(path, f.perm); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, fileTime, fileTime); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	return paths
}

func TestSameContentsGiveSameBytes(t *testing.T) {
	mtime := time.Unix(1700000000, 0)
	var a, b bytes.Buffer
	if err := pack(&a, mtime, writeFiles(t, 0o755, 0o644, time.Now())); err != nil {
		t.Fatal(err)
	}
	// Another folder, a umask of 077, other file times, and another order.
	paths := writeFiles(t, 0o700, 0o600, time.Unix(1, 0))
	paths[0], paths[2] = paths[2], paths[0]
	if err := pack(&b, mtime, paths); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same files packed twice gave different archives")
	}
}

func TestEntries(t *testing.T) {
	mtime := time.Unix(1700000000, 0)
	var buf bytes.Buffer
	if err := pack(&buf, mtime, writeFiles(t, 0o700, 0o600, time.Now())); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header has name %q and time %v; want neither", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	want := []struct {
		name string
		mode int64
		data string
	}{
		{"LICENSE", 0o644, "Apache License"},
		{"kubectl-canary", 0o755, "plugin binary"},
		{"kubectl_complete-canary", 0o755, "helper binary"},
	}
	for _, w := range want {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("want entry %s: %v", w.name, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != w.name || hdr.Mode != w.mode || string(data) != w.data {
			t.Errorf("entry %s mode %o %q; want %s mode %o %q", hdr.Name, hdr.Mode, data, w.name, w.mode, w.data)
		}
		if !hdr.ModTime.Equal(mtime) || hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("entry %s: time %v, owner %d:%d (%q:%q); want %v, 0:0 without names", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname, mtime)
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("want 3 entries, got more (%v)", err)
	}
}

func TestSameBaseNameTwiceIsAnError(t *testing.T) {
	a := writeFiles(t, 0o755, 0o644, time.Now())
	b := writeFiles(t, 0o755, 0o644, time.Now())
	if err := pack(io.Discard, time.Unix(0, 0), []string{a[1], b[1]}); err == nil {
		t.Fatal("two files named LICENSE were packed without an error")
	}
}

func TestWriteArchiveLeavesNothingOnError(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.tar.gz")
	if err := writeArchive(out, time.Unix(0, 0), []string{filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("a missing input gave no error")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("left %d file(s) behind, e.g. %s", len(entries), entries[0].Name())
	}
}
