package canary

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fleetOf(stores map[string]*memoryStore) *Fleet {
	f := &Fleet{}
	for _, name := range []string{"east", "west", "north"} {
		if s, ok := stores[name]; ok {
			f.Members = append(f.Members, Member{Context: name, Engine: &Engine{Store: s}})
		}
	}
	return f
}

func wrote(s *memoryStore) bool {
	return slices.ContainsFunc(s.calls, func(c string) bool { return len(c) > 6 && c[:6] == "write " })
}

func TestFleetWritesEveryClusterOnceAllAreReady(t *testing.T) {
	stores := map[string]*memoryStore{"east": newMemoryStore(t, "no-istio"), "west": newMemoryStore(t, "no-istio"), "north": newMemoryStore(t, "no-istio")}
	results, err := fleetOf(stores).Change(context.Background(), start(nil, 10))
	require.NoError(t, err)
	for _, r := range results {
		assert.True(t, r.Written, r.Context)
		assert.Equal(t, 10, r.Result.Plan.State.Weight, r.Context)
	}
	for name, s := range stores {
		assert.True(t, wrote(s), "%s was not written", name)
	}
}

func TestFleetRefusalAnywhereWritesNothing(t *testing.T) {
	west := newMemoryStore(t, "no-istio")
	west.forbidden["VirtualService/reviews"] = true
	stores := map[string]*memoryStore{"east": newMemoryStore(t, "no-istio"), "west": west}
	results, err := fleetOf(stores).Change(context.Background(), start(nil, 10))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cluster west: ")
	assert.Contains(t, err.Error(), "nothing was changed in any cluster")
	assert.NotContains(t, err.Error(), "cluster east")
	for name, s := range stores {
		assert.False(t, wrote(s), "%s was written", name)
	}
	assert.False(t, results[0].Written)
}

func TestFleetClustersThatDisagreeWriteNothing(t *testing.T) {
	east, west := newMemoryStore(t, "no-istio"), newMemoryStore(t, "no-istio")
	// west's pods tell the versions apart by another label.
	for i := range west.deploys {
		labels := west.deploys[i].Spec.Template.Labels
		labels["track"] = labels["version"]
		delete(west.deploys[i].Spec.Template.Labels, "version")
	}
	_, err := fleetOf(map[string]*memoryStore{"east": east, "west": west}).Change(context.Background(), start(nil, 10))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the clusters disagree about the canary of service shop/reviews: in east stable version=")
	assert.Contains(t, err.Error(), "in west stable track=")
	assert.False(t, wrote(east) || wrote(west), "a cluster was written")
}
