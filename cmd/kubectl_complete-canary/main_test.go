package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakePlugin puts a kubectl-canary on PATH that prints its arguments, one per
// line, and exits with code.
func fakePlugin(t *testing.T, code string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake plugin is a shell script")
	}
	dir := t.TempDir()
	script := "#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done\nexit " + code + "\n"
	if err := os.WriteFile(filepath.Join(dir, plugin), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
}

func TestPassesTheWordsToComplete(t *testing.T) {
	fakePlugin(t, "0")
	var out, errOut bytes.Buffer
	// `kubectl canary start -n shop <TAB>`: kubectl passes an empty last word.
	code := run([]string{"start", "-n", "shop", ""}, strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit code %d, stderr %q", code, errOut.String())
	}
	if want := "[__complete]\n[start]\n[-n]\n[shop]\n[]\n"; out.String() != want {
		t.Errorf("the plugin got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestForwardsThePluginsExitCode(t *testing.T) {
	fakePlugin(t, "3")
	if code := run(nil, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}); code != 3 {
		t.Errorf("exit code %d, want the plugin's 3", code)
	}
}

func TestSaysSoWhenThePluginIsMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var errOut bytes.Buffer
	if code := run([]string{""}, strings.NewReader(""), &bytes.Buffer{}, &errOut); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "kubectl-canary is not on PATH") {
		t.Errorf("stderr %q does not say what is missing", errOut.String())
	}
}
