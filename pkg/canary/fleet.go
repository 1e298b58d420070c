package canary

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// Member is one cluster of a multi-primary mesh, by kubeconfig context.
type Member struct {
	Context string
	Engine  *Engine
	// Observers follow the change in this cluster (--wait).
	Observers []Observer
}

// Fleet carries one change into every cluster of a multi-primary mesh,
// where each istiod reads routing from its own API server only. Each
// cluster runs its own Engine at the same time as the others; a barrier
// holds every engine right before its first write until all of them have
// passed their reads, plans, checks, permissions and server dry runs, so
// that a refusal anywhere leaves every cluster as it was.
type Fleet struct {
	Members []Member
}

// MemberResult is how the change ended in one cluster.
type MemberResult struct {
	Context string
	Result  *Result
	Err     error
	// Written says the change got past the barrier in this cluster: its
	// writes were sent (all of them when Err is nil).
	Written bool
}

// Change carries out req in every cluster. Dry runs go everywhere and write
// nothing; otherwise no cluster writes before every cluster is ready to.
func (f *Fleet) Change(ctx context.Context, req Request) ([]MemberResult, error) {
	results := make([]MemberResult, len(f.Members))
	barrier := newWriteBarrier(len(f.Members))
	var wg sync.WaitGroup
	for i, m := range f.Members {
		results[i].Context = m.Context
		gate := &barrierObserver{barrier: barrier, member: i, context: m.Context}
		wg.Go(func() {
			observers := append([]Observer{gate}, m.Observers...)
			results[i].Result, results[i].Err = m.Engine.Change(ctx, req, observers...)
			results[i].Written = gate.passed
			barrier.leave(i, m.Context, results[i].Err)
		})
	}
	wg.Wait()
	if err := barrier.err; err != nil && !errors.Is(err, errHeldByAnotherCluster) {
		return results, err
	}
	return results, fleetError(results)
}

// fleetError sums up a change over several clusters: nothing written when
// the barrier held, else which clusters were changed and which were not.
func fleetError(results []MemberResult) error {
	var failed, written, notWritten []string
	var errs []error
	for _, r := range results {
		switch {
		case r.Err != nil && !errors.Is(r.Err, errHeldByAnotherCluster):
			failed = append(failed, r.Context)
			errs = append(errs, fmt.Errorf("cluster %s: %w", r.Context, r.Err))
		case r.Written && r.Err == nil:
			written = append(written, r.Context)
		default:
			notWritten = append(notWritten, r.Context)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	sort.Strings(written)
	if len(written) == 0 {
		return fmt.Errorf("%w\nnothing was changed in any cluster", errors.Join(errs...))
	}
	return fmt.Errorf("%w\nthe change was written in %s and not in %s; run the same command again to bring every cluster to it", errors.Join(errs...), strings.Join(written, ", "), strings.Join(append(failed, notWritten...), ", "))
}

// errHeldByAnotherCluster stops a cluster's change at the barrier because
// another cluster's failed before writing.
var errHeldByAnotherCluster = errors.New("not written, because another cluster refused the change")

// writeBarrier lets the engines past their first write together: once
// every member has arrived at it, or ended without arriving, it opens when
// all arrived with plans that agree, and stays shut otherwise.
type writeBarrier struct {
	mu      sync.Mutex
	waiting int
	plans   map[int]*routing.Plan
	names   map[int]string
	failed  bool
	done    chan struct{}
	err     error
}

func newWriteBarrier(members int) *writeBarrier {
	return &writeBarrier{waiting: members, plans: map[int]*routing.Plan{}, names: map[int]string{}, done: make(chan struct{})}
}

// arrive waits, with this member's plan, for the others.
func (b *writeBarrier) arrive(ctx context.Context, member int, name string, plan *routing.Plan) error {
	b.mu.Lock()
	b.plans[member], b.names[member] = plan, name
	b.countDown()
	b.mu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leave records that a member's change ended; one that ended in an error
// before arriving holds every other.
func (b *writeBarrier) leave(member int, name string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, arrived := b.plans[member]; arrived {
		return
	}
	b.names[member] = name
	if err != nil {
		b.failed = true
	}
	b.countDown()
}

// countDown opens or shuts the barrier once the last member is in.
func (b *writeBarrier) countDown() {
	b.waiting--
	if b.waiting > 0 {
		return
	}
	switch {
	case b.failed:
		b.err = errHeldByAnotherCluster
	default:
		b.err = disagreement(b.plans, b.names)
	}
	close(b.done)
}

// disagreement is an error when the clusters' plans would leave them with
// different canaries: other versions or another version label.
func disagreement(plans map[int]*routing.Plan, names map[int]string) error {
	var first *routing.Plan
	firstName := ""
	for i := 0; i < len(names); i++ {
		plan, ok := plans[i]
		if !ok || plan == nil {
			continue
		}
		if first == nil {
			first, firstName = plan, names[i]
			continue
		}
		a, b := first.State, plan.State
		if a.VersionLabel != b.VersionLabel || a.Stable != b.Stable || a.Canary != b.Canary {
			return fmt.Errorf("the clusters disagree about the canary of service %s/%s: in %s %s, in %s %s; make the Deployments (and any --stable/--canary) the same in every cluster; nothing was changed in any cluster",
				plan.Namespace, plan.Service, firstName, versionsText(a), names[i], versionsText(b))
		}
	}
	return nil
}

func versionsText(st routing.State) string {
	return fmt.Sprintf("stable %s=%s and canary %s=%s", st.VersionLabel, st.Stable, st.VersionLabel, st.Canary)
}

// barrierObserver is the barrier, as one member's engine sees it.
type barrierObserver struct {
	barrier *writeBarrier
	member  int
	context string
	passed  bool
}

func (o *barrierObserver) BeforeWrite(ctx context.Context, plan *routing.Plan) error {
	if err := o.barrier.arrive(ctx, o.member, o.context, plan); err != nil {
		return err
	}
	o.passed = true
	return nil
}

func (o *barrierObserver) AfterWrite(context.Context, *Result, error) error { return nil }
