//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// apiVersionFixture: routing of reviews written at v1beta1, without a subset
// for v2, so that start writes both objects.
const apiVersionFixture = `
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: default
    route:
    - destination: {host: reviews, subset: v1}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
`

// TestIstioAPIVersionFlag: the shared cluster serves networking.istio.io at
// v1, v1beta1 and v1alpha3. --istio-api-version v1beta1 makes every read and
// write of the plugin use v1beta1; without it the plugin uses v1, the
// newest; a version the cluster does not serve is refused before anything
// is read or written.
func TestIstioAPIVersionFlag(t *testing.T) {
	t.Parallel()
	c := shared
	forced, newest := c.newNamespace(t), c.newNamespace(t)
	for _, ns := range []string{forced, newest} {
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		c.create(t, ns, apiVersionFixture)
	}

	// A version no cluster serves.
	before := c.versionsOf(t, forced)
	for _, args := range [][]string{
		{"start", "reviews", "-n", forced, "--istio-api-version", "v2"},
		{"--istio-api-version", "v2", "status", "-n", forced},
	} {
		r := c.failCanary(t, args...)
		assert.Contains(t, r.stderr, "--istio-api-version v2", "%v", args)
		assert.Contains(t, r.stderr, "v1beta1", "%v: the error lists the versions the cluster serves", args)
		assert.Empty(t, r.stdout)
	}
	assert.Equal(t, before, c.versionsOf(t, forced), "start --istio-api-version v2 wrote")
	assert.Empty(t, pluginIstioRequests(t, c, forced, 0), "the plugin asked for routing objects with an unserved version")

	flag := []string{"--istio-api-version", "v1beta1"}
	c.mustCanary(t, append([]string{"start", "reviews", "-n", forced}, flag...)...)
	c.mustCanary(t, append([]string{"weight", "reviews", "30", "-n", forced}, flag...)...)
	js := c.mustCanary(t, append([]string{"status", "reviews", "-n", forced, "-o", "json"}, flag...)...)
	assert.Contains(t, js, `"weight": 30`)
	c.mustCanary(t, "start", "reviews", "-n", newest)

	// Who wrote each object, at which version: managedFields.
	for ns, version := range map[string]string{forced: "v1beta1", newest: "v1"} {
		for _, obj := range []interface {
			GetManagedFields() []metav1.ManagedFieldsEntry
			GetName() string
		}{c.get(t, vsV1, ns, "reviews"), c.get(t, drV1, ns, "reviews")} {
			found := false
			for _, m := range obj.GetManagedFields() {
				if m.Manager == "kubectl-canary" {
					found = true
					assert.Equal(t, "networking.istio.io/"+version, m.APIVersion, "%s/%s: the plugin's writes", ns, obj.GetName())
				}
			}
			assert.True(t, found, "%s/%s: no managedFields entry of kubectl-canary", ns, obj.GetName())
		}
	}
	vs := c.get(t, vsV1, forced, "reviews")
	assert.Equal(t, map[string]int64{"v1": 70, "v2": 30}, weights(t, vs, "http", 0))

	// Every request of the plugin for routing objects (reads and writes),
	// by the audit log.
	for ns, version := range map[string]string{forced: "v1beta1", newest: "v1"} {
		events := pluginIstioRequests(t, c, ns, 1)
		verbs := map[string]bool{}
		for _, e := range events {
			verbs[e.Verb] = true
			assert.Equal(t, version, e.ObjectRef.APIVersion, "%s: %s %s", ns, e.Verb, e.RequestURI)
		}
		assert.True(t, verbs["list"], "%s: no read in the audit log (%v)", ns, verbs)
		assert.True(t, verbs["update"], "%s: no write in the audit log (%v)", ns, verbs)
	}
}

// pluginIstioRequests returns the audit events of the plugin's requests for
// networking.istio.io objects in ns, waiting (bounded) until there are at
// least min: the API server writes an event once its response is sent.
func pluginIstioRequests(t *testing.T, c *cluster, ns string, min int) []auditEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var out []auditEvent
		for _, e := range c.audit(t, ns) {
			if strings.HasPrefix(e.UserAgent, "kubectl-canary") && e.ObjectRef.APIGroup == "networking.istio.io" {
				out = append(out, e)
			}
		}
		if len(out) >= min || time.Now().After(deadline) {
			require.GreaterOrEqual(t, len(out), min, "plugin requests in the audit log of %s", ns)
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}
