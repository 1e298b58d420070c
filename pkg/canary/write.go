package canary

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// planWriter writes plans in their order: subsets, then routes, then
// pruning, so that stopping between two writes is always safe.
type planWriter struct {
	store Store
	// written names the objects written so far, across the retries that
	// follow a conflict, for the error of a refused later write.
	written []string
	// firstAnswered is when the answer to the first write that was not a
	// dry run came back.
	firstAnswered time.Time
	// sent are the outcomes of the writes of the last writeAll that were
	// stored, also when a later write of it failed.
	sent []Outcome
}

func (w *planWriter) writeAll(ctx context.Context, plan *routing.Plan, dryRun bool) ([]Outcome, error) {
	var out []Outcome
	w.sent = nil
	for _, c := range plan.Changes {
		if !c.Changed() {
			out = append(out, Outcome{Change: c, Object: c.Live})
			continue
		}
		object, err := w.store.Write(ctx, c, dryRun)
		if err != nil {
			return nil, w.refused(c, err, dryRun)
		}
		if !dryRun && w.firstAnswered.IsZero() {
			w.firstAnswered = time.Now()
		}
		out = append(out, Outcome{Change: c, Object: object})
		if !dryRun {
			w.sent = append(w.sent, Outcome{Change: c, Object: object})
		}
		if name := objectName(c); !dryRun && !slices.Contains(w.written, name) {
			w.written = append(w.written, name)
		}
	}
	return out, nil
}

// refused explains a failed write; a lost race is passed on as it is, for
// the engine to plan again.
func (w *planWriter) refused(c routing.Change, err error, dryRun bool) error {
	var manifestErr *ManifestError
	if lostRace(err) || errors.As(err, &manifestErr) {
		return err
	}
	verb := "update"
	switch {
	case c.Delete:
		verb = "delete"
	case c.Live == nil:
		verb = "create"
	}
	switch {
	case apierrors.IsForbidden(err) && len(w.written) > 0:
		// Permissions changed since they were checked.
		return fmt.Errorf("not allowed to %s %s in namespace %s, after %s was written (traffic only goes to subsets that exist); ask for this permission (see the RBAC section of the README) and run the same command again to finish: %w", verb, kube.ResourceOf(c.Desired), c.Desired.GetNamespace(), strings.Join(w.written, " and "), err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("not allowed to %s %s in namespace %s; nothing was changed. Ask for this permission (see the RBAC section of the README): %w", verb, kube.ResourceOf(c.Desired), c.Desired.GetNamespace(), err)
	case dryRun:
		return fmt.Errorf("the API server would reject the %s of %s %s/%s (found by a server dry run; nothing was written): %w", verb, c.Desired.GetKind(), c.Desired.GetNamespace(), c.Desired.GetName(), err)
	default:
		return fmt.Errorf("cannot %s %s %s/%s: %w", verb, c.Desired.GetKind(), c.Desired.GetNamespace(), c.Desired.GetName(), err)
	}
}

func objectName(c routing.Change) string {
	return fmt.Sprintf("%s %s/%s", c.Desired.GetKind(), c.Desired.GetNamespace(), c.Desired.GetName())
}
