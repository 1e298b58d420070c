// Package kube is the plugin's only door to the cluster: it reads the
// snapshot the routing core plans against and writes the plan back,
// optimistically and in the order the plan gives.
package kube

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// IstioNetworkingGroup is the API group of VirtualService and DestinationRule.
const IstioNetworkingGroup = "networking.istio.io"

// istioVersions lists the versions of networking.istio.io the plugin speaks,
// newest first; the newest one the cluster serves is used.
var istioVersions = []string{"v1", "v1beta1", "v1alpha3"}

// DefaultRequestTimeout bounds each API request when --request-timeout is
// not given: kubectl's default of 0 would let a hung API server hang us.
const DefaultRequestTimeout = "30s"

// FieldManager names the plugin in managedFields and audit logs.
const FieldManager = "kubectl-canary"

// Clients are the API clients a command needs.
type Clients struct {
	Core    kubernetes.Interface
	Dynamic dynamic.Interface
	// Config is the connection the clients were made from, for streams
	// (port forwarding); nil with fake clients.
	Config *rest.Config
	// IstioVersion is the networking.istio.io version to read and write.
	IstioVersion string
	// Discovery is kubectl's cached discovery client; nil with fake
	// clients, which then serve no Gateway API.
	Discovery discovery.DiscoveryInterface
}

// VirtualServices is the resource of VirtualServices at the chosen version.
func (c *Clients) VirtualServices() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: IstioNetworkingGroup, Version: c.IstioVersion, Resource: "virtualservices"}
}

// DestinationRules is the resource of DestinationRules at the chosen version.
func (c *Clients) DestinationRules() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: IstioNetworkingGroup, Version: c.IstioVersion, Resource: "destinationrules"}
}

// Gateways is the resource of Istio Gateways at the chosen version.
func (c *Clients) Gateways() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: IstioNetworkingGroup, Version: c.IstioVersion, Resource: "gateways"}
}

// APIVersion is the apiVersion of objects the plugin creates.
func (c *Clients) APIVersion() string { return IstioNetworkingGroup + "/" + c.IstioVersion }

// Factory builds clients lazily, so commands that need no cluster (version,
// help) never touch the kubeconfig.
type Factory interface {
	Clients() (*Clients, error)
	// Namespace is the namespace from -n or the kubeconfig context.
	Namespace() (string, error)
}

// NewFactory builds clients from kubectl's standard flags. istioVersion
// points at --istio-api-version; empty means the newest the cluster serves.
func NewFactory(flags *genericclioptions.ConfigFlags, istioVersion *string) Factory {
	return &configFlagsFactory{flags: flags, istioVersion: istioVersion}
}

type configFlagsFactory struct {
	flags        *genericclioptions.ConfigFlags
	istioVersion *string
	clients      *Clients
}

func (f *configFlagsFactory) Namespace() (string, error) {
	ns, _, err := f.flags.ToRawKubeConfigLoader().Namespace()
	return ns, err
}

// RESTConfigSource is a Factory that also gives its REST config, for
// requests that are not API calls (Prometheus through the service proxy).
type RESTConfigSource interface {
	RESTConfig() (*rest.Config, error)
}

// RESTConfig is the kubeconfig's connection, as kubectl's flags shape it.
func (f *configFlagsFactory) RESTConfig() (*rest.Config, error) {
	config, err := f.flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	config.UserAgent = "kubectl-canary"
	// client-go's default rate limit, 5 requests a second after a burst of
	// 10, would hold a command's writes 200 ms apart once its reads have
	// spent the burst: istiod would then push each write on its own.
	if config.QPS == 0 {
		config.QPS, config.Burst = 50, 100
	}
	return config, nil
}

func (f *configFlagsFactory) Clients() (*Clients, error) {
	if f.clients != nil {
		return f.clients, nil
	}
	config, err := f.RESTConfig()
	if err != nil {
		return nil, err
	}
	core, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	var forced string
	if f.istioVersion != nil {
		forced = *f.istioVersion
	}
	disco, err := f.flags.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	version, err := servedIstioVersion(disco, forced)
	if err != nil {
		return nil, err
	}
	f.clients = &Clients{Core: core, Dynamic: dyn, Config: config, IstioVersion: version, Discovery: disco}
	return f.clients, nil
}

// servedIstioVersion picks the newest networking.istio.io version that
// serves both VirtualService and DestinationRule, or checks that the forced
// one is served. Only that group's discovery documents are read, from
// kubectl's discovery cache when it is warm (no request): a RESTMapper would
// parse every group's, which costs each command tens of milliseconds.
func servedIstioVersion(disco discovery.DiscoveryInterface, forced string) (string, error) {
	served, err := istioKindsServed(disco)
	if cached, ok := disco.(discovery.CachedDiscoveryInterface); ok && !cached.Fresh() && (err != nil || !servesBoth(served, forced)) {
		// What the disk cache says may predate Istio's install (or another
		// cluster's on the same address): ask the API server, as kubectl's
		// RESTMapper does when a kind is missing from a stale cache.
		cached.Invalidate()
		served, err = istioKindsServed(disco)
	}
	if err != nil {
		return "", fmt.Errorf("cannot discover the Istio API of the cluster: %w", err)
	}
	if forced != "" {
		if served[forced] == 2 {
			return forced, nil
		}
		var have []string
		for _, v := range istioVersions {
			if served[v] == 2 {
				have = append(have, v)
			}
		}
		return "", fmt.Errorf("--istio-api-version %s: the cluster does not serve VirtualService and DestinationRule at %s/%s (it serves %v); pick one of those or leave the flag out", forced, IstioNetworkingGroup, forced, have)
	}
	for _, v := range istioVersions {
		if served[v] == 2 {
			return v, nil
		}
	}
	return "", fmt.Errorf("the cluster does not serve VirtualService and DestinationRule of %s (tried %v); install Istio, or its CRDs, before running a canary", IstioNetworkingGroup, istioVersions)
}

// istioKindsServed counts, for each networking.istio.io version the cluster
// serves, how many of VirtualService and DestinationRule it serves there.
func istioKindsServed(disco discovery.DiscoveryInterface) (map[string]int, error) {
	groups, err := disco.ServerGroups()
	if err != nil {
		return nil, err
	}
	served := map[string]int{}
	for _, g := range groups.Groups {
		if g.Name != IstioNetworkingGroup {
			continue
		}
		for _, v := range g.Versions {
			list, err := disco.ServerResourcesForGroupVersion(v.GroupVersion)
			if err != nil {
				return nil, err
			}
			for _, r := range list.APIResources {
				// Subresources (virtualservices/status) carry the kind too.
				if !strings.Contains(r.Name, "/") && (r.Kind == "VirtualService" || r.Kind == "DestinationRule") {
					served[v.Version]++
				}
			}
		}
	}
	return served, nil
}

// servesBoth says whether VirtualService and DestinationRule are both
// served at the forced version, or at any version when none is forced.
func servesBoth(served map[string]int, forced string) bool {
	if forced != "" {
		return served[forced] == 2
	}
	for _, n := range served {
		if n == 2 {
			return true
		}
	}
	return false
}
