package kube

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func mapperServing(versions ...string) meta.RESTMapper {
	var gvs []schema.GroupVersion
	for _, v := range versions {
		gvs = append(gvs, schema.GroupVersion{Group: IstioNetworkingGroup, Version: v})
	}
	m := meta.NewDefaultRESTMapper(gvs)
	for _, gv := range gvs {
		m.Add(gv.WithKind("VirtualService"), meta.RESTScopeNamespace)
		m.Add(gv.WithKind("DestinationRule"), meta.RESTScopeNamespace)
	}
	return m
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
		got, err := servedIstioVersion(mapperServing(c.served...), "")
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "served %v", c.served)
	}
}

func TestClusterWithoutIstioIsAClearError(t *testing.T) {
	_, err := servedIstioVersion(mapperServing(), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the cluster does not serve VirtualService and DestinationRule of networking.istio.io")
	assert.Contains(t, err.Error(), "install Istio")
}

func TestForcedIstioVersionMustBeServed(t *testing.T) {
	got, err := servedIstioVersion(mapperServing("v1alpha3", "v1beta1", "v1"), "v1beta1")
	require.NoError(t, err)
	assert.Equal(t, "v1beta1", got)
	_, err = servedIstioVersion(mapperServing("v1alpha3", "v1beta1"), "v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--istio-api-version v1: the cluster does not serve VirtualService and DestinationRule at networking.istio.io/v1 (it serves [v1beta1 v1alpha3])")
}
