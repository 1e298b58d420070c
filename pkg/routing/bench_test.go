package routing

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// bigSnapshot is a Service whose VirtualService has 500 routes (half of them
// managed) and whose DestinationRule has 50 subsets.
func bigSnapshot(b testing.TB) *Snapshot {
	snap := loadSnapshot(b, "no-istio")
	var http []interface{}
	for i := 0; i < 500; i++ {
		subset := "v1"
		if i%2 == 1 {
			subset = fmt.Sprintf("pinned-%d", i%50)
		}
		http = append(http, map[string]interface{}{
			"name":    fmt.Sprintf("route-%d", i),
			"match":   []interface{}{map[string]interface{}{"uri": map[string]interface{}{"prefix": fmt.Sprintf("/api/%d", i)}}},
			"timeout": "5s",
			"retries": map[string]interface{}{"attempts": int64(3)},
			"route":   []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "reviews", "subset": subset}}},
		})
	}
	subsets := []interface{}{map[string]interface{}{"name": "v1", "labels": map[string]interface{}{"version": "v1"}}}
	for i := 0; i < 49; i++ {
		subsets = append(subsets, map[string]interface{}{"name": fmt.Sprintf("pinned-%d", i), "labels": map[string]interface{}{"version": fmt.Sprintf("old-%d", i)}})
	}
	snap.VirtualServices = []*unstructured.Unstructured{{Object: map[string]interface{}{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]interface{}{"name": "reviews", "namespace": "shop"},
		"spec":     map[string]interface{}{"hosts": []interface{}{"reviews"}, "http": http},
	}}}
	snap.DestinationRules = []*unstructured.Unstructured{{Object: map[string]interface{}{
		"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]interface{}{"name": "reviews", "namespace": "shop"},
		"spec":     map[string]interface{}{"host": "reviews", "subsets": subsets},
	}}}
	return snap
}

// BenchmarkPlanStartOn500Routes plans a start on the big snapshot.
func BenchmarkPlanStartOn500Routes(b *testing.B) {
	snap := bigSnapshot(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlanWeightOn500Routes plans a weight change of a running canary.
func BenchmarkPlanWeightOn500Routes(b *testing.B) {
	snap := bigSnapshot(b)
	plan, err := Compute(*snap, Intent{Action: ActionStart, Weight: 10})
	if err != nil {
		b.Fatal(err)
	}
	snap.apply(plan)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compute(*snap, Intent{Action: ActionWeight, Weight: 50}); err != nil {
			b.Fatal(err)
		}
	}
}
