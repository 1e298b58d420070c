package canary

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubectl-canary/kubectl-canary/pkg/routing"
	"github.com/kubectl-canary/kubectl-canary/pkg/testutil"
)

// snapshotStore is a Store that reads one snapshot and refuses every
// write: a client dry run of start plans on it and writes nothing.
type snapshotStore struct {
	t    *testing.T
	snap routing.Snapshot
}

func (s *snapshotStore) Read(context.Context, Query) (*routing.Snapshot, error) {
	snap := s.snap
	snap.Deployments = append([]appsv1.Deployment(nil), s.snap.Deployments...)
	snap.Services = append([]corev1.Service(nil), s.snap.Services...)
	snap.VirtualServices, snap.DestinationRules, snap.GatewayAPIRoutes = copies(s.snap.VirtualServices), copies(s.snap.DestinationRules), copies(s.snap.GatewayAPIRoutes)
	svc := *s.snap.Service
	snap.Service = &svc
	return &snap, nil
}

func copies(list []*unstructured.Unstructured) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range list {
		out = append(out, u.DeepCopy())
	}
	return out
}

func (s *snapshotStore) Authorise(context.Context, []routing.Change) error {
	s.t.Fatal("a client dry run asked to authorise a write")
	return nil
}

func (s *snapshotStore) Write(context.Context, routing.Change, bool) (*unstructured.Unstructured, error) {
	s.t.Fatal("a client dry run wrote")
	return nil, nil
}

// loadCheckSnapshot reads fixture files under testdata/ (a path each, the
// first Service named service the canary's) into a snapshot, as the
// cluster would be read with the namespace's Services. Deployments without
// a status are ready.
func loadCheckSnapshot(t *testing.T, namespace, service string, files ...string) routing.Snapshot {
	t.Helper()
	snap := routing.Snapshot{APIVersion: "networking.istio.io/v1", Now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	for _, file := range files {
		for _, u := range testutil.ReadObjects(t, testutil.Testdata(strings.Split(file, "/")...)) {
			if u.GetNamespace() == "" {
				u.SetNamespace(namespace)
			}
			if u.GetNamespace() != namespace && u.GetKind() != "VirtualService" {
				continue
			}
			switch u.GetKind() {
			case "Service":
				svc := corev1.Service{}
				require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &svc))
				snap.Services = append(snap.Services, svc)
				if svc.Name == service && snap.Service == nil {
					snap.Service = &svc
				}
			case "Deployment":
				d := appsv1.Deployment{}
				require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d))
				if _, hasStatus := u.Object["status"]; !hasStatus {
					d.Status.AvailableReplicas, d.Status.Replicas = 1, 1
				}
				snap.Deployments = append(snap.Deployments, d)
			case "VirtualService":
				snap.VirtualServices = append(snap.VirtualServices, u)
			case "DestinationRule":
				snap.DestinationRules = append(snap.DestinationRules, u)
			case "HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute":
				snap.GatewayAPIRoutes = append(snap.GatewayAPIRoutes, u)
			}
		}
	}
	require.NotNil(t, snap.Service, "no Service %s/%s in %v", namespace, service, files)
	return snap
}

// TestCheckAndStartAgree runs kubectl canary check's check and a client
// dry run of start on the same snapshots: check finds an error exactly
// where start refuses, and start's reason is among check's findings, in
// start's words.
func TestCheckAndStartAgree(t *testing.T) {
	samples := func(files ...string) []string {
		out := make([]string, len(files))
		for i, f := range files {
			out[i] = filepath.Join("routing", "samples", f)
		}
		return out
	}
	helloworld := samples("istio/samples/helloworld/helloworld.yaml", "istio/samples/helloworld/gateway-api/helloworld-versions.yaml", "istio/samples/helloworld/gateway-api/helloworld-route.yaml")
	tcpEcho := samples("istio/samples/tcp-echo/tcp-echo-services.yaml", "istio/samples/tcp-echo/gateway-api/tcp-echo-all-v1.yaml")
	grpcWeight := samples("gateway-api-conformance/mesh/manifests.yaml", "gateway-api-conformance/tests/mesh/grpcroute-weight.yaml")
	noIstio := []string{"routing/no-istio/cluster.yaml"}
	bookinfo := []string{"routing/bookinfo-adopted/cluster.yaml"}
	bookinfoGatewayAPI := []string{"routing/gatewayapi/bookinfo-adopted/cluster.yaml"}
	vs := func(spec string) func(*routing.Snapshot) {
		return func(s *routing.Snapshot) {
			s.VirtualServices = append(s.VirtualServices, testutil.DecodeObjects(t, []byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: shop}\nspec: "+spec))...)
		}
	}
	cases := []struct {
		name           string
		namespace, svc string
		files          []string
		mutate         func(*routing.Snapshot)
		intent         routing.Intent
		// refused is a part of start's refusal; "" means start goes ahead.
		refused string
	}{
		{"ready, nothing routed yet", "shop", "reviews", noIstio, nil, routing.Intent{}, ""},
		{"one version only", "shop", "reviews", noIstio, func(s *routing.Snapshot) { s.Deployments = s.Deployments[:1] }, routing.Intent{},
			"has only one version behind it"},
		{"no deployment", "shop", "reviews", noIstio, func(s *routing.Snapshot) { s.Deployments = nil }, routing.Intent{},
			"no Deployment in namespace shop has pods matching"},
		{"several canary candidates", "bookinfo", "reviews", bookinfo, nil, routing.Intent{},
			"has several versions besides stable version=v1: v2, v3"},
		{"several canaries, one asked", "bookinfo", "reviews", bookinfo, nil, routing.Intent{Canary: "v3"}, ""},
		{"unknown canary", "shop", "reviews", noIstio, nil, routing.Intent{Canary: "v9"}, "has no such version"},
		{"canary is stable", "shop", "reviews", noIstio, nil, routing.Intent{Canary: "v1"}, "is the stable version"},
		{"route mixes another host", "shop", "reviews", noIstio,
			vs("{hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v1}, weight: 50}, {destination: {host: ratings}, weight: 50}]}]}"),
			routing.Intent{}, "no route sends its traffic to stable version=v1 alone"},
		{"routes split between two, no canary asked", "default", "helloworld", helloworld, nil, routing.Intent{},
			"already send traffic to several versions"},
		{"routes split between two, canary asked", "default", "helloworld", helloworld, nil, routing.Intent{Canary: "v2"}, ""},
		{"no rule to the stable asked", "bookinfo", "reviews", bookinfoGatewayAPI, nil, routing.Intent{Stable: "v3", Canary: "v2"},
			"no rule sends it to stable version=v3 alone"},
		{"weight-0 backend is not mixing", "gateway-conformance-mesh", "echo", grpcWeight, nil, routing.Intent{Canary: "v2"}, ""},
		{"per-version Services of the ports used", "default", "tcp-echo", tcpEcho, nil, routing.Intent{}, ""},
		{"gateway route and its -mesh sibling in the way", "default", "helloworld", helloworld, func(s *routing.Snapshot) {
			sibling := s.GatewayAPIRoutes[0].DeepCopy()
			sibling.SetName("helloworld-mesh")
			s.GatewayAPIRoutes = append(s.GatewayAPIRoutes, sibling)
		}, routing.Intent{Canary: "v2"}, "HTTPRoutes default/helloworld and default/helloworld-mesh exist but do not attach"},
		{"unknown route name", "bookinfo", "reviews", bookinfo, nil, routing.Intent{Canary: "v3", Routes: []string{"nope"}},
			"no route of that name sends traffic"},
		{"owned by a Kiali wizard", "bookinfo", "reviews", bookinfo, func(s *routing.Snapshot) {
			s.VirtualServices[0].SetLabels(map[string]string{"kiali_wizard": "request_routing"})
		}, routing.Intent{Canary: "v3"}, "is managed by a Kiali wizard"},
		{"unready canary", "shop", "reviews", noIstio, func(s *routing.Snapshot) {
			for i := range s.Deployments {
				if s.Deployments[i].Name == "reviews-v2" {
					s.Deployments[i].Status.AvailableReplicas = 0
				}
			}
		}, routing.Intent{}, "canary version=v2 has 0 available replica(s)"},
		{"both routing APIs", "default", "helloworld", helloworld, func(s *routing.Snapshot) {
			s.VirtualServices = testutil.DecodeObjects(t, []byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: helloworld, namespace: default}\nspec: {hosts: [helloworld], http: [{route: [{destination: {host: helloworld}}]}]}"))
		}, routing.Intent{Canary: "v2"}, "through the Kubernetes Gateway API"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := loadCheckSnapshot(t, c.namespace, c.svc, c.files...)
			if c.mutate != nil {
				c.mutate(&snap)
			}
			start := c.intent
			start.Action, start.Weight = routing.ActionStart, routing.DefaultStartWeight
			engine := &Engine{Store: &snapshotStore{t: t, snap: snap}}
			_, startErr := engine.Change(context.Background(), Request{Namespace: c.namespace, Service: c.svc, Intent: start, DryRun: ClientDryRun, MinAvailable: 1})

			findings := routing.Check(snap, c.intent, routing.CheckOptions{MinAvailable: 1, PlanStart: true})
			var errorMessages []string
			for _, f := range findings {
				if f.Severity == routing.SeverityError {
					errorMessages = append(errorMessages, f.Message)
				}
			}
			if c.refused == "" {
				require.NoError(t, startErr, "start must go ahead")
				assert.Empty(t, errorMessages, "check must find no error where start goes ahead")
				return
			}
			require.Error(t, startErr, "start must refuse")
			assert.Contains(t, startErr.Error(), c.refused)
			require.NotEmpty(t, errorMessages, "check must find an error where start refuses (%v)", startErr)
			var preflight *PreflightError
			if errors.As(startErr, &preflight) {
				for _, f := range preflight.Findings {
					assert.Contains(t, errorMessages, f.Message, "start's preflight finding is check's")
				}
				return
			}
			assert.Equal(t, startErr.Error(), errorMessages[0], "start's refusal is check's first finding, in the same words")
		})
	}
}
