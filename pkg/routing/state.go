package routing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// StateAnnotationPrefix starts the key of the annotation that records a
// Service's canary on every routing object the plugin touches. The Service
// name completes the key, so one VirtualService can carry the canaries of
// several Services side by side.
const StateAnnotationPrefix = "kubectl-canary.io/"

// PreStartAnnotationPrefix starts the key of the annotation that keeps an
// adopted object's spec from before start, for abort to restore. It is kept
// apart from the state so that the commands in between (weight, route,
// status) neither parse nor rewrite a copy of a spec that can hold hundreds
// of routes. States recorded before this annotation existed carry the spec
// as preStartSpec inside the state; they are read as before and moved here
// on their next write.
const PreStartAnnotationPrefix = "pre-start.kubectl-canary.io/"

// ManagedByLabel marks objects the plugin created.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "kubectl-canary"
)

// Phase is where a canary stands.
type Phase string

const (
	PhaseProgressing Phase = "Progressing"
	PhasePromoted    Phase = "Promoted"
	PhaseAborted     Phase = "Aborted"
)

// State is what the plugin records on each object it touches, so that every
// command (from any laptop) reads the canary from the cluster alone.
type State struct {
	Service string `json:"service"`
	// Namespace is the Service's, recorded on objects in other namespaces
	// (a VirtualService elsewhere that routes the Service's host).
	Namespace    string `json:"namespace,omitempty"`
	VersionLabel string `json:"versionLabel"`
	Stable       string `json:"stable"`
	StableSubset string `json:"stableSubset"`
	Canary       string `json:"canary,omitempty"`
	CanarySubset string `json:"canarySubset,omitempty"`
	// PromotedFrom is the stable version a promoted canary replaced.
	PromotedFrom string    `json:"promotedFrom,omitempty"`
	Weight       int       `json:"weight"`
	Phase        Phase     `json:"phase"`
	StartedAt    time.Time `json:"startedAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	// Routes are the managed routes of a VirtualService, chosen by start.
	Routes []RouteRef `json:"routes,omitempty"`
	// Matches are the request rules that send matching requests to the canary.
	Matches []MatchRule `json:"matches,omitempty"`
	// Sticky keeps a client that reached the canary on it, by cookie.
	Sticky bool `json:"sticky,omitempty"`
	// Mirror is the share of managed traffic shadowed to the canary, in percent.
	Mirror int `json:"mirror,omitempty"`
	// AddedRoutes are the names of the routes the canary added to a
	// VirtualService (match and sticky routes); promote and abort remove them.
	AddedRoutes []string `json:"addedRoutes,omitempty"`
	// OtherNamespaces are the VirtualServices ("namespace/name") of other
	// namespaces that carry the canary, recorded on the DestinationRule so
	// later commands read just those.
	OtherNamespaces []string `json:"otherNamespaces,omitempty"`
	// AddedSubsets are the DestinationRule subsets start added; only these
	// are ever pruned.
	AddedSubsets []string `json:"addedSubsets,omitempty"`
	// Created is set when the plugin created the object.
	Created bool `json:"created,omitempty"`
	// PreStartSpec is the spec of an adopted object before start, restored
	// by abort when SpecHash shows nobody changed the object since.
	// It stays raw JSON until an abort needs it. It is recorded in its own
	// annotation (PreStartAnnotationPrefix); the JSON field is read only
	// from states written before that.
	PreStartSpec json.RawMessage `json:"preStartSpec,omitempty"`
	// SpecHash is the hash of the spec the plugin last wrote.
	SpecHash string `json:"specHash,omitempty"`
	// Run is the progress of `kubectl canary run`, so that an interrupted
	// run resumes from its step.
	Run *RunState `json:"run,omitempty"`
}

// RunState is where a metric-gated run stands: its steps, the step whose
// weight is set, when that step began, and the last analysis.
type RunState struct {
	Steps         []int     `json:"steps"`
	Step          int       `json:"step"`
	StepStartedAt time.Time `json:"stepStartedAt"`
	// Inconclusive counts the inconclusive analyses of the current step.
	Inconclusive int    `json:"inconclusive,omitempty"`
	LastVerdict  string `json:"lastVerdict,omitempty"`
	LastReason   string `json:"lastReason,omitempty"`
	// AnalyzedAt is when the last analysis ran; nil before the first.
	AnalyzedAt *time.Time `json:"analyzedAt,omitempty"`
}

// RecordRun puts run into the Service's state on every object of the plan
// that carries it, so the writes of the plan record the run's progress.
func RecordRun(plan *Plan, run *RunState) error {
	for _, c := range plan.Changes {
		st, err := ReadState(c.Desired, plan.Service)
		if err != nil {
			return err
		}
		if st == nil {
			continue
		}
		st.Run = run
		writeState(c.Desired, st)
	}
	plan.State.Run = run
	return nil
}

// RouteRef finds a managed route again. Indices shift when someone inserts a
// route, so a route is found by name first, then by its match conditions.
type RouteRef struct {
	Kind  string `json:"kind"`
	Index int    `json:"index"`
	Name  string `json:"name,omitempty"`
	Match string `json:"match,omitempty"`
}

func (r RouteRef) String() string {
	if r.Name != "" {
		return fmt.Sprintf("%s route %q", r.Kind, r.Name)
	}
	return fmt.Sprintf("%s route #%d", r.Kind, r.Index)
}

// StateKey is the annotation key of a Service's canary state.
func StateKey(service string) string { return StateAnnotationPrefix + service }

// PreStartKey is the annotation key of the spec an adopted object had before
// the Service's canary started.
func PreStartKey(service string) string { return PreStartAnnotationPrefix + service }

// ReadState returns the canary state of service recorded on obj, if any.
func ReadState(obj *unstructured.Unstructured, service string) (*State, error) {
	if obj == nil {
		return nil, nil
	}
	annotations := obj.GetAnnotations()
	raw, ok := annotations[StateKey(service)]
	if !ok {
		return nil, nil
	}
	st := &State{}
	if err := json.Unmarshal([]byte(raw), st); err != nil {
		return nil, fmt.Errorf("annotation %s on %s %s/%s is not valid canary state (%v); remove the annotation and start again", StateKey(service), obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	// A spec inside the state was written by a version before the
	// annotation, which never removes the annotation: when both are there,
	// the one inside is the newer (a start by that version after an abort
	// by it left an older annotation behind).
	if spec, ok := annotations[PreStartKey(service)]; ok && st.PreStartSpec == nil {
		// Checked when abort decodes it; until then it is carried as is.
		st.PreStartSpec = json.RawMessage(spec)
	}
	return st, nil
}

// StatesOn lists every canary state recorded on obj, keyed by Service.
func StatesOn(obj *unstructured.Unstructured) map[string]*State {
	out := map[string]*State{}
	for key := range obj.GetAnnotations() {
		if !strings.HasPrefix(key, StateAnnotationPrefix) {
			continue
		}
		service := strings.TrimPrefix(key, StateAnnotationPrefix)
		if st, err := ReadState(obj, service); err == nil && st != nil {
			out[service] = st
		}
	}
	return out
}

// writeState records st on obj: the state in one annotation, the pre-start
// spec (if any) in another.
func writeState(obj *unstructured.Unstructured, st *State) {
	recorded := *st
	recorded.PreStartSpec = nil
	data, err := json.Marshal(&recorded)
	if err != nil {
		panic(fmt.Sprintf("canary state cannot fail to marshal: %v", err))
	}
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[StateKey(st.Service)] = string(data)
	if st.PreStartSpec != nil {
		annotations[PreStartKey(st.Service)] = string(st.PreStartSpec)
	} else {
		delete(annotations, PreStartKey(st.Service))
	}
	obj.SetAnnotations(annotations)
}

// preStartSpec decodes PreStartSpec with numbers as the API machinery reads
// them (int64, not float64), so a restored spec equals the saved one.
func (st *State) preStartSpec() (map[string]interface{}, error) {
	var spec map[string]interface{}
	err := utiljson.Unmarshal(st.PreStartSpec, &spec)
	return spec, err
}

// specHash fingerprints a spec for State.SpecHash, which abort compares
// with the live spec to tell whether anyone changed the object since the
// plugin last wrote it. Running canaries carry these hashes, so the form
// hashed must never change: map keys sorted, strings quoted as Go quotes
// them, a comma after every element. It is not JSON; hashing encoding/json's
// bytes instead would make every running canary look changed to abort.
func specHash(spec map[string]interface{}) string {
	sum := sha256.Sum256(appendSpecHashForm(make([]byte, 0, 64<<10), spec))
	return hex.EncodeToString(sum[:8])
}

func appendSpecHashForm(b []byte, v interface{}) []byte {
	switch t := v.(type) {
	case map[string]interface{}:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for _, k := range keys {
			b = strconv.AppendQuote(b, k)
			b = append(b, ':')
			b = appendSpecHashForm(b, t[k])
			b = append(b, ',')
		}
		return append(b, '}')
	case []interface{}:
		b = append(b, '[')
		for _, x := range t {
			b = appendSpecHashForm(b, x)
			b = append(b, ',')
		}
		return append(b, ']')
	case string:
		return strconv.AppendQuote(b, t)
	case int64:
		return strconv.AppendInt(b, t, 10)
	case float64:
		return strconv.AppendFloat(b, t, 'g', -1, 64)
	case bool:
		return strconv.AppendBool(b, t)
	case nil:
		return append(b, "null"...)
	default:
		return fmt.Appendf(b, "%v", t)
	}
}

// routeFingerprint is RouteRef.Match of a route of kind: a Gateway API
// rule's matches are its "matches", a VirtualService route's its "match".
func routeFingerprint(kind string, route map[string]interface{}) string {
	if kind != gatewayRules {
		return matchFingerprint(route)
	}
	matches, ok := route["matches"]
	if !ok {
		return ""
	}
	return matchFingerprint(map[string]interface{}{"match": matches})
}

// matchFingerprint identifies an unnamed managed route by its match
// conditions (RouteRef.Match): the hash of their encoding/json form.
func matchFingerprint(route map[string]interface{}) string {
	match, ok := route["match"]
	if !ok {
		return ""
	}
	// Decoded JSON always encodes.
	data, _ := json.Marshal(match)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}
