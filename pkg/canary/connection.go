package canary

import (
	"fmt"
	"slices"
	"sort"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"

	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
)

// DefaultRequestTimeout bounds each API request when --request-timeout is
// not given: kubectl's default of 0 would let a hung API server hang us.
const DefaultRequestTimeout = kube.DefaultRequestTimeout

// Connection is how a command reaches its cluster. It connects lazily, so
// commands that need no cluster (version, help) never read the kubeconfig.
type Connection struct {
	factory kube.Factory
}

// Connect reaches the cluster kubectl's standard flags name. istioAPIVersion
// points at the version to use; empty means the newest the cluster serves.
func Connect(flags *genericclioptions.ConfigFlags, istioAPIVersion *string) *Connection {
	return &Connection{factory: kube.NewFactory(flags, istioAPIVersion)}
}

// ConnectWith reaches a cluster through factory (tests give fake clients).
func ConnectWith(factory kube.Factory) *Connection {
	return &Connection{factory: factory}
}

// Namespace is the namespace from -n or the kubeconfig context.
func (c *Connection) Namespace() (string, error) { return c.factory.Namespace() }

// Cluster is the live cluster, connected on first use.
func (c *Connection) Cluster() (*Cluster, error) {
	clients, err := c.factory.Clients()
	if err != nil {
		return nil, err
	}
	return &Cluster{clients: clients}, nil
}

// restConfig is the kubeconfig's connection, for requests that are not API
// calls (Prometheus through the API server's service proxy); ok is false
// when the factory has no kubeconfig (tests).
func (c *Connection) restConfig() (config *rest.Config, ok bool, err error) {
	source, ok := c.factory.(kube.RESTConfigSource)
	if !ok {
		return nil, false, nil
	}
	config, err = source.RESTConfig()
	return config, true, err
}

// ContextConnection is the connection to one cluster of several, named by
// its kubeconfig context.
type ContextConnection struct {
	Context string
	*Connection
}

// ConnectContexts reaches the clusters of the given kubeconfig contexts
// (every context of the kubeconfig when all), each as kubectl --context
// would, with the other flags as given. Nothing is contacted yet.
func ConnectContexts(flags *genericclioptions.ConfigFlags, contexts []string, all bool, istioAPIVersion *string) ([]ContextConnection, error) {
	raw, err := flags.ToRawKubeConfigLoader().RawConfig()
	if err != nil {
		return nil, fmt.Errorf("cannot read the kubeconfig: %w", err)
	}
	if all {
		contexts = nil
		for name := range raw.Contexts {
			contexts = append(contexts, name)
		}
		sort.Strings(contexts)
	}
	var out []ContextConnection
	for _, name := range contexts {
		if _, ok := raw.Contexts[name]; !ok {
			return nil, fmt.Errorf("context %q is not in the kubeconfig (kubectl config get-contexts lists them); nothing was changed", name)
		}
		if slices.ContainsFunc(out, func(c ContextConnection) bool { return c.Context == name }) {
			continue
		}
		out = append(out, ContextConnection{Context: name, Connection: Connect(contextFlags(flags, name), istioAPIVersion)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the kubeconfig has no contexts to reach")
	}
	return out, nil
}

// contextFlags are kubectl's flags with --context set. The flags that pick
// a cluster or user by themselves (--cluster, --user, --server) are left
// out: they would send every context to the same place.
func contextFlags(flags *genericclioptions.ConfigFlags, context string) *genericclioptions.ConfigFlags {
	out := genericclioptions.NewConfigFlags(true)
	out.KubeConfig, out.CacheDir, out.Namespace, out.Timeout = flags.KubeConfig, flags.CacheDir, flags.Namespace, flags.Timeout
	out.Impersonate, out.ImpersonateUID, out.ImpersonateGroup = flags.Impersonate, flags.ImpersonateUID, flags.ImpersonateGroup
	out.Context = &context
	return out
}
