package kube

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	fakediscovery "k8s.io/client-go/discovery/fake"
	clienttesting "k8s.io/client-go/testing"
)

// discoveryServing is discovery of a cluster that serves VirtualService and
// DestinationRule (and their status) at the given networking.istio.io
// versions, and apps/v1 besides.
func discoveryServing(versions ...string) discovery.DiscoveryInterface {
	fake := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}
	fake.Resources = append(fake.Resources, &metav1.APIResourceList{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{{Name: "deployments", Kind: "Deployment"}}})
	for _, v := range versions {
		fake.Resources = append(fake.Resources, &metav1.APIResourceList{GroupVersion: IstioNetworkingGroup + "/" + v, APIResources: []metav1.APIResource{
			{Name: "virtualservices", Kind: "VirtualService"}, {Name: "virtualservices/status", Kind: "VirtualService"},
			{Name: "destinationrules", Kind: "DestinationRule"}, {Name: "destinationrules/status", Kind: "DestinationRule"},
		}})
	}
	return fake
}

func TestNewestServedIstioVersionIsUsed(t *testing.T) {
	cases := []struct {
		served []string
		want   string
	}{
		{[]string{"v1alpha3", "v1beta1", "v1"}, "v1"},
		{[]string{"v1alpha3", "v1beta1"}, "v1beta1"},
		{[]string{"v1alpha3"}, "v1alpha3"},
	}
	for _, c := range cases {
		got, err := servedIstioVersion(discoveryServing(c.served...), "")
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "served %v", c.served)
	}
}

func TestClusterWithoutIstioIsAClearError(t *testing.T) {
	_, err := servedIstioVersion(discoveryServing(), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the cluster does not serve VirtualService and DestinationRule of networking.istio.io")
	assert.Contains(t, err.Error(), "install Istio")
}

func TestForcedIstioVersionMustBeServed(t *testing.T) {
	got, err := servedIstioVersion(discoveryServing("v1alpha3", "v1beta1", "v1"), "v1beta1")
	require.NoError(t, err)
	assert.Equal(t, "v1beta1", got)
	_, err = servedIstioVersion(discoveryServing("v1alpha3", "v1beta1"), "v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--istio-api-version v1: the cluster does not serve VirtualService and DestinationRule at networking.istio.io/v1 (it serves [v1beta1 v1alpha3])")
}

// staleCache is a discovery cache read from disk (not fresh) that predates
// Istio's install: the API server, asked again, serves it.
type staleCache struct {
	discovery.DiscoveryInterface
	now         discovery.DiscoveryInterface
	invalidated bool
}

func (s *staleCache) Fresh() bool { return s.invalidated }
func (s *staleCache) Invalidate() {
	s.invalidated = true
	s.DiscoveryInterface = s.now
}

func TestStaleDiscoveryCacheIsAskedAgain(t *testing.T) {
	cache := &staleCache{DiscoveryInterface: discoveryServing(), now: discoveryServing("v1beta1", "v1")}
	got, err := servedIstioVersion(cache, "")
	require.NoError(t, err)
	assert.Equal(t, "v1", got)
	assert.True(t, cache.invalidated)

	fresh := &staleCache{DiscoveryInterface: discoveryServing("v1"), now: discoveryServing()}
	_, err = servedIstioVersion(fresh, "")
	require.NoError(t, err)
	assert.False(t, fresh.invalidated, "a cache that has the kinds is not asked again")
}
