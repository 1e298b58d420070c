package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const version = "v1.2.3"

var platforms = []struct{ os, arch string }{
	{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}, {"windows", "amd64"},
}

// fakeDist writes the checksums file make dist would write for platforms,
// with a distinct made-up sum per archive.
func fakeDist(t *testing.T) (dir string, sums map[string]string) {
	t.Helper()
	dir = t.TempDir()
	sums = map[string]string{}
	var lines strings.Builder
	for i, p := range platforms {
		name := fmt.Sprintf("kubectl-canary_%s_%s_%s.tar.gz", version, p.os, p.arch)
		sums[name] = strings.Repeat(fmt.Sprintf("%x", i+10), 64)
		fmt.Fprintf(&lines, "%s  %s\n", sums[name], name)
	}
	writeFile(t, filepath.Join(dir, "kubectl-canary_"+version+"_checksums.txt"), lines.String())
	return dir, sums
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// manifest is the part of a Krew plugin manifest the checks below read.
type manifest struct {
	Metadata struct{ Name string }
	Spec     struct {
		Version   string
		Caveats   string
		Platforms []struct {
			Selector struct{ MatchLabels map[string]string }
			URI      string
			Sha256   string
			Bin      string
			Files    []struct{ From, To string }
		}
	}
}

// TestRepositoryTemplate renders the real krew-manifest.yaml and checks what
// krew's validator cannot know: each platform's URI is the archive make dist
// builds for that platform, with its sum, and installs the helper and LICENSE.
func TestRepositoryTemplate(t *testing.T) {
	dist, sums := fakeDist(t)
	out, err := render("../../krew-manifest.yaml", dist)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "{{") || strings.Contains(string(out), "Template of") {
		t.Errorf("template text left in the manifest:\n%s", out)
	}
	var m manifest
	if err := yaml.Unmarshal(out, &m); err != nil {
		t.Fatalf("rendered manifest is not YAML: %v\n%s", err, out)
	}
	if m.Metadata.Name != "canary" || m.Spec.Version != version {
		t.Errorf("name %q version %q, want canary %s", m.Metadata.Name, m.Spec.Version, version)
	}
	if !strings.Contains(m.Spec.Caveats, "/store/canary/"+version+"/kubectl_complete-canary") {
		t.Errorf("caveats do not say where this version's completion helper is:\n%s", m.Spec.Caveats)
	}
	if len(m.Spec.Platforms) != len(platforms) {
		t.Fatalf("%d platforms, want %d", len(m.Spec.Platforms), len(platforms))
	}
	for i, want := range platforms {
		p := m.Spec.Platforms[i]
		name := fmt.Sprintf("kubectl-canary_%s_%s_%s.tar.gz", version, want.os, want.arch)
		if got := p.Selector.MatchLabels; len(got) != 2 || got["os"] != want.os || got["arch"] != want.arch {
			t.Errorf("platform %d selects %v, want os=%s arch=%s", i, got, want.os, want.arch)
		}
		if wantURI := "https://github.com/kubectl-canary/kubectl-canary/releases/download/" + version + "/" + name; p.URI != wantURI {
			t.Errorf("platform %d uri %s, want %s", i, p.URI, wantURI)
		}
		if p.Sha256 != sums[name] {
			t.Errorf("platform %d sha256 %s, want %s's %s", i, p.Sha256, name, sums[name])
		}
		exe := ""
		if want.os == "windows" {
			exe = ".exe"
		}
		if p.Bin != "kubectl-canary"+exe {
			t.Errorf("platform %d bin %s, want kubectl-canary%s", i, p.Bin, exe)
		}
		var from []string
		for _, f := range p.Files {
			from = append(from, f.From)
			if f.To != "." {
				t.Errorf("platform %d puts %s in %s, want .", i, f.From, f.To)
			}
		}
		if got, want := strings.Join(from, " "), "kubectl-canary"+exe+" kubectl_complete-canary"+exe+" LICENSE"; got != want {
			t.Errorf("platform %d files %s, want %s", i, got, want)
		}
	}
}

// TestLayoutOfTheBot pins the two lines addURIAndSha writes, at the
// indentation krew-release-bot uses.
func TestLayoutOfTheBot(t *testing.T) {
	dist, sums := fakeDist(t)
	tmpl := filepath.Join(t.TempDir(), "t.yaml")
	writeFile(t, tmpl, "  - bin: x\n    {{addURIAndSha \"https://h/{{ .TagName }}/kubectl-canary_{{ .TagName }}_linux_arm64.tar.gz\" .TagName }}\n")
	out, err := render(tmpl, dist)
	if err != nil {
		t.Fatal(err)
	}
	want := "  - bin: x\n    uri: https://h/" + version + "/kubectl-canary_" + version + "_linux_arm64.tar.gz\n    sha256: " +
		sums["kubectl-canary_"+version+"_linux_arm64.tar.gz"] + "\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestErrors(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "t.yaml")
	writeFile(t, tmpl, `{{addURIAndSha "https://h/{{ .TagName }}/kubectl-canary_{{ .TagName }}_plan9_386.tar.gz" .TagName }}`)

	dist, _ := fakeDist(t)
	if _, err := render(tmpl, dist); err == nil || !strings.Contains(err.Error(), "kubectl-canary_"+version+"_plan9_386.tar.gz") {
		t.Errorf("an archive dist/ lacks: got %v, want an error naming it", err)
	}
	if _, err := render(tmpl, t.TempDir()); err == nil || !strings.Contains(err.Error(), "run make dist first") {
		t.Errorf("no checksums file: got %v", err)
	}
	writeFile(t, filepath.Join(dist, "kubectl-canary_v0.0.1_checksums.txt"), "")
	if _, err := render(tmpl, dist); err == nil || !strings.Contains(err.Error(), "2 checksums files") {
		t.Errorf("two versions in dist/: got %v", err)
	}
	bad := t.TempDir()
	writeFile(t, filepath.Join(bad, "kubectl-canary_"+version+"_checksums.txt"), "not a sum  file.tar.gz\n")
	if _, err := render(tmpl, bad); err == nil || !strings.Contains(err.Error(), "is not a sha256sum line") {
		t.Errorf("a malformed line: got %v", err)
	}
}
