package canary

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
)

// conflictBackoff bounds how often a change re-reads and re-plans after
// losing a race with another writer (about 5 s in all).
var conflictBackoff = wait.Backoff{Steps: 8, Duration: 20 * time.Millisecond, Factor: 2, Jitter: 0.2}

// DryRun says whether a change is written, and if not, how far it goes.
type DryRun int

const (
	// NoDryRun writes the plan.
	NoDryRun DryRun = iota
	// ClientDryRun plans and checks, and sends nothing.
	ClientDryRun
	// ServerDryRun sends every write with dryRun=All, so the API server
	// validates and authorises it without storing it.
	ServerDryRun
)

// Engine carries one routing change at a time through read, plan, check,
// authorise, server dry run and write, starting over from the read when
// another writer changed an object in between, so that neither that
// writer's change nor the intent is lost.
type Engine struct {
	Store Store
	// Warn receives each warning as it arises: a preflight finding that
	// does not stop the change, or an error finding the request forced.
	Warn func(routing.Finding)
}

// Request is one change: an intent for a Service and how to carry it out.
type Request struct {
	Namespace string
	Service   string
	Intent    routing.Intent
	DryRun    DryRun
	// Force writes despite preflight errors; MinAvailable is the fewest
	// available canary replicas that may take traffic.
	Force        bool
	MinAvailable int32
	// Run, when set, is recorded in the canary's state with the change.
	Run *routing.RunState
}

// Result is a change carried out (or, with a dry run, planned).
type Result struct {
	Request  Request
	Plan     *routing.Plan
	Outcomes []Outcome
	// FirstWriteAnswered is when the store answered the first write; zero
	// when nothing was written.
	FirstWriteAnswered time.Time
}

// Outcome is one object of a plan once the change has acted on it.
type Outcome struct {
	Change routing.Change
	// Object is the object as written, as the server would write it, or
	// as planned (client dry run).
	Object *unstructured.Unstructured
}

// Observer follows a change from outside the engine: --wait reads istiod
// right before the first write and waits for the proxies after the last.
type Observer interface {
	// BeforeWrite runs once, after every check has passed, right before
	// the first write that is not a dry run; an error stops the change
	// with nothing written.
	BeforeWrite(ctx context.Context, plan *routing.Plan) error
	// AfterWrite runs once the change is over, in the order the observers
	// were given: err is nil when it was carried out (result is then set),
	// else what stopped it.
	AfterWrite(ctx context.Context, result *Result, err error) error
}

// Change carries out one request, then lets each observer see how it ended.
func (e *Engine) Change(ctx context.Context, req Request, observers ...Observer) (*Result, error) {
	result, err := e.change(ctx, req, observers)
	for _, o := range observers {
		if afterErr := o.AfterWrite(ctx, result, err); err == nil {
			err = afterErr
		}
	}
	return result, err
}

func (e *Engine) change(ctx context.Context, req Request, observers []Observer) (*Result, error) {
	w := &planWriter{store: e.Store}
	var result *Result
	var lost []attempt
	authorised, observed := false, false
	err := retry.OnError(conflictBackoff, lostRace, func() error {
		snap, err := e.Store.Read(ctx, queryFor(req))
		if err != nil {
			return err
		}
		plan, err := e.plan(snap, req)
		if err != nil {
			return err
		}
		result = &Result{Request: req, Plan: plan}
		if req.DryRun == ClientDryRun {
			result.Outcomes = plannedOutcomes(plan)
			return nil
		}
		if !authorised && needsAuthorising(req, plan) {
			if err := e.Store.Authorise(ctx, plan.Changes); err != nil {
				return err
			}
			authorised = true
		}
		if req.DryRun == NoDryRun && startsSeveral(req, plan) {
			// A change the API server would reject (schema, admission) is
			// refused before anything is stored, not halfway.
			if _, err := w.writeAll(ctx, plan, true); err != nil {
				return err
			}
		}
		if req.DryRun == NoDryRun && !observed {
			// Once, as late as possible: a retry after a conflict may
			// follow a write, and what was seen first stays a lower bound.
			for _, o := range observers {
				if err := o.BeforeWrite(ctx, plan); err != nil {
					return err
				}
			}
			observed = true
		}
		result.Outcomes, err = w.writeAll(ctx, plan, req.DryRun == ServerDryRun)
		result.FirstWriteAnswered = w.firstAnswered
		if lostRace(err) {
			// Planned again from a new read, the objects this attempt
			// wrote are as wanted and drop out of the plan; the report
			// must still name them, and the warnings that came with them.
			lost = append(lost, attempt{plan: plan, sent: w.sent})
		} else if err == nil {
			result.Outcomes, plan.Warnings = withLostAttempts(lost, result.Outcomes, plan.Warnings)
		}
		return err
	})
	if lostRace(err) {
		return nil, fmt.Errorf("other writers kept changing the routing objects of service %s/%s; nothing more was written, run the command again: %w", req.Namespace, req.Service, err)
	}
	if err != nil {
		return nil, err
	}
	return result, nil
}

// attempt is a plan whose writes lost a race with another writer after
// sending some of them.
type attempt struct {
	plan *routing.Plan
	sent []Outcome
}

// withLostAttempts adds to the outcomes of the plan carried out the writes
// that earlier attempts stored and it no longer names as changed, and to
// its warnings theirs.
func withLostAttempts(lost []attempt, outcomes []Outcome, warnings []string) ([]Outcome, []string) {
	changed := map[string]bool{}
	for _, oc := range outcomes {
		if oc.Change.Changed() {
			changed[objectName(oc.Change)] = true
		}
	}
	var earlier []Outcome
	for _, a := range lost {
		for _, oc := range a.sent {
			if name := objectName(oc.Change); !changed[name] {
				changed[name] = true
				earlier = append(earlier, oc)
			}
		}
		if len(a.sent) == 0 {
			continue
		}
		for _, w := range a.plan.Warnings {
			if !slices.Contains(warnings, w) {
				warnings = append(warnings, w)
			}
		}
	}
	if len(earlier) == 0 {
		return outcomes, warnings
	}
	kept := earlier
	for _, oc := range outcomes {
		if !changed[objectName(oc.Change)] || oc.Change.Changed() {
			kept = append(kept, oc)
		}
	}
	return kept, warnings
}

// plan computes the plan of a request and runs the preflight check on it.
func (e *Engine) plan(snap *routing.Snapshot, req Request) (*routing.Plan, error) {
	plan, err := routing.Compute(*snap, req.Intent)
	if err != nil {
		return nil, err
	}
	if req.Run != nil {
		if err := routing.RecordRun(plan, req.Run); err != nil {
			return nil, err
		}
	}
	return plan, e.preflight(snap, plan, req)
}

// queryFor says what a request reads. Start looks for VirtualServices of
// other namespaces that route the Service and records them; the commands
// after it read just those.
func queryFor(req Request) Query {
	starting := req.Intent.Action == routing.ActionStart
	q := Query{Namespace: req.Namespace, Service: req.Service, OtherNamespaces: starting, WarnIfNotAllowed: starting, GatewayAPIRoutes: starting, ClusterDomain: req.Intent.ClusterDomain}
	if g := req.Intent.Gateway; g != nil {
		q.Gateways = append(q.Gateways, types.NamespacedName{Namespace: g.Namespace, Name: g.Name})
	}
	return q
}

// preflight runs the checks before a change is written: errors stop the
// change unless forced, warnings are passed on. Abort is the way back and
// is never stopped; a plan that writes nothing needs no check. The canary's
// readiness is checked only when the change raises its share: lowering the
// exposure of a failing canary is what an incident needs.
func (e *Engine) preflight(snap *routing.Snapshot, plan *routing.Plan, req Request) error {
	if req.Intent.Action == routing.ActionAbort || !plan.Changed() {
		return nil
	}
	// Compute read the same record without an error.
	before, _ := routing.LiveCanary(*snap, req.Intent.ClusterDomain)
	notRaising := !routing.RaisesCanaryShare(before, plan.State)
	findings := routing.Check(*snap, req.Intent, routing.CheckOptions{MinAvailable: req.MinAvailable, IdleCanary: notRaising})
	var stopping []routing.Finding
	for _, f := range findings {
		if f.Severity == routing.SeverityError && !req.Force {
			stopping = append(stopping, f)
			continue
		}
		if e.Warn != nil {
			e.Warn(f)
		}
	}
	if len(stopping) > 0 {
		return &PreflightError{Namespace: req.Namespace, Service: req.Service, Findings: stopping}
	}
	return nil
}

// PreflightError is a change stopped by the errors its preflight check
// found; nothing was written.
type PreflightError struct {
	Namespace, Service string
	Findings           []routing.Finding
}

func (e *PreflightError) Error() string {
	return e.Describe(func(f routing.Finding) string { return f.Message }, "force the change", "")
}

// Describe words the error with each finding's message as message gives
// it, force as the way to go ahead anyway, and target after the check
// command it suggests (what routing.FieldTarget is).
func (e *PreflightError) Describe(message func(routing.Finding) string, force, target string) string {
	lines := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		lines[i] = fmt.Sprintf("  %s: %s", f.Object, message(f))
	}
	return fmt.Sprintf("preflight check of service %s/%s failed, nothing was changed:\n%s\nFix these, or %s to go ahead anyway (kubectl canary check %s%s shows every finding)", e.Namespace, e.Service, strings.Join(lines, "\n"), force, e.Service, target)
}

// needsAuthorising: asking first matters only when a refusal could come
// after another write; a lone write that is refused has changed nothing.
// Start sends every write as a server dry run first, which the API server
// authorises like the real one, so it needs no question either.
func needsAuthorising(req Request, plan *routing.Plan) bool {
	return req.DryRun == NoDryRun && req.Intent.Action != routing.ActionStart && changedCount(plan) > 1
}

// startsSeveral: a start writing several objects is first sent whole as a
// server dry run.
func startsSeveral(req Request, plan *routing.Plan) bool {
	return req.Intent.Action == routing.ActionStart && changedCount(plan) > 1
}

// lostRace tells whether a write lost a race with another writer.
func lostRace(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
}

func plannedOutcomes(plan *routing.Plan) []Outcome {
	out := make([]Outcome, 0, len(plan.Changes))
	for _, c := range plan.Changes {
		out = append(out, Outcome{Change: c, Object: c.Desired})
	}
	return out
}

func changedCount(plan *routing.Plan) int {
	n := 0
	for _, c := range plan.Changes {
		if c.Changed() {
			n++
		}
	}
	return n
}
