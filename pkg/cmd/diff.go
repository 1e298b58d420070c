package cmd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/cmd/diff"
	"k8s.io/kubectl/pkg/util/term"
	kexec "k8s.io/utils/exec"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
)

// diffObject adapts an outcome to kubectl diff's Object, so dry-run output
// is written, named and compared exactly as `kubectl diff` does it.
type diffObject struct{ oc canary.Outcome }

func (d diffObject) Live() runtime.Object {
	if d.oc.Change.Live == nil {
		return nil
	}
	return d.oc.Change.Live
}

func (d diffObject) Merged() (runtime.Object, error) { return d.oc.Object, nil }

// Name is group.version.kind.namespace.name, the file name kubectl diff uses,
// so the diff headers say which object each hunk belongs to.
func (d diffObject) Name() string {
	u := d.oc.Object
	gvk := u.GroupVersionKind()
	name := fmt.Sprintf("%s.%s.%s.%s", gvk.Version, gvk.Kind, u.GetNamespace(), u.GetName())
	if gvk.Group == "" {
		return name
	}
	return gvk.Group + "." + name
}

// printDiff prints a unified diff of live against intended for every object
// that would change, with KUBECTL_EXTERNAL_DIFF honoured like kubectl diff.
func printDiff(streams genericiooptions.IOStreams, outcomes []canary.Outcome) error {
	differ, err := diff.NewDiffer("LIVE", "MERGED")
	if err != nil {
		return err
	}
	defer differ.TearDown()
	changed := 0
	for _, oc := range outcomes {
		if oc.Change.Live != nil && !oc.Change.Changed() {
			continue
		}
		if err := diffOne(differ, oc); err != nil {
			return err
		}
		changed++
	}
	if changed == 0 {
		return nil
	}
	if os.Getenv("KUBECTL_EXTERNAL_DIFF") == "" && (term.TTY{Out: streams.Out}).IsTerminalOut() {
		cmd := exec.Command("diff", "-u", "-N", "--color=always", differ.From.Dir.Name, differ.To.Dir.Name)
		cmd.Stdout, cmd.Stderr = streams.Out, streams.ErrOut
		return diffExit(cmd.Run())
	}
	return diffExit(differ.Run(&diff.DiffProgram{Exec: kexec.New(), IOStreams: streams}))
}

// diffOne adds one outcome to the diff. A deletion is the live object
// alone: with no intended file, diff -N shows every line removed (kubectl's
// Differ cannot take a missing intended object).
func diffOne(differ *diff.Differ, oc canary.Outcome) error {
	if !oc.Change.Delete {
		return differ.Diff(diffObject{oc}, diff.Printer{}, false, false)
	}
	live := oc.Change.Live.DeepCopy()
	live.SetManagedFields(nil)
	return differ.From.Print(diffObject{oc}.Name(), live, diff.Printer{})
}

// diffExit treats exit status 1 ("the files differ") as success, as every
// diff program reports a difference that way.
func diffExit(err error) error {
	var exitErr interface{ ExitStatus() int }
	if errors.As(err, &exitErr) && exitErr.ExitStatus() == 1 {
		return nil
	}
	var osExit *exec.ExitError
	if errors.As(err, &osExit) && osExit.ExitCode() == 1 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("the diff program failed (set KUBECTL_EXTERNAL_DIFF to choose another): %w", err)
	}
	return nil
}
