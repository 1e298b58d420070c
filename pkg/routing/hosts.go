package routing

import (
	"strings"
)

// DefaultClusterDomain is the DNS suffix Kubernetes uses unless told otherwise.
const DefaultClusterDomain = "cluster.local"

// hostRefersToService reports whether host, written in an object that lives
// in objectNamespace, names the Service svc/svcNamespace. Istio resolves short
// names relative to the namespace of the object that holds them, so "reviews"
// in namespace "bookinfo" is reviews.bookinfo. Wildcards never match: a route
// to "*.bookinfo.svc.cluster.local" is not a route to one Service.
func hostRefersToService(host, objectNamespace, svc, svcNamespace, clusterDomain string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" || strings.Contains(host, "*") {
		return false
	}
	if clusterDomain == "" {
		clusterDomain = DefaultClusterDomain
	}
	switch host {
	case svc:
		return objectNamespace == svcNamespace
	case svc + "." + svcNamespace,
		svc + "." + svcNamespace + ".svc",
		svc + "." + svcNamespace + ".svc." + clusterDomain:
		return true
	}
	return false
}

// ServiceFQDN is the host name the plugin writes into objects it creates.
func ServiceFQDN(svc, namespace, clusterDomain string) string {
	if clusterDomain == "" {
		clusterDomain = DefaultClusterDomain
	}
	return svc + "." + namespace + ".svc." + clusterDomain
}

// serviceRef names the Service a canary runs on.
type serviceRef struct {
	name, namespace, clusterDomain string
}

func (s serviceRef) isHost(host, objectNamespace string) bool {
	return hostRefersToService(host, objectNamespace, s.name, s.namespace, s.clusterDomain)
}

func (s serviceRef) fqdn() string { return ServiceFQDN(s.name, s.namespace, s.clusterDomain) }
