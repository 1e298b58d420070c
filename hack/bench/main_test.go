package main

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

func TestGatewayWeightBudget(t *testing.T) {
	kinds := []string{"httproutes", "grpcroutes", "tcproutes", "tlsroutes"}
	const route = "httproutes bench/gwapi"
	side := func(extra map[string]int, writes map[string]int) sideResult {
		s := sideResult{Requests: map[string]int{
			"get services": 1, "list deployments": 1, "list virtualservices": 1, "list destinationrules": 1,
			"list httproutes": 1, "list grpcroutes": 1, "list tcproutes": 1, "list tlsroutes": 1, "list services": 1,
			"update httproutes": 1,
		}, ObjectWrites: map[string]int{route: 1}}
		for k, n := range extra {
			if n == 0 {
				delete(s.Requests, k)
			} else {
				s.Requests[k] = n
			}
		}
		if writes != nil {
			s.ObjectWrites = writes
		}
		s.RequestTotal = total(s.Requests)
		return s
	}
	for _, tc := range []struct {
		name   string
		side   sideResult
		kinds  []string
		met    bool
		detail string
	}{
		{"9 reads and the update", side(nil, nil), kinds, true, "10 requests: 9 reads (goal 9, with 4 route kinds served: httproutes, grpcroutes, tcproutes, tlsroutes), 1 writes (goal: 1 update of httproutes bench/gwapi), 0 reads of the route's status after it"},
		{"the status read after the write", side(map[string]int{"get httproutes": 1}, nil), kinds, true, "1 reads of the route's status after it"},
		{"two status reads", side(map[string]int{"get httproutes": 2}, nil), kinds, false, "over the goal: get httproutes 2 times (goal 1)"},
		{"the Service read twice", side(map[string]int{"get services": 2}, nil), kinds, false, "over the goal: get services 2 times (goal 1)"},
		{"a route kind not served is not listed", side(map[string]int{"list tlsroutes": 0}, nil), kinds[:3], true, "9 requests: 8 reads (goal 8, with 3 route kinds served"},
		{"a route kind not served, listed", side(nil, nil), kinds[:3], false, "outside the goal: list tlsroutes 1"},
		{"a read the goal allows, not made", side(map[string]int{"list tlsroutes": 0}, nil), kinds, true, "allowed but not made: list tlsroutes"},
		{"routes listed in all namespaces", side(map[string]int{"list httproutes": 0, "list httproutes (all namespaces)": 1}, nil), kinds, false, "outside the goal: list httproutes (all namespaces) 1"},
		{"discovery", side(map[string]int{"get /apis": 1}, nil), kinds, false, "outside the goal: get /apis 1"},
		{"a dry run first", side(map[string]int{"update httproutes (server dry run)": 1}, nil), kinds, false, "outside the goal: update httproutes (server dry run) 1"},
		{"a permission review", side(map[string]int{"create selfsubjectaccessreviews": 1}, nil), kinds, false, "outside the goal: create selfsubjectaccessreviews 1"},
		{"a Service written too", side(map[string]int{"update services": 1}, map[string]int{route: 1, "services bench/gwapi-v2": 1}), kinds, false, "outside the goal: a write to services bench/gwapi-v2, update services 1"},
		{"the route written twice", side(map[string]int{"update httproutes": 2}, map[string]int{route: 2}), kinds, false, "the route was not updated exactly once; over the goal: update httproutes 2 times (goal 1)"},
		{"no write", side(map[string]int{"update httproutes": 0}, map[string]int{}), kinds, false, "0 writes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := gatewayWeightBudget("weight (Gateway API)", tc.side, tc.kinds, route)
			if tg.Met != tc.met {
				t.Errorf("met = %v, want %v: %s", tg.Met, tc.met, tg.Detail)
			}
			if !strings.Contains(tg.Detail, tc.detail) {
				t.Errorf("detail %q does not say %q", tg.Detail, tc.detail)
			}
		})
	}
}

func TestEvaluateHoldsTheGatewayAPICase(t *testing.T) {
	c := commandResult{Name: gatewayCaseName, Plugin: sideResult{
		Requests:     map[string]int{"get services": 2, "list deployments": 1, "list virtualservices": 1, "list destinationrules": 1, "list httproutes": 1, "list services": 1, "update httproutes": 1},
		ObjectWrites: map[string]int{"httproutes bench/gwapi": 1},
	}}
	r := &report{GatewayAPIRoutes: []string{"httproutes"}, Scales: []scaleResult{{Name: "small", Commands: []commandResult{c}}}}
	var found bool
	for _, tg := range evaluate(r) {
		if strings.HasPrefix(tg.Target, "weight (Gateway API) (small cluster): one read per kind") {
			found = true
			if tg.Met {
				t.Errorf("a second read of the Service met the goal: %+v", tg)
			}
		}
	}
	if !found {
		t.Error("evaluate has no goal for the Gateway API case")
	}
}

func TestBackendWeights(t *testing.T) {
	route := &unstructured.Unstructured{Object: map[string]interface{}{
		"kind": "HTTPRoute", "metadata": map[string]interface{}{"name": "gwapi", "namespace": "bench"},
		"spec": map[string]interface{}{
			"parentRefs": []interface{}{map[string]interface{}{"group": "", "kind": "Service", "name": "gwapi", "port": int64(9080)}},
			"rules": []interface{}{
				map[string]interface{}{"backendRefs": []interface{}{
					map[string]interface{}{"name": "gwapi-v1", "port": int64(9080), "weight": int64(90)},
					map[string]interface{}{"name": "gwapi-v2", "port": int64(9080)},
				}},
				map[string]interface{}{"filters": []interface{}{}},
			},
		},
	}}
	if !hasServiceParent(route, "gwapi") || hasServiceParent(route, "other") {
		t.Error("hasServiceParent: want the parentRef to Service gwapi, and only it")
	}
	if err := expectBackendWeights(route, map[string]int64{"gwapi-v1": 90, "gwapi-v2": 1}); err != nil {
		t.Error(err)
	}
	if err := expectBackendWeights(route, map[string]int64{"gwapi-v1": 50, "gwapi-v2": 50}); err == nil {
		t.Error("90/1 passed for 50/50")
	}
	got := backendWeightPatch(route, map[string]int64{"gwapi-v1": 50, "gwapi-v2": 50})
	want := `[{"op":"replace","path":"/spec/rules/0/backendRefs/0/weight","value":50},{"op":"add","path":"/spec/rules/0/backendRefs/1/weight","value":50}]`
	if got != want {
		t.Errorf("backendWeightPatch = %s, want %s", got, want)
	}
}

func TestStatusListTargetCountsRouteLists(t *testing.T) {
	sc := &scaleResult{Name: "big", Objects: objectCounts{Services: 2003, Deployments: 4004, VirtualServices: 2002, DestinationRules: 2002,
		Routes: map[string]int{"httproutes": 1, "grpcroutes": 0, "tcproutes": 0, "tlsroutes": 0}}}
	c := &commandResult{Plugin: sideResult{Requests: map[string]int{
		"list services (all namespaces)": 5, "list deployments (all namespaces)": 9, "list virtualservices (all namespaces)": 5, "list destinationrules (all namespaces)": 5,
		"list httproutes (all namespaces)": 1, "list grpcroutes (all namespaces)": 1, "list tcproutes (all namespaces)": 1, "list tlsroutes (all namespaces)": 1,
	}}}
	if tg := statusListTarget(&report{}, sc, c); !tg.Met || !strings.Contains(tg.Detail, "28 LIST requests") || !strings.Contains(tg.Detail, "1 Gateway API routes of 4 kinds: 28 expected") {
		t.Errorf("one page per route kind is within the target: %+v", tg)
	}
	c.Plugin.Requests["list httproutes (all namespaces)"] = 2
	if tg := statusListTarget(&report{}, sc, c); tg.Met {
		t.Errorf("two pages of one route are over the target: %+v", tg)
	}
}
