//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestBadServices: Services a canary cannot run on (an ExternalName alias,
// a headless Service, a Service without selector) are refused by start with
// a message that says why, and nothing is written. Deployments of two
// versions exist, so the refusal is about the Service itself.
func TestBadServices(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	// reviews-v1 and reviews-v2, with pods labelled app=reviews, and a
	// well-formed Service reviews (not used below).
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	c.create(t, ns, `
apiVersion: v1
kind: Service
metadata: {name: alias}
spec:
  type: ExternalName
  externalName: reviews.example.com
---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec:
  clusterIP: None
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: manual}
spec:
  ports: [{name: http, port: 9080}]
`)
	for _, tc := range []struct {
		service string
		want    []string
	}{
		{"alias", []string{ns + "/alias", "ExternalName", "reviews.example.com"}},
		{"headless", []string{ns + "/headless", "headless", "clusterIP: None"}},
		{"manual", []string{ns + "/manual", "no selector"}},
	} {
		for _, args := range [][]string{
			{"start", tc.service},
			{"start", tc.service, "--weight", "0", "--force"},
		} {
			r := c.failCanary(t, append(args, "-n", ns)...)
			for _, w := range tc.want {
				assert.Contains(t, r.stderr, w, "%v", args)
			}
			assert.Empty(t, r.stdout, "%v", args)
			assert.NotContains(t, r.stderr, "panic")
		}
		// check reports the same, as an error about the Service.
		r := c.failCanary(t, "check", tc.service, "-n", ns)
		requireExitCode(t, r, 3)
		rows := table(t, r.stdout)
		if assert.NotEmpty(t, rows, "check %s printed no finding:\n%s", tc.service, r) {
			assert.Equal(t, "error", rows[0]["SEVERITY"])
			assert.Equal(t, "Service "+ns+"/"+tc.service, rows[0]["OBJECT"])
			assert.Contains(t, rows[0]["FINDING"], tc.want[1])
		}
	}
	assert.Empty(t, c.versionsOf(t, ns), "a refused start wrote")
	for _, e := range c.audit(t, ns) {
		if strings.HasPrefix(e.UserAgent, "kubectl-canary") {
			assert.Contains(t, []string{"get", "list"}, e.Verb, "the plugin wrote: %s %s", e.Verb, e.RequestURI)
		}
	}
}
