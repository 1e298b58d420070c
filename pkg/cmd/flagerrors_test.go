package cmd

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

func TestParseRules(t *testing.T) {
	cases := []struct {
		in   string
		want routing.MatchRule
	}{
		{"x-canary=true", routing.MatchRule{Name: "x-canary", Op: "exact", Value: "true"}},
		{"X-User~^(alice|bob)$", routing.MatchRule{Name: "x-user", Op: "regex", Value: "^(alice|bob)$"}},
		{"user-agent^Mozilla", routing.MatchRule{Name: "user-agent", Op: "prefix", Value: "Mozilla"}},
		{"x-a=b=c", routing.MatchRule{Name: "x-a", Op: "exact", Value: "b=c"}},
	}
	for _, c := range cases {
		got, err := parseHeaderRule(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
	for _, bad := range []string{"novalue", "=x", "x=", "bad name=1", "x~(unclosed"} {
		_, err := parseHeaderRule(bad)
		assert.Error(t, err, bad)
	}
	got, err := parseCookieRule("beta=on")
	require.NoError(t, err)
	assert.Equal(t, routing.MatchRule{Cookie: true, Name: "beta", Op: "exact", Value: "on"}, got)
	for _, bad := range []string{"beta", "=on", "beta=", "beta=o n", "be ta=on", "beta=a;b"} {
		_, err := parseCookieRule(bad)
		assert.Error(t, err, bad)
	}
}

// The messages of the flag parsers are what users see (the e2e tests
// compare them): pinned byte for byte.
func TestFlagParserMessages(t *testing.T) {
	_, err := parseHeaderRule("x-tester")
	assert.EqualError(t, err, `--header "x-tester": write NAME=VALUE (exact), NAME~REGEX or NAME^PREFIX, for example --header x-canary=true`)
	_, err = parseHeaderRule("bad name=1")
	assert.EqualError(t, err, `--header "bad name=1": "bad name" is not a valid HTTP header name`)
	_, err = parseHeaderRule("x~(a")
	assert.ErrorContains(t, err, `--header "x~(a": the regular expression does not compile (`)
	assert.ErrorContains(t, err, `); Istio uses RE2 syntax`)
	_, err = parseCookieRule("beta")
	assert.EqualError(t, err, `--cookie "beta": write NAME=VALUE, for example --cookie tester=yes`)
	_, err = parseCookieRule("beta=a;b")
	assert.EqualError(t, err, `--cookie "beta=a;b": cookie names are tokens and values may not hold spaces, commas, semicolons, quotes or backslashes`)
}

func TestParseGatewayRef(t *testing.T) {
	namespace, name, err := parseGatewayRef("istio-system/public-gateway")
	require.NoError(t, err)
	assert.Equal(t, []string{"istio-system", "public-gateway"}, []string{namespace, name})
	for _, bad := range []string{"public-gateway", "/gw", "ns/", "a/b/c", ""} {
		_, _, err := parseGatewayRef(bad)
		assert.EqualError(t, err, `--gateway "`+bad+`": write NAMESPACE/NAME of the Istio Gateway, for example --gateway istio-system/public-gateway`, bad)
	}
}

// fixtureSnapshot reads testdata/routing/NAME/cluster.yaml, with extra
// objects given as YAML, into what the routing core is told.
func fixtureSnapshot(t *testing.T, name string, extra ...string) *routing.Snapshot {
	t.Helper()
	objects := testutil.ReadObjects(t, testutil.Testdata("routing", name, "cluster.yaml"))
	for _, y := range extra {
		objects = append(objects, testutil.DecodeObjects(t, []byte(y))...)
	}
	snap := &routing.Snapshot{Now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), APIVersion: "networking.istio.io/v1"}
	for _, u := range objects {
		switch u.GetKind() {
		case "Service":
			snap.Service = &corev1.Service{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, snap.Service))
		case "Deployment":
			d := appsv1.Deployment{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d))
			snap.Deployments = append(snap.Deployments, d)
		case "VirtualService":
			snap.VirtualServices = append(snap.VirtualServices, u)
		case "DestinationRule":
			snap.DestinationRules = append(snap.DestinationRules, u)
		case "Gateway":
			snap.Gateways = append(snap.Gateways, u)
		}
	}
	return snap
}

// applyPlan writes a plan's objects into the snapshot.
func applyPlan(snap *routing.Snapshot, plan *routing.Plan) {
	for _, c := range plan.Changes {
		list := &snap.VirtualServices
		if c.Desired.GetKind() == "DestinationRule" {
			list = &snap.DestinationRules
		}
		replaced := false
		for i, obj := range *list {
			if obj.GetName() == c.Desired.GetName() && obj.GetNamespace() == c.Desired.GetNamespace() {
				(*list)[i], replaced = c.Desired.DeepCopy(), true
			}
		}
		if !replaced {
			*list = append(*list, c.Desired.DeepCopy())
		}
	}
}

func startIntent(mutate func(*routing.Intent)) routing.Intent {
	intent := routing.Intent{Action: routing.ActionStart, Weight: 10}
	if mutate != nil {
		mutate(&intent)
	}
	return intent
}

func cookieRule(name string) routing.MatchRule {
	return routing.MatchRule{Cookie: true, Name: name, Op: "exact", Value: "1"}
}

// flagErrorCases are routing errors that name parts of the intent, with
// the words the command line has always said them in.
func flagErrorCases(t *testing.T) []struct {
	name   string
	snap   func() *routing.Snapshot
	intent routing.Intent
	want   string
} {
	fixture := func(name string, extra ...string) func() *routing.Snapshot {
		return func() *routing.Snapshot { return fixtureSnapshot(t, name, extra...) }
	}
	relabelled := func(mutate func(labels map[string]string, i int)) func() *routing.Snapshot {
		return func() *routing.Snapshot {
			snap := fixtureSnapshot(t, "no-istio")
			for i := range snap.Deployments {
				mutate(snap.Deployments[i].Spec.Template.Labels, i)
			}
			return snap
		}
	}
	// A route that already splits reviews between v1 and v2.
	splitRoute := `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 50}
    - {destination: {host: reviews, subset: v2}, weight: 50}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}`
	// The default route of reviews mirrors to a Service of someone else's.
	userMirror := func() *routing.Snapshot {
		snap := fixtureSnapshot(t, "bookinfo-adopted")
		for _, vs := range snap.VirtualServices {
			if vs.GetName() == "reviews" {
				routes := vs.Object["spec"].(map[string]interface{})["http"].([]interface{})
				routes[2].(map[string]interface{})["mirror"] = map[string]interface{}{"host": "reviews-shadow"}
			}
		}
		return snap
	}
	// web runs a canary whose gateway VirtualService serves shop.example.com.
	gatewayCanary := func() *routing.Snapshot {
		snap := fixtureSnapshot(t, "hosts-and-gateway")
		plan, err := routing.Compute(*snap, startIntent(func(i *routing.Intent) {
			i.Gateway = &routing.GatewayIntent{Namespace: "istio-system", Name: "public-gateway", Hosts: []string{"shop.example.com"}}
		}))
		require.NoError(t, err)
		applyPlan(snap, plan)
		return snap
	}
	multiPort := func(ports ...corev1.ServicePort) func() *routing.Snapshot {
		return func() *routing.Snapshot {
			snap := fixtureSnapshot(t, "multi-port")
			snap.Service.Spec.Ports = ports
			return snap
		}
	}
	shopGateway := &routing.GatewayIntent{Namespace: "shop", Name: "public", Hosts: []string{"shop.example.com"}}
	return []struct {
		name   string
		snap   func() *routing.Snapshot
		intent routing.Intent
		want   string
	}{
		// >>> cases
		{"--stable unknown", fixture("no-istio"), startIntent(func(i *routing.Intent) { i.Stable = "v0" }),
			"--stable v0: service shop/reviews has no such version (version values: v1, v2)"},
		{"--canary unknown", fixture("no-istio"), startIntent(func(i *routing.Intent) { i.Canary = "v9" }),
			"--canary v9: service shop/reviews has no such version (version values: v1, v2)"},
		{"--canary-deployment unknown", fixture("no-istio"), startIntent(func(i *routing.Intent) { i.CanaryDeployment = "nope" }),
			"--canary-deployment nope: no such deployment behind service shop/reviews (deployments: reviews-v1, reviews-v2)"},
		{"--canary and --canary-deployment disagree", fixture("no-istio"), startIntent(func(i *routing.Intent) { i.Canary, i.CanaryDeployment = "v1", "reviews-v2" }),
			"--canary v1 and --canary-deployment reviews-v2 disagree: that deployment is version=v2; pass only one of them"},
		{"--canary is the stable version", fixture("no-istio"), startIntent(func(i *routing.Intent) { i.Canary = "v1" }),
			"canary version=v1 is the stable version of service shop/reviews; pick another version with --canary, or set the stable one with --stable"},
		{"several canaries", fixture("bookinfo-adopted"), startIntent(nil),
			"service bookinfo/reviews has several versions besides stable version=v1: v2, v3; pass --canary with one of them"},
		{"--version-label missing", fixture("no-istio"), startIntent(func(i *routing.Intent) { i.VersionLabel = "track" }),
			`version label "track" is missing from the pod template of deployment(s) reviews-v1, reviews-v2 behind service shop/reviews; label every version or pick another --version-label`},
		{"no version label", relabelled(func(labels map[string]string, _ int) { delete(labels, "version") }), startIntent(nil),
			"cannot tell the versions of service shop/reviews apart: no pod-template label of its deployments (reviews-v1, reviews-v2) differs between them; label each version (for example version=v1, version=v2) or pass --version-label"},
		{"several version labels", relabelled(func(labels map[string]string, i int) {
			delete(labels, "version")
			labels["build"], labels["flavor"] = fmt.Sprintf("b%d", i), fmt.Sprintf("f%d", i)
		}), startIntent(nil),
			"cannot choose the version label of service shop/reviews: candidates are build, flavor; pass --version-label with one of them"},
		{"--route unknown", fixture("bookinfo-adopted"), startIntent(func(i *routing.Intent) { i.Canary, i.Routes = "v3", []string{"nope"} }),
			"--route nope: no route of that name sends traffic to stable subset v1 of service bookinfo/reviews (VirtualServices routing it: reviews); check the route names"},
		{"no route to the stable version alone", fixture("bookinfo-adopted"), startIntent(func(i *routing.Intent) { i.Stable, i.Canary = "v3", "v2" }),
			"VirtualService reviews routes service bookinfo/reviews, but no route sends its traffic to stable version=v3 alone (each is pinned to a subset or mixes other hosts); pass --stable or --route, or add a default route"},
		{"routes split already", fixture("no-istio", splitRoute), startIntent(nil),
			"the routes of service shop/reviews already send traffic to several versions ([v1 v2]); pass --stable with the one that serves users today (or, where they split between two, --canary with the other one)"},
		{"--mirror of someone else", userMirror, startIntent(func(i *routing.Intent) { mirror := 20; i.Canary, i.Mirror = "v3", &mirror }),
			`http route "default" of VirtualService bookinfo/reviews already mirrors to reviews-shadow; kubectl canary will not replace a mirror it did not set: remove it, or run without --mirror`},
		{"--gateway unknown", fixture("hosts-and-gateway"), startIntent(func(i *routing.Intent) {
			i.Gateway = &routing.GatewayIntent{Namespace: "istio-system", Name: "nope", Hosts: []string{"www.example.com"}}
		}),
			"gateway istio-system/nope not found; check --gateway NAMESPACE/NAME (kubectl get gateways.networking.istio.io -A)"},
		{"--host added to a running canary", gatewayCanary, startIntent(func(i *routing.Intent) {
			i.Gateway = &routing.GatewayIntent{Namespace: "istio-system", Name: "public-gateway", Hosts: []string{"shop.example.com", "api.example.com"}}
		}),
			"VirtualService prod/web-gateway, created for a gateway, does not serve host(s) api.example.com; abort the canary and start it again with every --host"},
		{"--gateway of a Service with two HTTP ports", multiPort(corev1.ServicePort{Name: "http", Port: 80}, corev1.ServicePort{Name: "http-alt", Port: 8080}), startIntent(func(i *routing.Intent) { i.Gateway = shopGateway }),
			"service shop/cart has several HTTP ports (http 80/TCP, http-alt 8080/TCP), and the VirtualService to create for host(s) shop.example.com at gateway shop/public must send to one of them; create it yourself (hosts, gateways, an http route whose destination is the service with the port), then run start with the same --gateway and --host to adopt it"},
		{"--gateway of a Service without an HTTP port", multiPort(corev1.ServicePort{Name: "tcp-a", Port: 5432}, corev1.ServicePort{Name: "tcp-b", Port: 5433}), startIntent(func(i *routing.Intent) { i.Gateway = shopGateway }),
			"service shop/cart has no HTTP port (tcp-a 5432/TCP, tcp-b 5433/TCP), and the VirtualService to create for host(s) shop.example.com at gateway shop/public would send HTTP to it; name the HTTP port http or http-SUFFIX (or set its appProtocol), or create the gateway's VirtualService yourself and run start with the same --gateway and --host to adopt it"},
		{"--cookie four times", fixture("no-istio"), startIntent(func(i *routing.Intent) {
			i.Matches = []routing.MatchRule{cookieRule("a"), cookieRule("b"), cookieRule("c"), cookieRule("d")}
		}),
			"4 --cookie rules given; at most 3 can be combined in one match"},
		{"--header cookie and --cookie", fixture("no-istio"), startIntent(func(i *routing.Intent) {
			i.Matches = []routing.MatchRule{{Name: "cookie", Op: "exact", Value: "a=1"}, cookieRule("b")}
		}),
			"--header cookie and --cookie cannot be combined; use --cookie for each cookie"},
		// <<< cases
	}
}

// TestRoutingErrorsNameTheFlags: every routing error that names a part of
// the intent comes out of the command layer naming its flag, in the words
// the command line has always used (the e2e tests compare them).
func TestRoutingErrorsNameTheFlags(t *testing.T) {
	for _, c := range flagErrorCases(t) {
		t.Run(c.name, func(t *testing.T) {
			_, err := routing.Compute(*c.snap(), c.intent)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "--", "the core names no flag")
			assert.EqualError(t, flagTerms{}.error(err), c.want)
			// Wrapped, only the core's part is reworded, and the error
			// still unwraps to the core's.
			wrapped := flagTerms{}.error(fmt.Errorf("start --dry-run: %w", err))
			assert.EqualError(t, wrapped, "start --dry-run: "+c.want)
			var intentErr *routing.IntentError
			assert.True(t, errors.As(wrapped, &intentErr))
		})
	}
}

// Several clusters' errors come joined: each cluster's core error inside
// is reworded too.
func TestJoinedRoutingErrorsNameTheFlags(t *testing.T) {
	c := flagErrorCases(t)[0]
	_, err := routing.Compute(*c.snap(), c.intent)
	require.Error(t, err)
	joined := fmt.Errorf("%w\nnothing was changed in any cluster", errors.Join(fmt.Errorf("cluster west: %w", err), fmt.Errorf("cluster east: %w", err)))
	assert.EqualError(t, flagTerms{}.error(joined), "cluster west: "+c.want+"\ncluster east: "+c.want+"\nnothing was changed in any cluster")
}

func TestErrorsWithoutFieldsPassUnchanged(t *testing.T) {
	assert.NoError(t, flagTerms{}.error(nil))
	plain := errors.New("no canary in progress for service shop/reviews")
	assert.Same(t, plain, flagTerms{target: " -n shop"}.error(plain))
}

// Findings name --force and --version-label the way check and the
// preflight have always printed them.
func TestFindingMessagesNameTheFlags(t *testing.T) {
	unready := fixtureSnapshot(t, "no-istio")
	unready.Deployments[1].Status.AvailableReplicas = 0
	unlabelled := fixtureSnapshot(t, "no-istio")
	for i := range unlabelled.Deployments {
		delete(unlabelled.Deployments[i].Spec.Template.Labels, "version")
	}
	flagger := fixtureSnapshot(t, "bookinfo-adopted")
	flagger.VirtualServices[0].SetAnnotations(map[string]string{"flagger.kubernetes.io/original-configuration": "{}"})
	cases := []struct {
		name string
		snap *routing.Snapshot
		want string
	}{
		{"unready canary", unready, "canary version=v2 has 0 available replica(s) of 1 desired, fewer than 1; traffic sent to it would fail. Wait until it is ready (kubectl rollout status), or pass --force"},
		{"no version label", unlabelled, "cannot tell the versions of service shop/reviews apart: no pod-template label of its deployments (reviews-v1, reviews-v2) differs between them; label each version (for example version=v1, version=v2) or pass --version-label"},
		{"managed by Flagger", flagger, "is managed by Flagger (annotation flagger.kubernetes.io/original-configuration, the spec Flagger saved when it took the object over); a canary run by kubectl canary would fight it. Run the canary with Flagger. If no Flagger Canary targets the Service any more (kubectl get canaries.flagger.app -A; Flagger leaves the annotation behind when it gives the object back), remove the annotation, or pass --force if you are sure"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			findings := routing.Check(*c.snap, routing.Intent{}, routing.CheckOptions{})
			require.Len(t, findings, 1)
			assert.Equal(t, c.want, flagTerms{}.finding(findings[0]))
			assert.Equal(t, c.want, flagTerms{}.findings(findings)[0].Message)
			assert.NotContains(t, findings[0].Message, "--", "the core's Message names no flag")
		})
	}
	assert.Equal(t, []routing.Finding{}, flagTerms{}.findings(nil), "none is [] in JSON")
}
