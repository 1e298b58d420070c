package routing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
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
		// Unchanged specs keep their string: no copy of hundreds of routes.
		if prev, ok := annotations[PreStartKey(st.Service)]; !ok || prev != string(st.PreStartSpec) {
			annotations[PreStartKey(st.Service)] = string(st.PreStartSpec)
		}
	} else {
		delete(annotations, PreStartKey(st.Service))
	}
	obj.SetAnnotations(annotations)
}

// rawSpec records a spec for PreStartSpec, as encoding/json would write it
// (recorded states are compared byte for byte) but without reflection for
// the types decoded JSON holds: specs can hold hundreds of routes.
func rawSpec(spec map[string]interface{}) json.RawMessage {
	return appendJSON(make([]byte, 0, 64<<10), spec)
}

func appendJSON(b []byte, v interface{}) []byte {
	switch t := v.(type) {
	case map[string]interface{}:
		if t == nil {
			return append(b, "null"...)
		}
		keys := sortedKeys(make([]string, 0, 8), t)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSON(b, t[k])
		}
		return append(b, '}')
	case []interface{}:
		if t == nil {
			return append(b, "null"...)
		}
		b = append(b, '[')
		for i, x := range t {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, x)
		}
		return append(b, ']')
	case string:
		return appendJSONString(b, t)
	case int64:
		return strconv.AppendInt(b, t, 10)
	case bool:
		return strconv.AppendBool(b, t)
	case nil:
		return append(b, "null"...)
	default:
		// float64 and anything rarer: encoding/json's own rules.
		data, _ := json.Marshal(t)
		return append(b, data...)
	}
}

// appendJSONString writes plain ASCII directly; anything encoding/json
// escapes (quotes, control characters, <, >, &, non-ASCII) goes through it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			data, _ := json.Marshal(s)
			return append(b, data...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// sortedKeys appends m's keys to keys and sorts them. Callers pass a small
// buffer that stays on the stack for the small maps specs are made of.
func sortedKeys(keys []string, m map[string]interface{}) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// preStartSpec decodes PreStartSpec with numbers as the API machinery reads
// them (int64, not float64), so a restored spec equals the saved one.
func (st *State) preStartSpec() (map[string]interface{}, error) {
	var spec map[string]interface{}
	err := utiljson.Unmarshal(st.PreStartSpec, &spec)
	return spec, err
}

// specHash fingerprints a spec; map keys are sorted, so equal specs hash
// equally whatever order their fields were read in.
func specHash(spec map[string]interface{}) string {
	w := canonicalWriter{hash: sha256.New(), buf: make([]byte, 0, 8<<10)}
	w.write(spec)
	w.hash.Write(w.buf)
	return hex.EncodeToString(w.hash.Sum(nil)[:8])
}

// canonicalWriter writes a decoded JSON value in a canonical form (map keys
// sorted, numbers as JSON writes them) without reflection: the plan hashes
// every spec it writes, and specs can hold hundreds of routes. With a hash
// it feeds it a few kilobytes at a time instead of building the whole form;
// without one, buf collects the form.
type canonicalWriter struct {
	hash hash.Hash
	buf  []byte
}

func (w *canonicalWriter) write(v interface{}) {
	switch t := v.(type) {
	case map[string]interface{}:
		w.buf = append(w.buf, '{')
		for _, k := range sortedKeys(make([]string, 0, 8), t) {
			w.buf = appendQuoted(w.buf, k)
			w.buf = append(w.buf, ':')
			w.write(t[k])
			w.buf = append(w.buf, ',')
		}
		w.buf = append(w.buf, '}')
	case []interface{}:
		w.buf = append(w.buf, '[')
		for _, x := range t {
			w.write(x)
			w.buf = append(w.buf, ',')
		}
		w.buf = append(w.buf, ']')
	case string:
		w.buf = appendQuoted(w.buf, t)
	case int64:
		w.buf = strconv.AppendInt(w.buf, t, 10)
	case float64:
		w.buf = strconv.AppendFloat(w.buf, t, 'g', -1, 64)
	case bool:
		w.buf = strconv.AppendBool(w.buf, t)
	case nil:
		w.buf = append(w.buf, "null"...)
	default:
		w.buf = fmt.Appendf(w.buf, "%v", t)
	}
	if w.hash != nil && len(w.buf) >= cap(w.buf)/2 {
		w.hash.Write(w.buf)
		w.buf = w.buf[:0]
	}
}

// appendQuoted is strconv.AppendQuote, byte for byte (recorded hashes must
// not change), with a fast path for the plain ASCII of almost every key and
// value: the general one checks each rune for printability.
func appendQuoted(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func matchFingerprint(route map[string]interface{}) string {
	match, ok := route["match"]
	if !ok {
		return ""
	}
	// appendJSON writes what json.Marshal writes (fingerprints are
	// recorded), without reflection: start fingerprints every managed route.
	sum := sha256.Sum256(appendJSON(make([]byte, 0, 256), match))
	return hex.EncodeToString(sum[:6])
}
