package analysis

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// The traffic split: does each version receive the share of the Service's
// requests the routing gives it? A VirtualService steers only requests
// that pass a proxy which received it; clients without a sidecar, or whose
// sidecar does not see the VirtualService, reach the pods through
// kube-proxy, which spreads them by pod count.

const (
	// splitZ is the 99% two-sided normal quantile; splitZOneSided the 99%
	// one-sided one, used where rules may only add canary traffic.
	splitZ         = 2.5758293035489
	splitZOneSided = 2.3263478740408
	// minExpectedRequests is how many requests each side of the split
	// must expect before the normal approximation of the binomial holds.
	minExpectedRequests = 10
	// unknownSource is Istio's source_workload for a client whose proxy
	// did not identify itself: one outside the mesh.
	unknownSource = "unknown"
)

// Routing is what the routing promises the canary: its weight, the mirror
// that copies requests to it, and what else may send it traffic.
type Routing struct {
	// Weight is the percentage of the managed routes' requests sent to the canary.
	Weight int
	// Mirror is the percentage of those requests also copied to the canary;
	// the canary answers the copies, so they count in its share.
	Mirror int
	// CanaryRules says header, cookie or sticky rules send requests to the
	// canary beyond its weight: only too small a share is then a mismatch.
	CanaryRules bool
	// VirtualServices carry the canary, with the namespaces they are exported to.
	VirtualServices []ExportedRoute
	// CanaryPods and Pods are the ready pods of the canary and of both
	// versions: how kube-proxy spreads the requests that bypass the routing.
	CanaryPods, Pods int32
	// ChangedAt is when the routing last changed; the split is measured on
	// the traffic after it.
	ChangedAt time.Time
}

// ExportedRoute is a VirtualService and its spec.exportTo.
type ExportedRoute struct {
	Namespace, Name string
	ExportTo        []string
}

// visibleFrom says whether sidecars in namespace ns receive the route.
// An empty exportTo is Istio's default: every namespace.
func (e ExportedRoute) visibleFrom(ns string) bool {
	if len(e.ExportTo) == 0 {
		return true
	}
	for _, to := range e.ExportTo {
		if to == "*" || to == ns || (to == "." && ns == e.Namespace) {
			return true
		}
	}
	return false
}

// ExpectedShare is the share of the answered requests the canary should
// get: its weight plus the mirrored copies, which it answers too.
func (r Routing) ExpectedShare() float64 {
	w, m := float64(r.Weight)/100, float64(r.Mirror)/100
	return (w + m) / (1 + m)
}

// SourceTraffic is what one client workload sent the Service in the window.
type SourceTraffic struct {
	Workload  string  `json:"workload"`
	Namespace string  `json:"namespace,omitempty"`
	Requests  float64 `json:"requests"`
	// CanaryRequests are the requests of it that the canary answered.
	CanaryRequests float64 `json:"canaryRequests"`
	// InMesh says the client's own proxy reported sending them
	// (reporter="source"), so the routing could steer them.
	InMesh bool `json:"inMesh"`
}

func (s SourceTraffic) String() string {
	if s.Workload == unknownSource || s.Workload == "" {
		return "clients without a sidecar (source_workload \"unknown\")"
	}
	return fmt.Sprintf("workload %s/%s", s.Namespace, s.Workload)
}

// Split is the requests the Service's pods answered, by version and by
// source, over Window.
type Split struct {
	Window                time.Duration
	Stable, Canary, Other float64
	Sources               []SourceTraffic
}

// Total is every request the Service's pods answered.
func (s Split) Total() float64 { return s.Stable + s.Canary + s.Other }

// SplitVerdict is how the observed split compares with the routing.
type SplitVerdict string

const (
	SplitMatches  SplitVerdict = "matches"
	SplitMismatch SplitVerdict = "mismatch"
	// SplitUnknown: too few requests, or too little time since the
	// routing changed, to tell.
	SplitUnknown SplitVerdict = "unknown"
)

// SplitReport is the observed split judged against the routing.
type SplitReport struct {
	Verdict SplitVerdict `json:"verdict"`
	Reason  string       `json:"reason"`
	Window  string       `json:"window,omitempty"`
	// Requests is every request the Service's pods answered in Window.
	Requests    float64  `json:"requests"`
	StableShare *float64 `json:"stableShare,omitempty"`
	CanaryShare *float64 `json:"canaryShare,omitempty"`
	// ExpectedCanaryShare is what the weight (and mirror) give the canary;
	// Low and High bound the canary shares that are within noise of it.
	ExpectedCanaryShare float64         `json:"expectedCanaryShare"`
	Low                 *float64        `json:"low,omitempty"`
	High                *float64        `json:"high,omitempty"`
	Causes              []SplitCause    `json:"causes,omitempty"`
	Sources             []SourceTraffic `json:"sources,omitempty"`
}

// SplitCause explains part of a mismatch and says how to fix it.
type SplitCause struct {
	// Cause is outside-mesh, not-exported or source-off-weight.
	Cause    string  `json:"cause"`
	Requests float64 `json:"requests"`
	Says     string  `json:"says"`
	Fix      string  `json:"fix"`
}

// RequestsNeeded is how many answered requests tell a share p from noise:
// each side of the split must expect minExpectedRequests of them.
func RequestsNeeded(p float64) float64 {
	side := math.Min(p, 1-p)
	if side <= 0 {
		return minExpectedRequests
	}
	// Rounded first: 1-0.9 is not quite 0.1 in floating point.
	return math.Ceil(math.Round(minExpectedRequests/side*1e6) / 1e6)
}

// ShareInterval is the range of shares of n requests that a true share p
// gives 99 times in 100 (normal approximation of the binomial, with
// continuity correction). oneSided keeps only the lower bound.
func ShareInterval(p, n float64, oneSided bool) (low, high float64) {
	z := splitZ
	if oneSided {
		z = splitZOneSided
	}
	half := z*math.Sqrt(p*(1-p)/n) + 0.5/n
	low, high = math.Max(0, p-half), math.Min(1, p+half)
	if oneSided {
		high = 1
	}
	return low, high
}

// JudgeSplit compares the canary's observed share with the share its
// routing gives it, and explains a mismatch.
func JudgeSplit(s Split, r Routing) SplitReport {
	p, n := r.ExpectedShare(), s.Total()
	rep := SplitReport{Window: model.Duration(s.Window).String(), Requests: n, ExpectedCanaryShare: p, Sources: s.Sources}
	if n > 0 {
		rep.StableShare, rep.CanaryShare = ptr(s.Stable/n), ptr(s.Canary/n)
	}
	if r.CanaryRules && p == 0 {
		rep.Verdict = SplitMatches
		rep.Reason = "only the canary's request rules send it traffic, so any share of it is expected"
		return rep
	}
	if needed := RequestsNeeded(p); n < needed {
		rep.Verdict = SplitUnknown
		rep.Reason = fmt.Sprintf("%.0f requests reached the Service's pods in the last %s; telling a %s share from noise needs %.0f", n, rep.Window, percent1(p), needed)
		return rep
	}
	low, high := ShareInterval(p, n, r.CanaryRules)
	rep.Low, rep.High = ptr(low), ptr(high)
	q := s.Canary / n
	expected := fmt.Sprintf("%s expected (99%% interval %s to %s)", percent1(p), percent1(low), percent1(high))
	if r.CanaryRules {
		expected = fmt.Sprintf("at least %s expected with its request rules (99%% bound %s)", percent1(p), percent1(low))
	}
	if q >= low && q <= high {
		rep.Verdict = SplitMatches
		rep.Reason = fmt.Sprintf("the canary answered %s of %.0f requests in the last %s, %s", percent1(q), n, rep.Window, expected)
		return rep
	}
	rep.Verdict = SplitMismatch
	rep.Causes = explainSplit(s, r)
	rep.Reason = fmt.Sprintf("the canary answered %s of %.0f requests in the last %s, %s; likely cause: %s", percent1(q), n, rep.Window, expected, rep.Causes[0].Says)
	return rep
}

// explainSplit names what sent requests around the routing, the largest
// first; it always gives at least one cause.
func explainSplit(s Split, r Routing) []SplitCause {
	var causes []SplitCause
	if c, ok := outsideMesh(s, r); ok {
		causes = append(causes, c)
	}
	if c, ok := notExported(s, r); ok {
		causes = append(causes, c)
	}
	causes = append(causes, offWeightSources(s, r)...)
	sort.SliceStable(causes, func(i, j int) bool { return causes[i].Requests > causes[j].Requests })
	if len(causes) == 0 {
		causes = append(causes, SplitCause{Cause: "unexplained",
			Says: "no client stands out: every source's requests reach the canary at about the same share",
			Fix:  "check that every proxy has the canary's routing (kubectl canary check, istioctl proxy-status) and that no other route sends the Service's traffic elsewhere"})
	}
	return causes
}

// outsideMesh is the requests that reached the pods without a mesh proxy
// on the client's side: no routing steered them.
func outsideMesh(s Split, r Routing) (SplitCause, bool) {
	var requests, canary float64
	var names []string
	for _, src := range s.Sources {
		if !src.InMesh && src.Requests > 0 {
			requests += src.Requests
			canary += src.CanaryRequests
			names = append(names, fmt.Sprintf("%s: %.0f", src, src.Requests))
		}
	}
	if requests == 0 {
		return SplitCause{}, false
	}
	says := fmt.Sprintf("%.0f requests (%s) reached the pods without passing a mesh proxy (%s), so no VirtualService routed them and kube-proxy spread them over the pods",
		requests, percent1(requests/s.Total()), strings.Join(names, "; "))
	if r.Pods > 0 {
		says += fmt.Sprintf(" (the canary has %d of %d ready pods)", r.CanaryPods, r.Pods)
	}
	if rest := s.Total() - requests; rest > 0 {
		says += fmt.Sprintf("; without them the canary's share is %s", percent1((s.Canary-canary)/rest))
	}
	return SplitCause{Cause: "outside-mesh", Requests: requests, Says: says,
		Fix: "add the sidecar to these clients (label their namespace istio-injection=enabled and restart them), or send them through the mesh's ingress gateway"}, true
}

// notExported is the requests of mesh clients in namespaces the canary's
// VirtualServices are not exported to: their sidecars never receive it.
func notExported(s Split, r Routing) (SplitCause, bool) {
	var requests float64
	hidden := map[string]bool{}
	for _, src := range s.Sources {
		if !src.InMesh || src.Requests == 0 || visibleFromAny(r.VirtualServices, src.Namespace) {
			continue
		}
		requests += src.Requests
		hidden[src.Namespace] = true
	}
	if requests == 0 {
		return SplitCause{}, false
	}
	namespaces := sortedKeys(hidden)
	var routes []string
	for _, vs := range r.VirtualServices {
		routes = append(routes, fmt.Sprintf("VirtualService %s/%s is exported to %s", vs.Namespace, vs.Name, strings.Join(vs.ExportTo, ",")))
	}
	return SplitCause{Cause: "not-exported", Requests: requests,
		Says: fmt.Sprintf("%.0f requests came from sidecars in namespace %s, which do not receive the canary's routing (%s), so they spread by pod count",
			requests, strings.Join(namespaces, ", "), strings.Join(routes, "; ")),
		Fix: fmt.Sprintf("add %s to spec.exportTo of the VirtualService, or send these clients through a route they receive", strings.Join(namespaces, ", "))}, true
}

func visibleFromAny(routes []ExportedRoute, ns string) bool {
	if len(routes) == 0 {
		return true
	}
	for _, vs := range routes {
		if vs.visibleFrom(ns) {
			return true
		}
	}
	return false
}

// offWeightSources are mesh clients that receive the routing yet reach the
// canary at a share their own requests cannot explain by noise.
func offWeightSources(s Split, r Routing) []SplitCause {
	p := r.ExpectedShare()
	var causes []SplitCause
	for _, src := range s.Sources {
		if !src.InMesh || src.Requests < RequestsNeeded(p) || !visibleFromAny(r.VirtualServices, src.Namespace) {
			continue
		}
		low, high := ShareInterval(p, src.Requests, r.CanaryRules)
		if q := src.CanaryRequests / src.Requests; q < low || q > high {
			causes = append(causes, SplitCause{Cause: "source-off-weight", Requests: src.Requests,
				Says: fmt.Sprintf("%s sent %.0f requests, %s of them to the canary: its sidecar routes without the canary's weights", src, src.Requests, percent1(q)),
				Fix:  fmt.Sprintf("check that no Sidecar resource in namespace %s hides the Service and that its proxy is in sync (istioctl proxy-status; kubectl canary check)", src.Namespace)})
		}
	}
	return causes
}

func sortedKeys(set map[string]bool) []string {
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func ptr(v float64) *float64 { return &v }

func percent1(v float64) string { return fmt.Sprintf("%.1f%%", v*100) }

// SplitWindow is the part of the analysis window whose traffic saw the
// routing as it is now: it begins settle after the routing last changed
// (proxies receive it, the scrapes before it leave the window). It is zero,
// with the reason, when that part is shorter than minimum.
func SplitWindow(window time.Duration, changedAt, now time.Time, settle, minimum time.Duration) (time.Duration, string) {
	since := now.Sub(changedAt) - settle
	if changedAt.IsZero() || since > window {
		since = window
	}
	since = since.Truncate(time.Second)
	if since < minimum {
		return 0, fmt.Sprintf("the routing changed %s ago; the split is measured on the traffic after it, once %s of it has settled and %s more is in Prometheus",
			now.Sub(changedAt).Round(time.Second), settle, model.Duration(minimum))
	}
	return since, ""
}
