package canary

import (
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
