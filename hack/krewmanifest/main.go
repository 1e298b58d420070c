// Command krewmanifest renders the Krew manifest template (krew-manifest.yaml)
// for the archives in dist/, the way krew-release-bot renders it for a
// release, so that `make verify-krew` checks with krew what the Krew index
// will receive:
//
//	go run ./hack/krewmanifest -template krew-manifest.yaml -dist dist -o plugins/canary.yaml
//
// The version is read from the one dist/kubectl-canary_<version>_checksums.txt
// that `make dist` wrote. The template sees what the bot gives it: .TagName
// (the version) and the function addURIAndSha, which renders its URL with
// .TagName, as the bot does, but takes the sha256 from the checksums file
// instead of downloading the URL, and fails if no archive of that name was
// built: a template and a dist/ that disagree on archive names cannot both
// pass.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

const checksumsPrefix, checksumsSuffix = "kubectl-canary_", "_checksums.txt"

func main() {
	tmpl := flag.String("template", "krew-manifest.yaml", "manifest template, in krew-release-bot's format")
	dist := flag.String("dist", "dist", "folder with the archives and their checksums file, from make dist")
	out := flag.String("o", "", "file to write (default: stdout)")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	manifest, err := render(*tmpl, *dist)
	if err == nil {
		if *out == "" {
			_, err = os.Stdout.Write(manifest)
		} else {
			err = os.WriteFile(*out, manifest, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "krewmanifest:", err)
		os.Exit(1)
	}
}

// release is what krew-release-bot hands the template.
type release struct {
	TagName string
}

// render executes the template at tmplPath for the release in dist.
func render(tmplPath, dist string) ([]byte, error) {
	version, sums, err := readChecksums(dist)
	if err != nil {
		return nil, err
	}
	text, err := os.ReadFile(tmplPath)
	if err != nil {
		return nil, err
	}
	var missing []string
	funcs := template.FuncMap{
		"addURIAndSha": func(url, tag string) (string, error) {
			var b strings.Builder
			t, err := template.New("url").Parse(url)
			if err != nil {
				return "", err
			}
			if err := t.Execute(&b, release{TagName: tag}); err != nil {
				return "", err
			}
			uri := b.String()
			sum, ok := sums[path.Base(uri)]
			if !ok {
				missing = append(missing, path.Base(uri))
			}
			// The bot's exact layout: the template puts the call at the
			// platform's indentation, and sha256 follows at four spaces.
			return fmt.Sprintf("uri: %s\n    sha256: %s", uri, sum), nil
		},
	}
	t, err := template.New(filepath.Base(tmplPath)).Funcs(funcs).Parse(string(text))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, release{TagName: version}); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s names archives that are not in %s: %s; run make dist, or fix the names in the template",
			tmplPath, dist, strings.Join(missing, ", "))
	}
	return buf.Bytes(), nil
}

var sumLine = regexp.MustCompile(`^([0-9a-f]{64}) [ *](\S+)$`)

// readChecksums finds the checksums file of the one version in dist and
// returns that version and the sha256 of each archive by file name.
func readChecksums(dist string) (version string, sums map[string]string, err error) {
	matches, err := filepath.Glob(filepath.Join(dist, checksumsPrefix+"*"+checksumsSuffix))
	if err != nil {
		return "", nil, err
	}
	switch len(matches) {
	case 0:
		return "", nil, fmt.Errorf("no %s<version>%s in %s; run make dist first", checksumsPrefix, checksumsSuffix, dist)
	case 1:
	default:
		return "", nil, fmt.Errorf("%d checksums files in %s (%s); remove all but the release's, or run make dist again", len(matches), dist, strings.Join(matches, ", "))
	}
	name := filepath.Base(matches[0])
	version = strings.TrimSuffix(strings.TrimPrefix(name, checksumsPrefix), checksumsSuffix)

	f, err := os.Open(matches[0])
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	sums = map[string]string{}
	scanner := bufio.NewScanner(f)
	for n := 1; scanner.Scan(); n++ {
		m := sumLine.FindStringSubmatch(scanner.Text())
		if m == nil {
			return "", nil, fmt.Errorf("%s:%d is not a sha256sum line: %q", matches[0], n, scanner.Text())
		}
		sums[m[2]] = m[1]
	}
	if err := scanner.Err(); err != nil {
		return "", nil, err
	}
	if len(sums) == 0 {
		return "", nil, errors.New(matches[0] + " lists no archive; run make dist again")
	}
	return version, sums, nil
}
