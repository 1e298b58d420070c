// Package version holds the build identity, stamped at link time:
//
//	go build -ldflags "-X github.com/kubectl-canary/kubectl-canary/pkg/version.Version=v0.1.0 -X ...Commit=abc123"
package version

import "runtime"

var (
	// Version is the release, "dev" for a local build.
	Version = "dev"
	// Commit is the git commit the binary was built from.
	Commit = "unknown"
)

// Info is what `kubectl canary version` prints.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the build identity of this binary.
func Get() Info {
	return Info{Version: Version, Commit: Commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}
