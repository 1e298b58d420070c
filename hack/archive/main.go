// Command archive packs files into a .tar.gz whose bytes depend only on the
// files' names and contents and on -mtime, so that `make dist` run twice, in
// another clone, under another umask or on another day gives the same sha256:
//
//	go run ./hack/archive -o dist/kubectl-canary_v0.1.0_linux_amd64.tar.gz -mtime 1700000000 \
//	    build/linux_amd64/kubectl-canary build/linux_amd64/kubectl_complete-canary LICENSE
//
// Each file is stored under its base name, at the top of the archive (the
// layout the Krew manifest's `files` expects), in name order, with mode 0755
// if it is executable by anyone and 0644 otherwise, owner 0:0 without names,
// and -mtime as its time. The gzip header carries no name and no time.
package main

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

func main() {
	out := flag.String("o", "", "archive to write (required)")
	mtime := flag.Int64("mtime", 0, "modification time of every entry, in seconds since 1970 (e.g. the commit time)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: archive -o OUT.tar.gz [-mtime SECONDS] FILE...\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := writeArchive(*out, time.Unix(*mtime, 0), flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "archive:", err)
		os.Exit(1)
	}
}

// writeArchive writes the archive to a temporary file beside out and renames
// it into place, so that a failed run leaves no truncated archive behind.
func writeArchive(out string, mtime time.Time, files []string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".archive-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := pack(tmp, mtime, files); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// pack writes the gzip-compressed tar stream of files to w.
func pack(w io.Writer, mtime time.Time, files []string) error {
	byName := map[string]string{}
	for _, path := range files {
		name := filepath.Base(path)
		if other, ok := byName[name]; ok {
			return fmt.Errorf("%s and %s would both be stored as %s", other, path, name)
		}
		byName[name] = path
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	slices.Sort(names)

	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, name := range names {
		if err := addFile(tw, name, byName[name], mtime); err != nil {
			return err
		}
	}
	return errors.Join(tw.Close(), zw.Close())
}

func addFile(tw *tar.Writer, name, path string, mtime time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	// Only the executable bit survives: the umask of whoever built or checked
	// out the file must not change the archive.
	mode := int64(0o644)
	if info.Mode().Perm()&0o111 != 0 {
		mode = 0o755
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     info.Size(),
		Mode:     mode,
		ModTime:  mtime,
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
