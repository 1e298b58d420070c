package main

import (
	"encoding/json"
	"testing"
)

func event(t *testing.T, line string) auditEvent {
	t.Helper()
	var e auditEvent
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRequestKey(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`{"verb":"list","requestURI":"/apis/networking.istio.io/v1/virtualservices?limit=500","objectRef":{"resource":"virtualservices"}}`, "list virtualservices (all namespaces)"},
		{`{"verb":"list","requestURI":"/apis/apps/v1/namespaces/bench/deployments?limit=500","objectRef":{"resource":"deployments","namespace":"bench"}}`, "list deployments"},
		{`{"verb":"update","requestURI":"/apis/networking.istio.io/v1/namespaces/bench/virtualservices/run?dryRun=All&fieldManager=kubectl-canary","objectRef":{"resource":"virtualservices","namespace":"bench","name":"run"}}`, "update virtualservices (server dry run)"},
		{`{"verb":"create","requestURI":"/apis/authorization.k8s.io/v1/selfsubjectaccessreviews","objectRef":{"resource":"selfsubjectaccessreviews"}}`, "create selfsubjectaccessreviews"},
		{`{"verb":"get","requestURI":"/apis?timeout=30s"}`, "get /apis"},
		{`{"verb":"patch","requestURI":"/apis/apps/v1/namespaces/bench/deployments/run-v1/status","objectRef":{"resource":"deployments","subresource":"status","namespace":"bench","name":"run-v1"}}`, "patch deployments/status"},
	} {
		if got := requestKey(event(t, tc.line)); got != tc.want {
			t.Errorf("requestKey(%s) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestCountedSkipsBenchAndAPIServer(t *testing.T) {
	events := []auditEvent{
		event(t, `{"stage":"ResponseComplete","verb":"get","userAgent":"kubectl-canary","requestURI":"/api/v1/namespaces/bench/services/run"}`),
		event(t, `{"stage":"ResponseStarted","verb":"watch","userAgent":"kubectl-canary","requestURI":"/api/v1/services?watch=1"}`),
		event(t, `{"stage":"ResponseComplete","verb":"get","userAgent":"canary-bench-marker","requestURI":"/api/v1/namespaces/bench/configmaps/m"}`),
		event(t, `{"stage":"ResponseComplete","verb":"get","userAgent":"kube-apiserver/v1.37.2","user":{"username":"system:apiserver"},"requestURI":"/api/v1/namespaces/default"}`),
	}
	if got := counted(events); len(got) != 1 || got[0].UserAgent != "kubectl-canary" {
		t.Fatalf("counted = %+v, want the plugin's one completed request", got)
	}
}

func TestFormatCountsOrder(t *testing.T) {
	got := formatCounts(map[string]int{"update virtualservices": 1, "get /apis": 1, "list deployments": 2, "create selfsubjectaccessreviews": 1, "get services": 1})
	want := "get /apis 1, get services 1, list deployments 2, create selfsubjectaccessreviews 1, update virtualservices 1"
	if got != want {
		t.Errorf("formatCounts = %q, want %q", got, want)
	}
}

func TestObjectWrites(t *testing.T) {
	events := []auditEvent{
		event(t, `{"verb":"update","requestURI":"/x?dryRun=All","objectRef":{"resource":"virtualservices","namespace":"bench","name":"run"}}`),
		event(t, `{"verb":"update","requestURI":"/x","objectRef":{"resource":"virtualservices","namespace":"bench","name":"run"}}`),
		event(t, `{"verb":"create","requestURI":"/y","objectRef":{"resource":"selfsubjectaccessreviews"}}`),
	}
	got := objectWrites(events)
	if len(got) != 1 || got["virtualservices bench/run"] != 1 {
		t.Errorf("objectWrites = %v", got)
	}
}

func TestRequestBudget(t *testing.T) {
	s := sideResult{
		Requests:     map[string]int{"get services": 1, "list deployments": 1, "list virtualservices (all namespaces)": 1, "list destinationrules": 1, "create selfsubjectaccessreviews": 1, "update virtualservices": 1},
		ObjectWrites: map[string]int{"virtualservices bench/run": 1},
	}
	s.RequestTotal = total(s.Requests)
	tg := requestBudget("weight", s)
	if tg.Met {
		t.Errorf("a permission review before a lone write is outside the budget: %+v", tg)
	}
	abort := sideResult{
		Requests:     map[string]int{"get services": 1, "list deployments": 1, "list virtualservices": 1, "list destinationrules": 1, "create selfsubjectaccessreviews": 2, "update virtualservices": 1, "update destinationrules": 1},
		ObjectWrites: map[string]int{"virtualservices bench/run": 1, "destinationrules bench/run": 1},
	}
	abort.RequestTotal = total(abort.Requests)
	if tg := requestBudget("abort", abort); !tg.Met {
		t.Errorf("one permission review per write before two writes is within the budget: %+v", tg)
	}
	abort.Requests["create selfsubjectaccessreviews"] = 3
	if tg := requestBudget("abort", abort); tg.Met {
		t.Errorf("more reviews than writes are outside the budget: %+v", tg)
	}
	delete(s.Requests, "create selfsubjectaccessreviews")
	if tg := requestBudget("weight", s); !tg.Met {
		t.Errorf("reads of 4 kinds and one write are within the budget: %+v", tg)
	}
	s.Requests["list virtualservices (all namespaces)"] = 4
	if tg := requestBudget("weight", s); tg.Met {
		t.Errorf("4 pages of one kind are 4 reads: %+v", tg)
	}
}

func TestParseGoBench(t *testing.T) {
	out := []byte("goos: linux\nBenchmarkPlanStartOn500Routes-2   \t     100\t  12345678 ns/op\t 4500000 B/op\t   51234 allocs/op\nPASS\n")
	got := parseGoBench(out)
	if len(got) != 1 || got[0].Name != "BenchmarkPlanStartOn500Routes-2" || got[0].Iterations != 100 || got[0].NsPerOp != 12345678 || got[0].BytesPerOp != 4500000 || got[0].AllocsPerOp != 51234 {
		t.Errorf("parseGoBench = %+v", got)
	}
}

func TestGoBenchMedians(t *testing.T) {
	line := func(ns string) string {
		return "BenchmarkPlanStartOn500Routes-2 \t 100\t " + ns + " ns/op\t 4500000 B/op\t 51234 allocs/op\n"
	}
	out := []byte(line("5000000") + line("3000000") + "BenchmarkPlanWeightOn500Routes-2 \t 100\t 2000000 ns/op\t 1 B/op\t 1 allocs/op\n" + line("9000000") + line("4000000") + line("4100000"))
	got := medians(parseGoBench(out))
	if len(got) != 2 || got[0].Name != "BenchmarkPlanStartOn500Routes-2" || got[1].Name != "BenchmarkPlanWeightOn500Routes-2" {
		t.Fatalf("medians = %+v", got)
	}
	if s := got[0]; s.NsPerOp != 4100000 || s.Runs != 5 || s.MinNsPerOp != 3000000 || s.MaxNsPerOp != 9000000 {
		t.Errorf("start = %+v, want median 4.1 ms of 5 runs, 3 to 9 ms", s)
	}
	if w := got[1]; w.NsPerOp != 2000000 || w.Runs != 1 {
		t.Errorf("weight = %+v", w)
	}
	even := medians(parseGoBench([]byte(line("2000000") + line("4000000"))))
	if even[0].NsPerOp != 3000000 {
		t.Errorf("median of two = %v, want their mean", even[0].NsPerOp)
	}
}

func TestModuleOf(t *testing.T) {
	mods := []string{"k8s.io/client-go", "k8s.io/api", "github.com/spf13/cobra"}
	for sym, want := range map[string]string{
		"k8s.io/api/core/v1.(*PodSpec).Unmarshal":   "k8s.io/api",
		"type:*k8s.io/client-go/rest.Request":       "k8s.io/client-go",
		"go:itab.*k8s.io/api/core/v1.Pod,error":     "k8s.io/api",
		"runtime.mallocgc":                          "std",
		"vendor/golang.org/x/net/idna.idnaValues":   "std",
		"github.com/spf13/cobra.(*Command).Execute": "github.com/spf13/cobra",
		"github.com/unknown/mod.F":                  "other",
	} {
		if got := moduleOf(sym, mods); got != want {
			t.Errorf("moduleOf(%q) = %q, want %q", sym, got, want)
		}
	}
}

func TestReweighAndSplit(t *testing.T) {
	route := []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "r", "subset": "v1"}}}
	got := splitRoute(route, "r", 90, 10)
	data, _ := json.Marshal(got)
	if want := `[{"destination":{"host":"r","subset":"v1"},"weight":90},{"destination":{"host":"r","subset":"v2"},"weight":10}]`; string(data) != want {
		t.Errorf("splitRoute = %s, want %s", data, want)
	}
	data, _ = json.Marshal(reweigh(got, map[string]int64{"v2": 100}))
	if want := `[{"destination":{"host":"r","subset":"v2"}}]`; string(data) != want {
		t.Errorf("reweigh = %s, want %s", data, want)
	}
}

func TestMedian(t *testing.T) {
	if got := median([]float64{5, 1, 3}); got != 3 {
		t.Errorf("median = %v", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median = %v", got)
	}
}

func TestServerMS(t *testing.T) {
	e := event(t, `{"verb":"get","requestURI":"/api/v1/namespaces/bench/services/run","objectRef":{"resource":"services","namespace":"bench","name":"run"},"requestReceivedTimestamp":"2026-11-25T19:12:13.100000Z","stageTimestamp":"2026-11-25T19:12:13.102500Z"}`)
	got := serverMS([]auditEvent{e, e})
	if v := got["get services"]; v < 4.99 || v > 5.01 {
		t.Errorf("serverMS = %v, want 5 ms for two requests of 2.5 ms", got)
	}
}
