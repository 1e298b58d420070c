package cmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	"github.com/kubectl-canary/kubectl-canary/pkg/manifests"
)

// manifestFlags are -f, -R and --local: the GitOps mode, where the routing
// objects are read from manifest files and the change is written back into
// them instead of the cluster.
type manifestFlags struct {
	filenames []string
	recursive bool
	local     bool
}

func (m *manifestFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringSliceVarP(&m.filenames, "filename", "f", nil, "Manifest files or directories holding the routing objects: the change is written into them (comments and formatting kept) instead of the cluster. Repeat or separate with commas.")
	cmd.Flags().BoolVarP(&m.recursive, "recursive", "R", false, "Read the directories of -f recursively.")
	cmd.Flags().BoolVar(&m.local, "local", false, "With -f, never contact the cluster: the Service and its Deployments must be in the files too (readiness and permissions are then not checked).")
}

func (m *manifestFlags) enabled() bool { return len(m.filenames) > 0 }

// validate rejects -R and --local without files.
func (m *manifestFlags) validate() error {
	switch {
	case m.enabled():
		return nil
	case m.local:
		return fmt.Errorf("--local reads the objects from manifest files only; give them with -f PATH")
	case m.recursive:
		return fmt.Errorf("-R reads the directories of -f; give them with -f PATH")
	}
	return nil
}

// validateChange rejects what the GitOps mode cannot do for a change.
func (m *manifestFlags) validateChange(dryRun cmdutil.DryRunStrategy, wait bool) error {
	if err := m.validate(); err != nil || !m.enabled() {
		return err
	}
	if dryRun == cmdutil.DryRunServer {
		return fmt.Errorf("--dry-run=server validates writes to the cluster, and -f writes files; use --dry-run to see the diff of the files")
	}
	if wait {
		return fmt.Errorf("--wait waits for istiod, which sees the change only once the files are applied; leave out --wait with -f")
	}
	return nil
}

// store is the manifest files, with the cluster for what they lack unless
// --local.
func (m *manifestFlags) store(g *globalOptions, namespace string) (*canary.Files, error) {
	files := &canary.Files{Paths: m.filenames, Recursive: m.recursive, Namespace: namespace, Now: g.now}
	if !m.local {
		cluster, err := g.conn.Cluster()
		if err != nil {
			return nil, fmt.Errorf("%w (with -f, the Service and Deployments missing from the files are read from the cluster; pass --local to read the files alone)", err)
		}
		files.Cluster = cluster
	}
	return files, nil
}

// printFilesDiff prints the unified diff of each file the change would
// write, as `diff -u` would, with paths a/ and b/ like git.
func printFilesDiff(out io.Writer, files []*manifests.File) error {
	for _, f := range files {
		from := "a/" + f.Path
		if f.OnDisk == nil {
			from = "/dev/null"
		}
		text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(string(f.OnDisk)), B: difflib.SplitLines(string(f.Text)),
			FromFile: from, ToFile: "b/" + f.Path, Context: 3,
		})
		if err != nil {
			return err
		}
		if _, err := io.WriteString(out, withFinalNewline(text)); err != nil {
			return err
		}
	}
	return nil
}

func withFinalNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n\\ No newline at end of file\n"
}
