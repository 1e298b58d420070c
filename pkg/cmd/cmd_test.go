package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/kubectl-canary/kubectl-canary/pkg/canary"
	"github.com/kubectl-canary/kubectl-canary/pkg/kube"
	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// fakeCluster is a namespace of fake clients loaded from a routing fixture.
type fakeCluster struct {
	t         *testing.T
	namespace string
	core      *fake.Clientset
	dynamic   *dynamicfake.FakeDynamicClient
	// denied lists "verb resource" pairs the fake authorizer refuses, in
	// SelfSubjectAccessReviews and in writes (dry runs too).
	denied map[string]bool
	// prometheusTimeout bounds each request to --prometheus-url (0: 30s).
	prometheusTimeout time.Duration
}

func (f *fakeCluster) Namespace() (string, error) { return f.namespace, nil }

func (f *fakeCluster) mutateService(t *testing.T, mutate func(*corev1.Service)) {
	svc, err := f.core.CoreV1().Services(f.namespace).Get(context.Background(), "reviews", metav1GetOptions)
	require.NoError(t, err)
	mutate(svc)
	_, err = f.core.CoreV1().Services(f.namespace).Update(context.Background(), svc, metav1UpdateOptions)
	require.NoError(t, err)
}

func (f *fakeCluster) Clients() (*kube.Clients, error) {
	return &kube.Clients{Core: f.core, Dynamic: f.dynamic, IstioVersion: "v1"}, nil
}

var (
	vsGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	drGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"}
	gwGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "gateways"}
)

func newFakeCluster(t *testing.T, fixture, namespace string) *fakeCluster {
	t.Helper()
	var typed, routingObjects []runtime.Object
	var gateways []*unstructured.Unstructured
	for _, u := range testutil.ReadObjects(t, testutil.Testdata("routing", fixture, "cluster.yaml")) {
		switch u.GetKind() {
		case "Service":
			svc := &corev1.Service{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, svc))
			typed = append(typed, svc)
		case "Deployment":
			d := &appsv1.Deployment{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d))
			typed = append(typed, d)
		case "Gateway":
			// Added by resource below: the fake would guess "gatewaies".
			gateways = append(gateways, u)
		default:
			routingObjects = append(routingObjects, u)
		}
	}
	f := &fakeCluster{t: t, namespace: namespace, core: fake.NewSimpleClientset(typed...), denied: map[string]bool{}}
	f.dynamic = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{vsGVR: "VirtualServiceList", drGVR: "DestinationRuleList", gwGVR: "GatewayList"}, routingObjects...)
	for _, g := range gateways {
		require.NoError(t, f.dynamic.Tracker().Create(gwGVR, g, g.GetNamespace()))
	}
	// The fake stores dry-run writes; a real API server answers them
	// without storing anything.
	f.dynamic.PrependReactor("*", "*", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if isDryRun(action) {
			return true, action.(interface{ GetObject() runtime.Object }).GetObject(), nil
		}
		return false, nil, nil
	})
	// Prepended last, so it runs first: refused writes are refused before
	// they are stored or answered as dry runs.
	f.dynamic.PrependReactor("*", "*", func(action clienttesting.Action) (bool, runtime.Object, error) {
		gr := action.GetResource().GroupResource()
		if f.denied[action.GetVerb()+" "+gr.Resource] {
			return true, nil, apierrors.NewForbidden(gr, "", fmt.Errorf("RBAC: the fake authorizer refuses %s", action.GetVerb()))
		}
		return false, nil, nil
	})
	f.core.PrependReactor("create", "selfsubjectaccessreviews", func(action clienttesting.Action) (bool, runtime.Object, error) {
		review := action.(clienttesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		attrs := review.Spec.ResourceAttributes
		review.Status.Allowed = !f.denied[attrs.Verb+" "+attrs.Resource]
		return true, review, nil
	})
	return f
}

// run executes `kubectl canary ARGS...` against the fake cluster.
func (f *fakeCluster) run(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := newCmdCanary(&globalOptions{conn: canary.ConnectWith(f), syncReadTooSoon: fakeSyncReadTooSoon, prometheusTimeout: f.prometheusTimeout, IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}})
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// fakeSyncReadTooSoon: the fake istiod pushes a write on the second read
// after it, however long that takes, so the first read never holds it.
const fakeSyncReadTooSoon = time.Hour

func isDryRun(action clienttesting.Action) bool {
	switch a := action.(type) {
	case clienttesting.CreateActionImpl:
		return len(a.CreateOptions.DryRun) > 0
	case clienttesting.UpdateActionImpl:
		return len(a.UpdateOptions.DryRun) > 0
	}
	return false
}

// writes lists the create and update calls the command sent, dry runs aside.
func (f *fakeCluster) writes() []string {
	var out []string
	for _, a := range f.dynamic.Actions() {
		if isDryRun(a) {
			continue
		}
		if a.GetVerb() == "create" || a.GetVerb() == "update" || a.GetVerb() == "patch" || a.GetVerb() == "delete" {
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	return out
}

func (f *fakeCluster) get(gvr schema.GroupVersionResource, name string) *unstructured.Unstructured {
	obj, err := f.dynamic.Resource(gvr).Namespace(f.namespace).Get(context.Background(), name, metav1GetOptions)
	require.NoError(f.t, err)
	return obj
}

func weightsOf(t *testing.T, vs *unstructured.Unstructured, kind string, index int) []int64 {
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", kind)
	require.Greater(t, len(routes), index)
	var out []int64
	for _, d := range routes[index].(map[string]interface{})["route"].([]interface{}) {
		w, _ := d.(map[string]interface{})["weight"].(int64)
		out = append(out, w)
	}
	return out
}

func TestStartWeightPromoteWritesAndReports(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	out, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	assert.Equal(t, "destinationrule.networking.istio.io/reviews created\nvirtualservice.networking.istio.io/reviews created\n"+
		"canary shop/reviews started: canary version=v2 gets 10%, stable version=v1 gets 90%\n", out)
	assert.Equal(t, []string{"create destinationrules", "create virtualservices"}, f.writes(), "subsets are written before routes use them")
	assert.Equal(t, []int64{90, 10}, weightsOf(t, f.get(vsGVR, "reviews"), "http", 0))

	out, _, err = f.run("start", "reviews")
	require.NoError(t, err)
	assert.Contains(t, out, "virtualservice.networking.istio.io/reviews unchanged\ncanary shop/reviews unchanged (progressing): canary version=v2 gets 10%")
	assert.Len(t, f.writes(), 2, "the second start writes nothing")

	out, _, err = f.run("weight", "reviews", "50%")
	require.NoError(t, err)
	assert.Contains(t, out, "canary shop/reviews reweighted: canary version=v2 gets 50%, stable version=v1 gets 50%")
	assert.Equal(t, []int64{50, 50}, weightsOf(t, f.get(vsGVR, "reviews"), "http", 0))

	out, _, err = f.run("promote", "reviews")
	require.NoError(t, err)
	assert.Contains(t, out, "canary shop/reviews promoted: version=v2 is stable and gets 100% of the traffic")
	vs := f.get(vsGVR, "reviews")
	dests, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	assert.Equal(t, []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "reviews.shop.svc.cluster.local", "subset": "v2"}}},
		dests[0].(map[string]interface{})["route"])

	out, _, err = f.run("status", "reviews", "-o", "json")
	require.NoError(t, err)
	assert.Contains(t, out, `"stable": "v2"`)
	assert.Contains(t, out, `"phase": "Promoted"`)
	assert.Contains(t, out, `"promotedFrom": "v1"`)
}

func TestBadInputErrorsNameTheObjectAndWriteNothing(t *testing.T) {
	cases := []struct {
		name    string
		fixture string
		setup   func(f *fakeCluster)
		args    []string
		want    string
	}{
		{"unknown service", "no-istio", nil, []string{"start", "nope"}, `service "nope" not found in namespace "shop"; check the name, or pass -n`},
		{"no deployment behind it", "no-istio", func(f *fakeCluster) {
			for _, name := range []string{"reviews-v1", "reviews-v2"} {
				require.NoError(t, f.core.AppsV1().Deployments("shop").Delete(context.Background(), name, metav1DeleteOptions))
			}
		}, []string{"start", "reviews"}, "no Deployment in namespace shop has pods matching the selector of service reviews"},
		{"one version only", "no-istio", func(f *fakeCluster) {
			require.NoError(t, f.core.AppsV1().Deployments("shop").Delete(context.Background(), "reviews-v2", metav1DeleteOptions))
		}, []string{"start", "reviews"}, "service shop/reviews has only one version behind it"},
		{"ambiguous version label", "unnamed-label", func(f *fakeCluster) {
			for _, name := range []string{"db-proxy", "db-proxy-next"} {
				d, err := f.core.AppsV1().Deployments("data").Get(context.Background(), name, metav1GetOptions)
				require.NoError(t, err)
				d.Spec.Template.Labels["build"] = name
				_, err = f.core.AppsV1().Deployments("data").Update(context.Background(), d, metav1UpdateOptions)
				require.NoError(t, err)
			}
		}, []string{"start", "db-proxy"}, "cannot choose the version label of service data/db-proxy: candidates are build, track; pass --version-label"},
		{"several canary candidates", "bookinfo-adopted", nil, []string{"start", "reviews"}, "several versions besides stable version=v1: v2, v3; pass --canary"},
		{"canary equal to stable", "no-istio", nil, []string{"start", "reviews", "--canary", "v1"}, "canary version=v1 is the stable version of service shop/reviews"},
		{"start weight above 100", "no-istio", nil, []string{"start", "reviews", "--weight", "150"}, "--weight 150 is out of range"},
		{"start weight not an integer", "no-istio", nil, []string{"start", "reviews", "--weight", "ten"}, `invalid argument "ten" for "--weight" flag`},
		{"weight above 100", "no-istio", nil, []string{"weight", "reviews", "101"}, "weight 101 is out of range"},
		{"weight negative", "no-istio", nil, []string{"weight", "reviews", "--", "-1"}, "weight -1 is out of range"},
		{"weight not an integer", "no-istio", nil, []string{"weight", "reviews", "12.5"}, `weight "12.5" is not a whole number`},
		{"weight without a canary", "no-istio", nil, []string{"weight", "reviews", "20"}, "no canary in progress for service shop/reviews; start one with kubectl canary start reviews"},
		{"promote without a canary", "no-istio", nil, []string{"promote", "reviews"}, "no canary in progress for service shop/reviews"},
		{"abort without a canary", "no-istio", nil, []string{"abort", "reviews"}, "no canary in progress for service shop/reviews"},
		{"weight needs two arguments", "no-istio", nil, []string{"weight", "reviews"}, "weight needs SERVICE and PERCENT"},
		{"bad dry-run value", "no-istio", nil, []string{"start", "reviews", "--dry-run=maybe"}, `--dry-run "maybe" is not supported`},
		{"bad header rule", "no-istio", nil, []string{"start", "reviews", "--header", "x-tester"}, `--header "x-tester": write NAME=VALUE (exact), NAME~REGEX or NAME^PREFIX`},
		{"bad header regex", "no-istio", nil, []string{"start", "reviews", "--header", "x~(a"}, "the regular expression does not compile"},
		{"bad cookie rule", "no-istio", nil, []string{"start", "reviews", "--cookie", "beta"}, `--cookie "beta": write NAME=VALUE`},
		{"mirror above 100", "no-istio", nil, []string{"start", "reviews", "--mirror", "120"}, "--mirror 120 is out of range"},
		{"route without rules", "no-istio", nil, []string{"route", "reviews"}, "give the new rules with --header or --cookie, or remove them with --clear-matches"},
		{"route with rules and clear", "no-istio", nil, []string{"route", "reviews", "--header", "a=b", "--clear-matches"}, "--clear-matches removes every rule"},
		{"route without a canary", "no-istio", nil, []string{"route", "reviews", "--header", "a=b"}, "no canary in progress for service shop/reviews"},
		{"gateway without host", "hosts-and-gateway", nil, []string{"start", "web", "--gateway", "istio-system/public-gateway"}, "--gateway istio-system/public-gateway needs at least one --host"},
		{"host without gateway", "hosts-and-gateway", nil, []string{"start", "web", "--host", "www.example.com"}, "--host needs --gateway NAMESPACE/NAME"},
		{"gateway without namespace", "hosts-and-gateway", nil, []string{"start", "web", "--gateway", "public-gateway", "--host", "a.example.com"}, `--gateway "public-gateway": write NAMESPACE/NAME`},
		{"wildcard host", "hosts-and-gateway", nil, []string{"start", "web", "--gateway", "istio-system/public-gateway", "--host", "*.example.com"}, "give an exact host name"},
		{"unknown gateway", "hosts-and-gateway", nil, []string{"start", "web", "--gateway", "istio-system/nope", "--host", "www.example.com"}, "gateway istio-system/nope not found"},
		{"ExternalName service", "no-istio", func(f *fakeCluster) {
			f.mutateService(t, func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeExternalName
				s.Spec.ExternalName = "reviews.example.com"
			})
		},
			[]string{"start", "reviews"}, "service shop/reviews is an ExternalName service (an alias of reviews.example.com)"},
		{"headless service", "no-istio", func(f *fakeCluster) {
			f.mutateService(t, func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })
		},
			[]string{"start", "reviews"}, "service shop/reviews is headless (clusterIP: None)"},
		{"service without selector", "no-istio", func(f *fakeCluster) { f.mutateService(t, func(s *corev1.Service) { s.Spec.Selector = nil }) },
			[]string{"start", "reviews"}, "service shop/reviews has no selector"},
		{"deployments without labels", "no-istio", func(f *fakeCluster) {
			for _, name := range []string{"reviews-v1", "reviews-v2"} {
				d, err := f.core.AppsV1().Deployments("shop").Get(context.Background(), name, metav1GetOptions)
				require.NoError(t, err)
				d.Spec.Template.Labels = nil
				_, err = f.core.AppsV1().Deployments("shop").Update(context.Background(), d, metav1UpdateOptions)
				require.NoError(t, err)
			}
		}, []string{"start", "reviews"}, "no Deployment in namespace shop has pods matching the selector of service reviews"},
		{"duplicate subset names", "bookinfo-adopted", func(f *fakeCluster) {
			dr := f.get(drGVR, "reviews")
			subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
			require.NoError(t, unstructured.SetNestedSlice(dr.Object, append(subsets, subsets[0]), "spec", "subsets"))
			require.NoError(t, f.dynamic.Tracker().Update(drGVR, dr, "bookinfo"))
		}, []string{"start", "reviews", "--canary", "v3"}, `defines subset "v1" twice`},
		{"VirtualService of the service's name with no routes", "no-istio", func(f *fakeCluster) {
			vs := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
				"metadata": map[string]interface{}{"name": "reviews", "namespace": "shop"}, "spec": map[string]interface{}{"hosts": []interface{}{"reviews"}}}}
			require.NoError(t, f.dynamic.Tracker().Create(vsGVR, vs, "shop"))
		}, []string{"start", "reviews"}, "a VirtualService of namespace shop holds the host of service reviews but sends none of its traffic to it"},
		{"malformed state annotation", "no-istio", func(f *fakeCluster) {
			vs := &unstructured.Unstructured{Object: map[string]interface{}{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
				"metadata": map[string]interface{}{"name": "reviews", "namespace": "shop", "annotations": map[string]interface{}{"kubectl-canary.io/reviews": "{not json"}},
				"spec":     map[string]interface{}{"hosts": []interface{}{"reviews"}, "http": []interface{}{map[string]interface{}{"route": []interface{}{map[string]interface{}{"destination": map[string]interface{}{"host": "reviews"}}}}}}}}
			require.NoError(t, f.dynamic.Tracker().Create(vsGVR, vs, "shop"))
		}, []string{"weight", "reviews", "20"}, "annotation kubectl-canary.io/reviews on VirtualService shop/reviews is not valid canary state"},
		{"unknown output format", "no-istio", nil, []string{"start", "reviews", "-o", "wide"}, `--output "wide" is not supported; use one of custom-columns, custom-columns-file, go-template, go-template-file, json, jsonpath, jsonpath-as-json, jsonpath-file, kyaml, name, template, templatefile, yaml, or leave it out for a summary`},
		{"two services", "no-istio", nil, []string{"start", "reviews", "ratings"}, "start needs exactly one SERVICE argument, got 2"},
		{"status output format", "no-istio", nil, []string{"status", "-o", "table"}, `--output "table" is not supported`},
		{"missing permission", "no-istio", func(f *fakeCluster) { f.denied["create virtualservices"] = true },
			[]string{"start", "reviews"}, "not allowed to create virtualservices.networking.istio.io in namespace shop; nothing was changed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := map[string]string{"no-istio": "shop", "unnamed-label": "data", "bookinfo-adopted": "bookinfo", "hosts-and-gateway": "prod"}[c.fixture]
			f := newFakeCluster(t, c.fixture, ns)
			if c.setup != nil {
				c.setup(f)
			}
			_, _, err := f.run(c.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Empty(t, f.writes(), "bad input writes nothing")
		})
	}
}

// normalizeDiff removes what changes from run to run: temp folders and times.
func normalizeDiff(s string) string {
	s = regexp.MustCompile(`/[^ \t\n]*/(LIVE|MERGED)-[0-9]+`).ReplaceAllString(s, "$1")
	s = regexp.MustCompile(`(?m)^((---|\+\+\+) \S+)\t.*$`).ReplaceAllString(s, "$1")
	return regexp.MustCompile(`"(startedAt|updatedAt)":"[^"]*"`).ReplaceAllString(s, `"$1":"TIME"`)
}

func TestDryRunPrintsADiffAndWritesNothing(t *testing.T) {
	t.Setenv("KUBECTL_EXTERNAL_DIFF", "")
	f := newFakeCluster(t, "bookinfo-adopted", "bookinfo")
	out, _, err := f.run("start", "reviews", "--canary", "v3", "--dry-run")
	require.NoError(t, err)
	assert.Empty(t, f.writes())
	testutil.Golden(t, testutil.Testdata("cmd", "start-dry-run.diff"), []byte(normalizeDiff(out)))

	out, _, err = f.run("start", "reviews", "--canary", "v3", "--dry-run=client", "-o", "yaml")
	require.NoError(t, err)
	assert.Empty(t, f.writes())
	list := map[string]interface{}{}
	require.NoError(t, yaml.Unmarshal([]byte(out), &list))
	assert.Equal(t, "List", list["kind"])
	assert.Len(t, list["items"], 2)
}

func TestExternalDiffIsHonoured(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	t.Setenv("KUBECTL_EXTERNAL_DIFF", "ls")
	out, _, err := f.run("start", "reviews", "--dry-run")
	require.NoError(t, err)
	assert.Contains(t, out, "networking.istio.io.v1.VirtualService.shop.reviews")
	assert.Contains(t, out, "networking.istio.io.v1.DestinationRule.shop.reviews")
	assert.Empty(t, f.writes())
}

func TestConflictIsRetriedWithTheIntentReapplied(t *testing.T) {
	f := newFakeCluster(t, "bookinfo-adopted", "bookinfo")
	_, _, err := f.run("start", "reviews", "--canary", "v3")
	require.NoError(t, err)
	conflicts := 0
	f.dynamic.PrependReactor("update", "virtualservices", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if conflicts > 0 {
			return false, nil, nil
		}
		conflicts++
		// Another writer gets in first: it adds a retry policy to the default route.
		// (The tracker is used directly: the fake client is locked while reactors run.)
		obj, err := f.dynamic.Tracker().Get(vsGVR, "bookinfo", "reviews")
		require.NoError(t, err)
		vs := obj.(*unstructured.Unstructured).DeepCopy()
		routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
		routes[2].(map[string]interface{})["retries"] = map[string]interface{}{"attempts": int64(2)}
		require.NoError(t, unstructured.SetNestedSlice(vs.Object, routes, "spec", "http"))
		require.NoError(t, f.dynamic.Tracker().Update(vsGVR, vs, "bookinfo"))
		return true, nil, apierrors.NewConflict(vsGVR.GroupResource(), "reviews", nil)
	})
	_, _, err = f.run("weight", "reviews", "40")
	require.NoError(t, err)
	assert.Equal(t, 1, conflicts)
	vs := f.get(vsGVR, "reviews")
	assert.Equal(t, []int64{60, 40}, weightsOf(t, vs, "http", 2), "the intent survives")
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	assert.Equal(t, map[string]interface{}{"attempts": int64(2)}, routes[2].(map[string]interface{})["retries"], "the other writer's change survives")
}

func TestStatusTable(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews", "--weight", "25")
	require.NoError(t, err)
	var out bytes.Buffer
	g := &globalOptions{conn: canary.ConnectWith(f), IOStreams: genericiooptions.IOStreams{Out: &out, ErrOut: &out}}
	o := &StatusOptions{globalOptions: g, namespace: "shop", allNamespaces: true, now: func() time.Time { return time.Now().Add(90 * time.Minute) }}
	require.NoError(t, o.Run(context.Background()))
	assert.Regexp(t, `NAMESPACE\s+SERVICE\s+STABLE\s+CANARY\s+WEIGHT\s+DRIFT\s+PHASE\s+STABLE READY\s+CANARY READY\s+AGE\s+ROUTING\n`+
		`shop\s+reviews\s+v1\s+v2\s+25%\s+-\s+Progressing\s+3/3\s+1/1\s+(89|90)m\s+-\n`, out.String())

	_, _, err = f.run("status", "ratings")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `service "ratings" not found in namespace "shop"`)
}

func TestVersionNeedsNoCluster(t *testing.T) {
	var out bytes.Buffer
	cmd := newCmdCanary(&globalOptions{IOStreams: genericiooptions.IOStreams{Out: &out, ErrOut: os.Stderr}})
	cmd.SetArgs([]string{"version"})
	require.NoError(t, cmd.Execute())
	assert.Regexp(t, `^kubectl-canary dev \(commit unknown, go1\.\d+`, out.String())
}

func TestHelpSaysKubectlCanary(t *testing.T) {
	var out bytes.Buffer
	cmd := NewCmdCanary(genericiooptions.IOStreams{Out: &out, ErrOut: &out})
	cmd.SetArgs([]string{"start", "--help"})
	require.NoError(t, cmd.Execute())
	assert.Contains(t, out.String(), "kubectl canary start SERVICE")
	assert.Contains(t, out.String(), "--kubeconfig")
}

func TestMatchRulesMirrorAndStickyThroughTheCommands(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews", "--weight", "0", "--header", "x-tester=yes", "--cookie", "beta=on", "--mirror", "20", "--sticky")
	require.NoError(t, err)
	http, _, _ := unstructured.NestedSlice(f.get(vsGVR, "reviews").Object, "spec", "http")
	require.Len(t, http, 3, "match route, sticky route, split route")
	assert.Equal(t, "canary-match", http[0].(map[string]interface{})["name"])
	assert.Equal(t, "canary-sticky", http[1].(map[string]interface{})["name"])
	assert.Equal(t, map[string]interface{}{"value": int64(20)}, http[2].(map[string]interface{})["mirrorPercentage"])

	out, _, err := f.run("status", "reviews")
	require.NoError(t, err)
	assert.Contains(t, out, "header x-tester=yes, cookie beta=on, sticky, mirror 20%")

	_, _, err = f.run("route", "reviews", "--clear-matches")
	require.NoError(t, err)
	http, _, _ = unstructured.NestedSlice(f.get(vsGVR, "reviews").Object, "spec", "http")
	require.Len(t, http, 2, "the sticky route stays, the match route goes")

	_, _, err = f.run("weight", "reviews", "30", "--mirror", "0")
	require.NoError(t, err)
	http, _, _ = unstructured.NestedSlice(f.get(vsGVR, "reviews").Object, "spec", "http")
	assert.NotContains(t, http[1].(map[string]interface{}), "mirror")

	_, _, err = f.run("abort", "reviews")
	require.NoError(t, err)
	http, _, _ = unstructured.NestedSlice(f.get(vsGVR, "reviews").Object, "spec", "http")
	assert.Equal(t, []interface{}{map[string]interface{}{"route": []interface{}{map[string]interface{}{
		"destination": map[string]interface{}{"host": "reviews.shop.svc.cluster.local", "subset": "v1"},
	}}}}, http, "abort removes every route and header it added")
}

func TestGatewayTrafficGetsTheSplit(t *testing.T) {
	f := newFakeCluster(t, "hosts-and-gateway", "prod")
	out, _, err := f.run("start", "web", "--gateway", "istio-system/public-gateway", "--host", "shop.example.com", "--weight", "30")
	require.NoError(t, err)
	assert.Contains(t, out, "virtualservice.networking.istio.io/web-gateway created")
	vs := f.get(vsGVR, "web-gateway")
	gateways, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "gateways")
	hosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts")
	assert.Equal(t, []string{"istio-system/public-gateway"}, gateways)
	assert.Equal(t, []string{"shop.example.com"}, hosts)
	assert.Equal(t, []int64{70, 30}, weightsOf(t, vs, "http", 0))
	assert.Equal(t, []int64{70, 30}, weightsOf(t, f.get(vsGVR, "web-mesh"), "http", 0), "the mesh keeps its own split")

	out, _, err = f.run("status", "web")
	require.NoError(t, err)
	assert.Contains(t, out, "gateway shop.example.com, gateway www.example.com")
}

func TestCheckCommandAndPreflight(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	out, _, err := f.run("check", "reviews")
	require.NoError(t, err)
	assert.Equal(t, "service shop/reviews: no findings, ready for a canary\n", out)

	d, err := f.core.AppsV1().Deployments("shop").Get(context.Background(), "reviews-v2", metav1GetOptions)
	require.NoError(t, err)
	d.Status.AvailableReplicas = 0
	_, err = f.core.AppsV1().Deployments("shop").UpdateStatus(context.Background(), d, metav1UpdateOptions)
	require.NoError(t, err)

	out, _, err = f.run("check", "reviews")
	require.Error(t, err)
	assert.Equal(t, "service shop/reviews: 1 error(s) found", err.Error())
	assert.Regexp(t, `SEVERITY\s+OBJECT\s+FINDING\nerror\s+Deployment shop/reviews-v2\s+canary version=v2 has 0 available replica`, out)

	_, _, err = f.run("start", "reviews")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "preflight check of service shop/reviews failed, nothing was changed")
	assert.Empty(t, f.writes())

	// A dark launch sends the canary no traffic: nothing to refuse.
	_, _, err = f.run("start", "reviews", "--weight", "0")
	require.NoError(t, err)
	_, _, err = f.run("weight", "reviews", "10")
	require.Error(t, err)
	_, stderr, err := f.run("weight", "reviews", "10", "--force")
	require.NoError(t, err)
	assert.Contains(t, stderr, "Warning: Deployment shop/reviews-v2: canary version=v2 has 0 available replica")
	// Abort is never stopped by the check.
	_, _, err = f.run("abort", "reviews")
	require.NoError(t, err)
}

func TestStartIsCheckedByAServerDryRunBeforeItWrites(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	f.dynamic.PrependReactor("create", "virtualservices", func(action clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: "networking.istio.io", Kind: "VirtualService"}, "reviews", nil)
	})
	_, _, err := f.run("start", "reviews")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the API server would reject the create of VirtualService shop/reviews (found by a server dry run; nothing was written)")
	assert.Empty(t, f.writes(), "the DestinationRule is not written either")
}

func TestALoneRefusedWriteNamesVerbResourceAndNamespace(t *testing.T) {
	f := newFakeCluster(t, "no-istio", "shop")
	_, _, err := f.run("start", "reviews")
	require.NoError(t, err)
	f.dynamic.PrependReactor("update", "virtualservices", func(action clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(vsGVR.GroupResource(), "reviews", errors.New(`User "jane" cannot update resource "virtualservices"`))
	})
	_, _, err = f.run("weight", "reviews", "30")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not allowed to update virtualservices.networking.istio.io in namespace shop; nothing was changed")
}
