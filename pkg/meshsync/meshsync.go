// Package meshsync judges istiod's sync status (/debug/syncz): whether the
// proxies that call a Service have acknowledged a routing change. It is pure:
// the command fetches the status, this package reads it.
//
// What istiod tells: for every connected proxy and every xDS type, the nonce
// of the last response sent and of the last one the proxy acknowledged. A
// nonce starts with the push version of the configuration it carries,
// "<RFC 3339 time>/<counter>", followed by a 36-character UUID; the counter
// grows with every full push, and a change to a VirtualService or
// DestinationRule always causes one. So a proxy has the change once it has
// acknowledged a push newer than the newest push istiod had sent anyone just
// before the change was written, and has nothing sent but unacknowledged.
//
// The judgement can be early in one case: an unrelated full push that began
// between that reading and istiod receiving the change counts as newer
// although it lacks the change. The command reads the baseline right before
// the write, and again right after it while istiod's debounce keeps the
// change's own push from having gone out, to keep that window small.
package meshsync

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Proxy is one entry of istiod's /debug/syncz.
type Proxy struct {
	ID            string `json:"proxy"`
	Type          string `json:"proxy_type"`
	ClusterSent   string `json:"cluster_sent"`
	ClusterAcked  string `json:"cluster_acked"`
	ListenerSent  string `json:"listener_sent"`
	ListenerAcked string `json:"listener_acked"`
	RouteSent     string `json:"route_sent"`
	RouteAcked    string `json:"route_acked"`
	EndpointSent  string `json:"endpoint_sent"`
	EndpointAcked string `json:"endpoint_acked"`
	// Resources has every type the proxy watches, by type URL (istiod 1.20
	// and later); the four pairs above are the older, partial view.
	Resources map[string]Resource `json:"resources"`
}

// Resource is what istiod sent and the proxy acknowledged for one type.
type Resource struct {
	Sent  string `json:"sent"`
	Acked string `json:"acked"`
	// LastError is why the proxy rejected (NACKed) the last response.
	LastError string `json:"lastError"`
}

// Parse reads the body of /debug/syncz.
func Parse(body []byte) ([]Proxy, error) {
	var proxies []Proxy
	if err := json.Unmarshal(body, &proxies); err != nil {
		return nil, fmt.Errorf("istiod's sync status is not the JSON list /debug/syncz returns: %w", err)
	}
	return proxies, nil
}

// types lists what was sent and acknowledged, per type.
func (p Proxy) types() map[string]Resource {
	if len(p.Resources) > 0 {
		return p.Resources
	}
	out := map[string]Resource{}
	for name, r := range map[string]Resource{
		"cluster":  {Sent: p.ClusterSent, Acked: p.ClusterAcked},
		"listener": {Sent: p.ListenerSent, Acked: p.ListenerAcked},
		"route":    {Sent: p.RouteSent, Acked: p.RouteAcked},
		"endpoint": {Sent: p.EndpointSent, Acked: p.EndpointAcked},
	} {
		if r.Sent != "" || r.Acked != "" {
			out[name] = r
		}
	}
	return out
}

// Namespace is the namespace of the proxy's pod. istiod names a proxy
// POD.NAMESPACE (a namespace has no dots, a pod name may); a full node ID
// TYPE~IP~POD.NAMESPACE~DOMAIN is read the same way.
func (p Proxy) Namespace() string {
	id := p.ID
	if parts := strings.Split(id, "~"); len(parts) == 4 {
		id = parts[2]
	}
	dot := strings.LastIndexByte(id, '.')
	if dot < 0 {
		return ""
	}
	return id[dot+1:]
}

// kind is the proxy's node type: sidecar, router, waypoint or ztunnel
// (from a full node ID when istiod does not say).
func (p Proxy) kind() string {
	if p.Type != "" {
		return p.Type
	}
	if kind, _, found := strings.Cut(p.ID, "~"); found {
		return kind
	}
	return ""
}

// uuidLength is the length of the UUID istiod appends to a push version to
// make a nonce.
const uuidLength = 36

// PushCounter reads the push counter of a nonce.
func PushCounter(nonce string) (uint64, error) {
	slash := strings.LastIndexByte(nonce, '/')
	if slash < 0 || len(nonce)-slash-1 <= uuidLength {
		return 0, fmt.Errorf("nonce %q is not a push version followed by a UUID", nonce)
	}
	digits := nonce[slash+1 : len(nonce)-uuidLength]
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("nonce %q is not a push version followed by a UUID", nonce)
	}
	return n, nil
}

// LatestPush is the newest push istiod has sent to any proxy: every push
// after the baseline is newer than this.
func LatestPush(proxies []Proxy) (uint64, error) {
	var latest uint64
	for _, p := range proxies {
		for _, r := range p.types() {
			if r.Sent == "" {
				continue
			}
			n, err := PushCounter(r.Sent)
			if err != nil {
				return 0, unreadable(p, err)
			}
			latest = max(latest, n)
		}
	}
	return latest, nil
}

func unreadable(p Proxy, err error) error {
	return fmt.Errorf("cannot read istiod's push versions for proxy %s (%v); this istiod reports its sync status in a form the plugin does not know, so run without --wait", p.ID, err)
}

// Audience is who calls a Service through the routing objects: the proxies
// whose configuration a change to them reaches.
type Audience struct {
	// Sidecars in every namespace, or only in Namespaces.
	AllNamespaces bool
	Namespaces    map[string]bool
	// Gateways: a VirtualService is bound to an ingress gateway.
	Gateways bool
}

// AudienceOf reads the audience from the VirtualServices that route the
// Service: those bound to "mesh" (or to nothing) reach the sidecars of the
// namespaces they are exported to, those bound to a gateway reach the
// gateways.
func AudienceOf(virtualServices []*unstructured.Unstructured) Audience {
	a := Audience{Namespaces: map[string]bool{}}
	for _, vs := range virtualServices {
		spec, _ := vs.Object["spec"].(map[string]interface{})
		gateways := stringList(spec["gateways"])
		mesh := len(gateways) == 0
		for _, g := range gateways {
			if g == "mesh" {
				mesh = true
			} else {
				a.Gateways = true
			}
		}
		if !mesh {
			continue
		}
		exportTo := stringList(spec["exportTo"])
		if len(exportTo) == 0 {
			a.AllNamespaces = true
		}
		for _, e := range exportTo {
			switch e {
			case "*":
				a.AllNamespaces = true
			case ".":
				a.Namespaces[vs.GetNamespace()] = true
			default:
				a.Namespaces[e] = true
			}
		}
	}
	return a
}

// AddGatewayAPIRoutes adds the audience of Gateway API routes: a
// parentRef to a Service in the route's own namespace (a producer route)
// reaches the sidecars of every namespace, one to a Service elsewhere (a
// consumer route) those of the route's namespace, any other parentRef (a
// Gateway) the gateways.
func (a *Audience) AddGatewayAPIRoutes(routes []*unstructured.Unstructured) {
	for _, route := range routes {
		spec, _ := route.Object["spec"].(map[string]interface{})
		parents, _ := spec["parentRefs"].([]interface{})
		for _, p := range parents {
			ref, _ := p.(map[string]interface{})
			if kind, _ := ref["kind"].(string); kind != "Service" {
				a.Gateways = true
				continue
			}
			if ns, _ := ref["namespace"].(string); ns == "" || ns == route.GetNamespace() {
				a.AllNamespaces = true
			} else {
				a.Namespaces[route.GetNamespace()] = true
			}
		}
	}
}

func stringList(v interface{}) []string {
	list, _ := v.([]interface{})
	out := make([]string, 0, len(list))
	for _, item := range list {
		if s, ok := item.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Includes reports whether the proxy is one of the audience. ztunnel never
// applies VirtualServices; a waypoint does, for its namespace, like a
// sidecar, and so is a proxy of no stated type counted (rather than
// silently left out).
func (a Audience) Includes(p Proxy) bool {
	switch p.kind() {
	case "router":
		return a.Gateways
	case "ztunnel":
		return false
	}
	return a.AllNamespaces || a.Namespaces[p.Namespace()]
}

// Namespace is the one namespace whose sidecars make up the audience, or ""
// when it takes more (istiod can then be asked about that namespace alone).
func (a Audience) Namespace() string {
	if a.AllNamespaces || a.Gateways || len(a.Namespaces) != 1 {
		return ""
	}
	for ns := range a.Namespaces {
		return ns
	}
	return ""
}

// Verdict says which proxies of the audience have the change.
type Verdict struct {
	InSync  []string
	Pending []Pending
}

// Pending is a proxy that does not have the change yet, and why.
type Pending struct {
	ID     string
	Reason string
}

// Done reports whether every proxy of the audience has the change.
func (v Verdict) Done() bool { return len(v.Pending) == 0 }

// Judge tells, for every proxy of the audience, whether it has acknowledged
// everything istiod sent it and, when newerThan is given, a push newer than
// that baseline: in its routes, when it takes routes at all, since istiod
// sends a push's clusters before its routes and a proxy may acknowledge the
// first before the second is even sent.
func Judge(proxies []Proxy, audience Audience, newerThan *uint64) (Verdict, error) {
	var v Verdict
	for _, p := range proxies {
		if !audience.Includes(p) {
			continue
		}
		reason, err := pendingReason(p, newerThan)
		if err != nil {
			return Verdict{}, err
		}
		if reason == "" {
			v.InSync = append(v.InSync, p.ID)
		} else {
			v.Pending = append(v.Pending, Pending{ID: p.ID, Reason: reason})
		}
	}
	sort.Strings(v.InSync)
	sort.Slice(v.Pending, func(i, j int) bool { return v.Pending[i].ID < v.Pending[j].ID })
	return v, nil
}

// pendingReason is empty when the proxy is in sync.
func pendingReason(p Proxy, newerThan *uint64) (string, error) {
	types := p.types()
	names := make([]string, 0, len(types))
	for name := range types {
		names = append(names, name)
	}
	sort.Strings(names)
	var newest, routes uint64
	var unacked []string
	for _, name := range names {
		r := types[name]
		if r.Sent == "" {
			continue
		}
		if r.Acked != r.Sent && r.LastError != "" {
			return fmt.Sprintf("rejected the %s istiod sent it: %s", shortType(name), r.LastError), nil
		}
		if r.Acked != r.Sent {
			unacked = append(unacked, shortType(name))
			continue
		}
		n, err := PushCounter(r.Acked)
		if err != nil {
			return "", unreadable(p, err)
		}
		newest = max(newest, n)
		if name == routeType || name == "route" {
			routes = n
		}
	}
	if routes > 0 {
		newest = routes
	}
	switch {
	case len(unacked) > 0:
		return fmt.Sprintf("has not acknowledged the %s istiod sent it", strings.Join(unacked, ", ")), nil
	case newest == 0:
		return "has received no configuration yet", nil
	case newerThan != nil && newest <= *newerThan:
		return fmt.Sprintf("has push %d, not yet one after the change (newer than %d)", newest, *newerThan), nil
	}
	return "", nil
}

// routeType is the type URL of Envoy's route configurations.
const routeType = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

// shortType turns type.googleapis.com/envoy.config.route.v3.RouteConfiguration
// into RouteConfiguration.
func shortType(typeURL string) string {
	if i := strings.LastIndexByte(typeURL, '.'); i >= 0 {
		return typeURL[i+1:]
	}
	return typeURL
}
