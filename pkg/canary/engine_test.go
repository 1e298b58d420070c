package canary

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// memoryStore is a Store in memory that behaves as the API server does
// for the engine: optimistic updates, and refusals on demand.
type memoryStore struct {
	t       *testing.T
	service *corev1.Service
	deploys []appsv1.Deployment
	objects map[string]*unstructured.Unstructured // by kind/name
	version int
	// calls records what the engine asked, in order.
	calls []string
	// beforeWrite runs before each write (another writer's change).
	beforeWrite func(s *memoryStore)
	// forbidden lists kind/name objects the user may not write.
	forbidden map[string]bool
}

func newMemoryStore(t *testing.T, fixture string) *memoryStore {
	s := &memoryStore{t: t, objects: map[string]*unstructured.Unstructured{}, forbidden: map[string]bool{}}
	for _, u := range testutil.ReadObjects(t, testutil.Testdata("routing", fixture, "cluster.yaml")) {
		switch u.GetKind() {
		case "Service":
			s.service = &corev1.Service{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, s.service))
		case "Deployment":
			d := appsv1.Deployment{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d))
			s.deploys = append(s.deploys, d)
		default:
			s.store(u)
		}
	}
	return s
}

func (s *memoryStore) store(u *unstructured.Unstructured) *unstructured.Unstructured {
	s.version++
	u = u.DeepCopy()
	u.SetResourceVersion(strconv.Itoa(s.version))
	s.objects[u.GetKind()+"/"+u.GetName()] = u
	return u
}

func (s *memoryStore) Read(_ context.Context, q Query) (*routing.Snapshot, error) {
	s.calls = append(s.calls, "read")
	snap := &routing.Snapshot{APIVersion: "networking.istio.io/v1", Now: time.Now(), Service: s.service, Deployments: s.deploys}
	for _, u := range s.objects {
		switch u.GetKind() {
		case "VirtualService":
			snap.VirtualServices = append(snap.VirtualServices, u.DeepCopy())
		case "DestinationRule":
			snap.DestinationRules = append(snap.DestinationRules, u.DeepCopy())
		}
	}
	return snap, nil
}

func (s *memoryStore) Authorise(_ context.Context, changes []routing.Change) error {
	s.calls = append(s.calls, "authorise")
	for _, c := range changes {
		if key := c.Desired.GetKind() + "/" + c.Desired.GetName(); c.Changed() && s.forbidden[key] {
			return fmt.Errorf("not allowed to write %s", key)
		}
	}
	return nil
}

func (s *memoryStore) Write(_ context.Context, c routing.Change, dryRun bool) (*unstructured.Unstructured, error) {
	key := c.Desired.GetKind() + "/" + c.Desired.GetName()
	call := "write " + key
	if dryRun {
		call = "dry-run " + key
	}
	s.calls = append(s.calls, call)
	if !dryRun && s.beforeWrite != nil {
		s.beforeWrite(s)
	}
	gr := schema.GroupResource{Group: "networking.istio.io", Resource: c.Desired.GetKind()}
	live, exists := s.objects[key]
	switch {
	case s.forbidden[key]:
		return nil, apierrors.NewForbidden(gr, c.Desired.GetName(), errors.New("RBAC"))
	case c.Live == nil && exists:
		return nil, apierrors.NewAlreadyExists(gr, c.Desired.GetName())
	case c.Live != nil && (!exists || live.GetResourceVersion() != c.Live.GetResourceVersion()):
		return nil, apierrors.NewConflict(gr, c.Desired.GetName(), errors.New("the object has been modified"))
	case dryRun:
		return c.Desired, nil
	}
	return s.store(c.Desired), nil
}

// recordingObserver records when the engine calls it.
type recordingObserver struct {
	store *memoryStore
	name  string
	err   error // returned by BeforeWrite
}

func (o *recordingObserver) BeforeWrite(context.Context, *routing.Plan) error {
	o.store.calls = append(o.store.calls, o.name+" before")
	return o.err
}

func (o *recordingObserver) AfterWrite(_ context.Context, _ *Result, err error) error {
	o.store.calls = append(o.store.calls, fmt.Sprintf("%s after (error: %v)", o.name, err != nil))
	return nil
}

func start(store Store, weight int) Request {
	return Request{Namespace: "shop", Service: "reviews", MinAvailable: 1,
		Intent: routing.Intent{Action: routing.ActionStart, Weight: weight, ClusterDomain: routing.DefaultClusterDomain}}
}

// A start of several objects is sent whole as a server dry run first; the
// observers see the first real write coming, then the end, in their order.
func TestEngineStartsWithAServerDryRunAndTellsObservers(t *testing.T) {
	store := newMemoryStore(t, "no-istio")
	first, second := &recordingObserver{store: store, name: "report"}, &recordingObserver{store: store, name: "wait"}
	result, err := (&Engine{Store: store}).Change(context.Background(), start(store, 10), first, second)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"read",
		"dry-run DestinationRule/reviews", "dry-run VirtualService/reviews",
		"report before", "wait before",
		"write DestinationRule/reviews", "write VirtualService/reviews",
		"report after (error: false)", "wait after (error: false)",
	}, store.calls)
	assert.Equal(t, 10, result.Plan.State.Weight)
	require.Len(t, result.Outcomes, 2)
	assert.NotEmpty(t, result.Outcomes[1].Object.GetResourceVersion(), "the outcome is the object as written")
}

// A write that lost a race is planned again from a fresh read, and the
// observers are told once.
func TestEngineReplansAfterAConflict(t *testing.T) {
	store := newMemoryStore(t, "no-istio")
	_, err := (&Engine{Store: store}).Change(context.Background(), start(store, 10))
	require.NoError(t, err)
	store.calls = nil
	raced := false
	store.beforeWrite = func(s *memoryStore) {
		if !raced {
			raced = true
			// Another writer touches the VirtualService first.
			s.store(s.objects["VirtualService/reviews"])
		}
	}
	wait := &recordingObserver{store: store, name: "wait"}
	weight := start(store, 40)
	weight.Intent.Action = routing.ActionWeight
	result, err := (&Engine{Store: store}).Change(context.Background(), weight, wait)
	require.NoError(t, err)
	assert.Equal(t, []string{"read", "wait before", "write VirtualService/reviews", "read", "write VirtualService/reviews", "wait after (error: false)"}, store.calls)
	assert.Equal(t, 40, result.Plan.State.Weight)
}

// Preflight errors stop a change before anything is sent, unless forced;
// abort is never stopped.
func TestEnginePreflight(t *testing.T) {
	store := newMemoryStore(t, "no-istio")
	store.deploys[1].Status.AvailableReplicas = 0 // the canary is not ready
	var warnings []string
	engine := &Engine{Store: store, Warn: func(f routing.Finding) { warnings = append(warnings, f.Object) }}
	wait := &recordingObserver{store: store, name: "wait"}
	_, err := engine.Change(context.Background(), start(store, 10), wait)
	var preflight *PreflightError
	require.ErrorAs(t, err, &preflight)
	assert.Contains(t, err.Error(), "preflight check of service shop/reviews failed, nothing was changed")
	assert.Equal(t, []string{"read", "wait after (error: true)"}, store.calls)

	forced := start(store, 10)
	forced.Force = true
	_, err = engine.Change(context.Background(), forced)
	require.NoError(t, err)
	assert.Contains(t, warnings, "Deployment shop/reviews-v2", "a forced error is still said")
}

// A client dry run reads and plans only; a server dry run sends every write
// with dryRun and tells no observer a write is coming.
func TestEngineDryRuns(t *testing.T) {
	for dryRun, want := range map[DryRun][]string{
		ClientDryRun: {"read", "wait after (error: false)"},
		ServerDryRun: {"read", "dry-run DestinationRule/reviews", "dry-run VirtualService/reviews", "wait after (error: false)"},
	} {
		store := newMemoryStore(t, "no-istio")
		req := start(store, 10)
		req.DryRun = dryRun
		result, err := (&Engine{Store: store}).Change(context.Background(), req, &recordingObserver{store: store, name: "wait"})
		require.NoError(t, err)
		assert.Equal(t, want, store.calls)
		assert.Empty(t, store.objects)
		assert.Len(t, result.Outcomes, 2)
	}
}

// A change of several objects (not a start) asks for every permission
// first, so a refusal leaves nothing half written.
func TestEngineAuthorisesBeforeTheFirstOfSeveralWrites(t *testing.T) {
	store := newMemoryStore(t, "no-istio")
	_, err := (&Engine{Store: store}).Change(context.Background(), start(store, 10))
	require.NoError(t, err)
	store.calls = nil
	store.forbidden["VirtualService/reviews"] = true
	abort := start(store, 0)
	abort.Intent.Action = routing.ActionAbort
	_, err = (&Engine{Store: store}).Change(context.Background(), abort)
	require.ErrorContains(t, err, "not allowed to write VirtualService/reviews")
	assert.Equal(t, []string{"read", "authorise"}, store.calls)

	// Refused between two writes (permissions changed after the question),
	// the error says what was written.
	store.calls = nil
	store.forbidden = map[string]bool{}
	store.beforeWrite = func(s *memoryStore) { s.forbidden["DestinationRule/reviews"] = true }
	_, err = (&Engine{Store: store}).Change(context.Background(), abort)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "after VirtualService shop/reviews was written")
}

// With the canary unready, a change that lowers its share goes through
// (the way out of an incident); one that raises it is refused unless
// forced, naming the canary's Deployment.
func TestEnginePreflightGatesOnlyIncreases(t *testing.T) {
	store := newMemoryStore(t, "no-istio")
	engine := &Engine{Store: store}
	_, err := engine.Change(context.Background(), start(store, 30))
	require.NoError(t, err)
	store.deploys[1].Status.AvailableReplicas = 0 // the canary falls ill
	change := func(action routing.Action, weight int, force bool) error {
		req := start(store, weight)
		req.Intent.Action, req.Force = action, force
		_, err := engine.Change(context.Background(), req)
		return err
	}
	require.NoError(t, change(routing.ActionWeight, 10, false), "weight down")
	require.NoError(t, change(routing.ActionWeight, 10, false), "weight unchanged")
	err = change(routing.ActionWeight, 20, false)
	var preflight *PreflightError
	require.ErrorAs(t, err, &preflight, "weight up")
	assert.Contains(t, err.Error(), "Deployment shop/reviews-v2: canary version=v2 has 0 available replica(s)")
	require.NoError(t, change(routing.ActionWeight, 0, false), "weight 0")
	require.ErrorAs(t, change(routing.ActionPromote, 0, false), &preflight, "promote")
	require.NoError(t, change(routing.ActionWeight, 20, true), "weight up, forced")
	require.NoError(t, change(routing.ActionAbort, 0, false), "abort")
}
