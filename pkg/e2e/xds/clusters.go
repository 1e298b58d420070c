package xds

import (
	"fmt"
	"strconv"
	"strings"
)

// ClusterName is an Istio service cluster name, "DIRECTION|PORT|SUBSET|HOST", taken apart,
// e.g. outbound|9080|v1|reviews.default.svc.cluster.local.
type ClusterName struct {
	Direction string // "outbound" or "inbound"
	Port      int
	Subset    string // empty when the cluster is the whole service
	Host      string
}

// ParseClusterName splits an Istio service cluster name. Other names (BlackHoleCluster,
// PassthroughCluster, ...) are an error.
func ParseClusterName(name string) (ClusterName, error) {
	parts := strings.Split(name, "|")
	if len(parts) != 4 {
		return ClusterName{}, fmt.Errorf("xds: %q is not an Istio service cluster name (DIRECTION|PORT|SUBSET|HOST)", name)
	}
	port, err := strconv.Atoi(parts[1])
	if err != nil {
		return ClusterName{}, fmt.Errorf("xds: cluster name %q: port %q is not a number", name, parts[1])
	}
	return ClusterName{Direction: parts[0], Port: port, Subset: parts[2], Host: parts[3]}, nil
}

// String puts the name back together.
func (c ClusterName) String() string {
	return fmt.Sprintf("%s|%d|%s|%s", c.Direction, c.Port, c.Subset, c.Host)
}

// OutboundCluster is the name Istio gives the cluster for a service port and subset, the way
// a sidecar or gateway reaches it: OutboundCluster("reviews.default.svc.cluster.local", 9080, "v1").
func OutboundCluster(host string, port int, subset string) string {
	return ClusterName{Direction: "outbound", Port: port, Subset: subset, Host: host}.String()
}

// SubsetWeights maps each subset of a route's traffic split onto its weight, e.g.
// {"v1": 90, "v2": 10}; clusters whose names are not Istio's keep their full name as key.
func (r Route) SubsetWeights() map[string]uint32 {
	out := map[string]uint32{}
	for cluster, w := range r.Weights() {
		key := cluster
		if c, err := ParseClusterName(cluster); err == nil {
			key = c.Subset
		}
		out[key] += w
	}
	return out
}
