package xds

import (
	"fmt"
	"sort"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// RouteConfig is the part of an Envoy RouteConfiguration that a canary release decides: which
// requests go where. Plain values, so tests can compare them with testify.
type RouteConfig struct {
	Name         string
	VirtualHosts []VirtualHost
}

// VirtualHost is one virtual host of a route configuration, with its routes in the order Envoy
// tries them.
type VirtualHost struct {
	Name    string
	Domains []string
	Routes  []Route
}

// Route is one route: what it matches and what it does with a matching request.
type Route struct {
	Name  string
	Match Match

	// Action says what the route does. Only ActionRoute forwards to clusters.
	Action Action
	// Cluster is set when the route forwards everything to a single cluster.
	Cluster string
	// WeightedClusters is set when the route splits traffic, in Envoy's order.
	WeightedClusters []WeightedCluster
	// Mirrors are the clusters that get a copy of the traffic.
	Mirrors []Mirror
	// DirectResponseStatus is the HTTP status of an ActionDirectResponse route.
	DirectResponseStatus uint32
}

// Action is the kind of thing a route does with a request.
type Action string

const (
	ActionRoute          Action = "route"
	ActionRedirect       Action = "redirect"
	ActionDirectResponse Action = "direct_response"
	// ActionOther covers filter and non-forwarding actions, which Istio does not generate for
	// VirtualService routes.
	ActionOther Action = "other"
)

// Match is a route's match. Exactly one of Prefix, PathSeparatedPrefix, Path and Regex is set
// (Istio sends Prefix "/" for a route without a URI match).
type Match struct {
	Prefix              string
	PathSeparatedPrefix string
	Path                string
	Regex               string
	// CaseSensitive mirrors RouteMatch.case_sensitive (Envoy's default when unset is true).
	CaseSensitive bool
	Headers       []HeaderMatch
	// QueryParams are sorted by name: Istio builds them from a map, so their order on the wire
	// is random while their meaning (all must match) is not.
	QueryParams []QueryParamMatch
}

// MatchKind names how a header or query parameter value is compared.
type MatchKind string

const (
	MatchExact    MatchKind = "exact"
	MatchPrefix   MatchKind = "prefix"
	MatchSuffix   MatchKind = "suffix"
	MatchContains MatchKind = "contains"
	MatchRegex    MatchKind = "regex"
	// MatchPresent matches when the header or parameter exists, whatever its value.
	MatchPresent MatchKind = "present"
	// MatchOther is a matcher this package does not decode (range, custom).
	MatchOther MatchKind = "other"
)

// HeaderMatch is one header condition of a route.
type HeaderMatch struct {
	Name       string
	Kind       MatchKind
	Value      string
	IgnoreCase bool
	// Invert is set for Istio's withoutHeaders.
	Invert bool
}

// QueryParamMatch is one query parameter condition of a route.
type QueryParamMatch struct {
	Name       string
	Kind       MatchKind
	Value      string
	IgnoreCase bool
}

// WeightedCluster is one destination of a traffic split.
type WeightedCluster struct {
	Name   string
	Weight uint32
}

// Mirror is a request mirror policy: a copy of Percent percent of the requests goes to Cluster.
type Mirror struct {
	Cluster string
	Percent float64
}

// VirtualHost returns the virtual host with the given name (Istio names sidecar hosts
// "HOST:PORT", e.g. "reviews.default.svc.cluster.local:9080").
func (rc RouteConfig) VirtualHost(name string) (VirtualHost, bool) {
	for _, vh := range rc.VirtualHosts {
		if vh.Name == name {
			return vh, true
		}
	}
	return VirtualHost{}, false
}

// VirtualHostForDomain returns the first virtual host that lists domain exactly.
func (rc RouteConfig) VirtualHostForDomain(domain string) (VirtualHost, bool) {
	for _, vh := range rc.VirtualHosts {
		for _, d := range vh.Domains {
			if d == domain {
				return vh, true
			}
		}
	}
	return VirtualHost{}, false
}

// Weights maps each cluster the route sends traffic to onto its weight; a single-cluster
// route gives that cluster 100. Handy when a test does not care about Envoy's order.
func (r Route) Weights() map[string]uint32 {
	if r.Cluster != "" {
		return map[string]uint32{r.Cluster: 100}
	}
	out := make(map[string]uint32, len(r.WeightedClusters))
	for _, wc := range r.WeightedClusters {
		out[wc.Name] += wc.Weight
	}
	return out
}

// String renders the configuration compactly, one line per route, for error messages.
func (rc RouteConfig) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "route config %q", rc.Name)
	for _, vh := range rc.VirtualHosts {
		fmt.Fprintf(&b, "\n  virtual host %s %v", vh.Name, vh.Domains)
		for _, r := range vh.Routes {
			fmt.Fprintf(&b, "\n    %s", r)
		}
	}
	return b.String()
}

// String renders a route on one line: name, match, action.
func (r Route) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "route %q %s", r.Name, r.Match)
	switch {
	case r.Action == ActionDirectResponse:
		fmt.Fprintf(&b, " -> direct response %d", r.DirectResponseStatus)
	case r.Action != ActionRoute:
		fmt.Fprintf(&b, " -> %s", r.Action)
	case r.Cluster != "":
		fmt.Fprintf(&b, " -> %s", r.Cluster)
	default:
		parts := make([]string, len(r.WeightedClusters))
		for i, wc := range r.WeightedClusters {
			parts[i] = fmt.Sprintf("%s=%d", wc.Name, wc.Weight)
		}
		fmt.Fprintf(&b, " -> [%s]", strings.Join(parts, " "))
	}
	for _, m := range r.Mirrors {
		fmt.Fprintf(&b, " mirror %s %g%%", m.Cluster, m.Percent)
	}
	return b.String()
}

// String renders a match as "prefix=/ header[end-user exact jason]".
func (m Match) String() string {
	var parts []string
	switch {
	case m.Path != "":
		parts = append(parts, "path="+m.Path)
	case m.PathSeparatedPrefix != "":
		parts = append(parts, "path-prefix="+m.PathSeparatedPrefix)
	case m.Regex != "":
		parts = append(parts, "regex="+m.Regex)
	default:
		parts = append(parts, "prefix="+m.Prefix)
	}
	for _, h := range m.Headers {
		not := ""
		if h.Invert {
			not = "!"
		}
		parts = append(parts, fmt.Sprintf("%sheader[%s %s %s]", not, h.Name, h.Kind, h.Value))
	}
	for _, q := range m.QueryParams {
		parts = append(parts, fmt.Sprintf("query[%s %s %s]", q.Name, q.Kind, q.Value))
	}
	return strings.Join(parts, " ")
}

// ConvertRouteConfig turns Envoy's RouteConfiguration into the plain form tests assert on.
func ConvertRouteConfig(in *routev3.RouteConfiguration) RouteConfig {
	out := RouteConfig{Name: in.GetName()}
	for _, vh := range in.GetVirtualHosts() {
		v := VirtualHost{Name: vh.GetName(), Domains: append([]string(nil), vh.GetDomains()...)}
		for _, r := range vh.GetRoutes() {
			v.Routes = append(v.Routes, convertRoute(r))
		}
		out.VirtualHosts = append(out.VirtualHosts, v)
	}
	return out
}

func convertRoute(in *routev3.Route) Route {
	out := Route{Name: in.GetName(), Match: convertMatch(in.GetMatch())}
	switch a := in.GetAction().(type) {
	case *routev3.Route_Route:
		out.Action = ActionRoute
		switch cs := a.Route.GetClusterSpecifier().(type) {
		case *routev3.RouteAction_Cluster:
			out.Cluster = cs.Cluster
		case *routev3.RouteAction_WeightedClusters:
			for _, c := range cs.WeightedClusters.GetClusters() {
				out.WeightedClusters = append(out.WeightedClusters,
					WeightedCluster{Name: c.GetName(), Weight: c.GetWeight().GetValue()})
			}
		}
		for _, m := range a.Route.GetRequestMirrorPolicies() {
			out.Mirrors = append(out.Mirrors, Mirror{Cluster: m.GetCluster(), Percent: mirrorPercent(m)})
		}
	case *routev3.Route_Redirect:
		out.Action = ActionRedirect
	case *routev3.Route_DirectResponse:
		out.Action = ActionDirectResponse
		out.DirectResponseStatus = a.DirectResponse.GetStatus()
	default:
		out.Action = ActionOther
	}
	return out
}

func convertMatch(in *routev3.RouteMatch) Match {
	out := Match{
		Prefix:              in.GetPrefix(),
		PathSeparatedPrefix: in.GetPathSeparatedPrefix(),
		Path:                in.GetPath(),
		Regex:               in.GetSafeRegex().GetRegex(),
		CaseSensitive:       in.GetCaseSensitive() == nil || in.GetCaseSensitive().GetValue(),
	}
	for _, h := range in.GetHeaders() {
		hm := HeaderMatch{Name: h.GetName(), Invert: h.GetInvertMatch()}
		switch s := h.GetHeaderMatchSpecifier().(type) {
		case *routev3.HeaderMatcher_StringMatch:
			hm.Kind, hm.Value, hm.IgnoreCase = convertStringMatch(s.StringMatch)
		case *routev3.HeaderMatcher_PresentMatch:
			hm.Kind = MatchPresent
			// present_match: false means "absent", which Envoy expresses as an inverted presence.
			hm.Invert = hm.Invert != !s.PresentMatch
		// The deprecated direct fields; Istio no longer sends them, other control planes may.
		case *routev3.HeaderMatcher_ExactMatch:
			hm.Kind, hm.Value = MatchExact, s.ExactMatch
		case *routev3.HeaderMatcher_PrefixMatch:
			hm.Kind, hm.Value = MatchPrefix, s.PrefixMatch
		case *routev3.HeaderMatcher_SuffixMatch:
			hm.Kind, hm.Value = MatchSuffix, s.SuffixMatch
		case *routev3.HeaderMatcher_ContainsMatch:
			hm.Kind, hm.Value = MatchContains, s.ContainsMatch
		case *routev3.HeaderMatcher_SafeRegexMatch:
			hm.Kind, hm.Value = MatchRegex, s.SafeRegexMatch.GetRegex()
		default:
			hm.Kind = MatchOther
		}
		out.Headers = append(out.Headers, hm)
	}
	for _, q := range in.GetQueryParameters() {
		qm := QueryParamMatch{Name: q.GetName()}
		switch s := q.GetQueryParameterMatchSpecifier().(type) {
		case *routev3.QueryParameterMatcher_StringMatch:
			qm.Kind, qm.Value, qm.IgnoreCase = convertStringMatch(s.StringMatch)
		case *routev3.QueryParameterMatcher_PresentMatch:
			qm.Kind = MatchPresent
		default:
			qm.Kind = MatchOther
		}
		out.QueryParams = append(out.QueryParams, qm)
	}
	sort.SliceStable(out.QueryParams, func(i, j int) bool { return out.QueryParams[i].Name < out.QueryParams[j].Name })
	return out
}

func convertStringMatch(in *matcherv3.StringMatcher) (MatchKind, string, bool) {
	ic := in.GetIgnoreCase()
	switch p := in.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return MatchExact, p.Exact, ic
	case *matcherv3.StringMatcher_Prefix:
		return MatchPrefix, p.Prefix, ic
	case *matcherv3.StringMatcher_Suffix:
		return MatchSuffix, p.Suffix, ic
	case *matcherv3.StringMatcher_Contains:
		return MatchContains, p.Contains, ic
	case *matcherv3.StringMatcher_SafeRegex:
		return MatchRegex, p.SafeRegex.GetRegex(), ic
	default:
		return MatchOther, "", ic
	}
}

// mirrorPercent turns a mirror's runtime fraction into a percentage; Envoy mirrors everything
// when the fraction is unset.
func mirrorPercent(m *routev3.RouteAction_RequestMirrorPolicy) float64 {
	f := m.GetRuntimeFraction().GetDefaultValue()
	if f == nil {
		return 100
	}
	var denominator float64
	switch f.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		denominator = 100
	case typev3.FractionalPercent_TEN_THOUSAND:
		denominator = 10_000
	case typev3.FractionalPercent_MILLION:
		denominator = 1_000_000
	}
	return float64(f.GetNumerator()) * 100 / denominator
}
