//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// userSteps is everything a user does with a canary, in order. Each step
// that writes runs with --dry-run=server first, then for real.
var userSteps = []struct {
	args   []string
	writes bool
}{
	{[]string{"start", "reviews"}, true},
	{[]string{"weight", "reviews", "30"}, true},
	{[]string{"status"}, false},
	{[]string{"status", "reviews", "-o", "json"}, false},
	{[]string{"promote", "reviews"}, true},
	{[]string{"start", "reviews", "--canary", "v1"}, true}, // a new canary: v2 is stable now, v1 named (start never picks the retired version itself)
	{[]string{"abort", "reviews"}, true},
}

// TestLeastPrivilegeRole: canary-user bound to exactly the Role the README
// documents runs every command; bound to that Role with any one of its
// grants removed, the first command that needs it fails, names the verb, the
// resource and the namespace, and writes nothing.
func TestLeastPrivilegeRole(t *testing.T) {
	t.Parallel()
	c := shared
	role := readmeRole(t)
	grants := map[grant]bool{}
	for _, g := range grantsOf(role) {
		grants[g] = true
	}

	t.Run("documented role", func(t *testing.T) {
		t.Parallel()
		ns := c.newNamespace(t)
		c.deployVersions(t, ns, "reviews", "v1", "v2")
		c.bindUser(t, ns, role)
		for _, step := range userSteps {
			for _, args := range variants(step.args, step.writes) {
				r := c.canary(t, []string{"KUBECONFIG=" + c.userKubeconfig}, append(args, "-n", ns)...)
				require.NoError(t, r.err, "%s", r)
			}
		}
		vs := c.get(t, vsV1, ns, "reviews")
		assert.Equal(t, "Aborted", stateOf(t, vs, "reviews").Phase)
		assert.Equal(t, map[string]int64{"v2": 100}, weights(t, vs, "http", 0))
	})

	for _, g := range grantsOf(role) {
		t.Run("without "+g.String(), func(t *testing.T) {
			t.Parallel()
			ns := c.newNamespace(t)
			c.deployVersions(t, ns, "reviews", "v1", "v2")
			c.bindUser(t, ns, withoutGrant(role, g))
			verb := regexp.MustCompile(`\b` + g.verb + `\b`)
			for _, step := range userSteps {
				failed := false
				for _, args := range variants(step.args, step.writes) {
					before := c.versionsOf(t, ns)
					r := c.canary(t, []string{"KUBECONFIG=" + c.userKubeconfig}, append(args, "-n", ns)...)
					if r.err == nil {
						require.False(t, failed, "%v failed with --dry-run=server but not for real:\n%s", step.args, r)
						continue
					}
					failed = true
					assert.Regexp(t, verb, r.stderr, "the error must name the verb %s", g.verb)
					assert.Contains(t, r.stderr, g.resource, "the error must name the resource")
					assert.Contains(t, r.stderr, ns, "the error must name the namespace")
					assert.Equal(t, before, c.versionsOf(t, ns), "%v wrote before failing", args)
				}
				if failed {
					return
				}
			}
			if g.verb == "get" && grants[grant{g.group, g.resource, "list"}] {
				// list reads whole objects too, so an unused get next to it
				// gives nothing more away.
				t.Logf("no command needs %s (harmless next to list)", g)
				return
			}
			t.Errorf("every command succeeded without %s: the README's Role grants more than the plugin needs", g)
		})
	}
}

// variants is the command run for real, preceded by a server dry run when it
// writes.
func variants(args []string, writes bool) [][]string {
	if !writes {
		return [][]string{args}
	}
	return [][]string{append(append([]string{}, args...), "--dry-run=server"), args}
}

// readmeRole is the Role in the first ```yaml block after the heading
// "## RBAC" of the repository's README.md.
func readmeRole(t *testing.T) *rbacv1.Role {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	var block []string
	section, inBlock, done := false, false, false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case done:
		case !section:
			section = strings.HasPrefix(line, "## RBAC")
		case !inBlock:
			inBlock = strings.TrimSpace(line) == "```yaml"
		case strings.TrimSpace(line) == "```":
			done = true
		default:
			block = append(block, line)
		}
	}
	require.True(t, done, "README.md has no ```yaml block after a heading \"## RBAC\"")
	role := &rbacv1.Role{}
	require.NoError(t, yaml.UnmarshalStrict([]byte(strings.Join(block, "\n")), role), "README's RBAC block:\n%s", strings.Join(block, "\n"))
	require.Equal(t, "Role", role.Kind, "README's RBAC block is not a Role")
	require.NotEmpty(t, role.Rules)
	return role
}

// grant is one verb on one resource.
type grant struct{ group, resource, verb string }

func (g grant) String() string {
	if g.group == "" {
		return g.verb + " " + g.resource
	}
	return g.verb + " " + g.resource + "." + g.group
}

func grantsOf(role *rbacv1.Role) []grant {
	var out []grant
	for _, rule := range role.Rules {
		for _, group := range rule.APIGroups {
			for _, resource := range rule.Resources {
				for _, verb := range rule.Verbs {
					out = append(out, grant{group, resource, verb})
				}
			}
		}
	}
	return out
}

// withoutGrant is role with one rule per grant, less the one given.
func withoutGrant(role *rbacv1.Role, drop grant) *rbacv1.Role {
	out := role.DeepCopy()
	out.Rules = nil
	for _, g := range grantsOf(role) {
		if g != drop {
			out.Rules = append(out.Rules, rbacv1.PolicyRule{APIGroups: []string{g.group}, Resources: []string{g.resource}, Verbs: []string{g.verb}})
		}
	}
	return out
}

// bindUser creates role in ns, binds canary-user to it, and waits until the
// authorizer sees the binding.
func (c *cluster) bindUser(t *testing.T, ns string, role *rbacv1.Role) {
	t.Helper()
	c.bindAs(t, ns, role, "canary-user")
}

// bindAs creates role in ns, binds user to it (canary-user, or a name the
// admin impersonates), and waits until the authorizer sees the binding.
func (c *cluster) bindAs(t *testing.T, ns string, role *rbacv1.Role, user string) {
	t.Helper()
	role = role.DeepCopy()
	role.Namespace = ns
	data, err := yaml.Marshal(role)
	require.NoError(t, err)
	c.create(t, ns, string(data))
	c.kubectl(t, "", "create", "rolebinding", user, "-n", ns, "--role", role.Name, "--user", user)
	c.waitCan(t, ns, user, grantsOf(role)[0], true)
}

// waitCan waits until the authorizer answers can (true or false) to user
// doing g in ns.
func (c *cluster) waitCan(t *testing.T, ns, user string, g grant, can bool) {
	t.Helper()
	resource := g.resource
	if g.group != "" {
		resource += "." + g.group
	}
	env := c.commandEnv()
	args := []string{"auth", "can-i", g.verb, resource, "-n", ns, "--as", user}
	if user == "canary-user" {
		env, args = c.commandEnv("KUBECONFIG="+c.userKubeconfig), args[:len(args)-2]
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := run(t, env, "", args...)
		if (r.err == nil) == can {
			return
		}
		require.True(t, time.Now().Before(deadline), "%s can-i %s still not %v after 30s:\n%s", user, g, can, r)
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPermissionsAreAskedBeforeEachWrite: abort, which writes two objects,
// asks the API server before its first write whether both are allowed, each
// time it runs (audit log), and keeps no answer on disk; with a permission
// revoked it stops before writing anything, and the same command finishes
// once the permission is back.
func TestPermissionsAreAskedBeforeEachWrite(t *testing.T) {
	t.Parallel()
	c := shared
	ns := c.newNamespace(t)
	user := "asking-user-" + ns
	c.deployVersions(t, ns, "reviews", "v1", "v2")
	role := readmeRole(t)
	c.bindAs(t, ns, role, user)
	cacheDir := t.TempDir()
	env := []string{"KUBECACHEDIR=" + cacheDir}
	canary := func(args ...string) result {
		return c.canary(t, env, append(args, "-n", ns, "--as", user)...)
	}
	questions := func() int {
		return len(c.auditWhere(t, func(e auditEvent) bool {
			// The plugin's, not kubectl auth can-i's (waitCan).
			return e.ObjectRef != nil && e.ObjectRef.Resource == "selfsubjectaccessreviews" &&
				e.ImpersonatedUser != nil && e.ImpersonatedUser.Username == user && strings.HasPrefix(e.UserAgent, "kubectl-canary")
		}))
	}
	must := func(args ...string) {
		t.Helper()
		r := canary(args...)
		require.NoError(t, r.err, "%s", r)
	}

	must("start", "reviews")
	must("weight", "reviews", "30")
	require.Equal(t, 0, questions(), "start's server dry run answers its questions; weight writes one object")
	must("abort", "reviews")
	require.Equal(t, 2, questions(), "abort asks about both updates")
	must("start", "reviews")
	before := len(c.audit(t, ns))
	must("abort", "reviews")
	require.Equal(t, 4, questions(), "the second abort asks again")
	var requests []string
	for _, e := range c.audit(t, ns)[before:] {
		requests = append(requests, e.Verb+" "+e.ObjectRef.Resource)
	}
	assert.ElementsMatch(t, []string{"get services", "list deployments", "list virtualservices", "list destinationrules",
		"update virtualservices", "update destinationrules"}, requests, "abort: one read per kind, one write per object (its questions are cluster-scoped)")
	_, err := os.Stat(filepath.Join(cacheDir, "kubectl-canary"))
	assert.True(t, os.IsNotExist(err), "the plugin keeps nothing of its own under --cache-dir (%v)", err)

	// Revoked: abort stops before its first write.
	must("start", "reviews")
	updateDR := grant{"networking.istio.io", "destinationrules", "update"}
	c.replaceRole(t, ns, withoutGrant(role, updateDR))
	c.waitCan(t, ns, user, updateDR, false)
	written := c.versionsOf(t, ns)
	r := canary("abort", "reviews")
	require.Error(t, r.err)
	assert.Contains(t, r.stderr, "not allowed to update destinationrules.networking.istio.io \"reviews\" in namespace "+ns+"; nothing was changed")
	assert.Equal(t, written, c.versionsOf(t, ns), "abort wrote before it was refused")

	// Granted again, the same command finishes.
	c.replaceRole(t, ns, role)
	c.waitCan(t, ns, user, updateDR, true)
	must("abort", "reviews")
	assert.Equal(t, map[string]map[string]string{"v1": {"version": "v1"}}, subsets(c.get(t, drV1, ns, "reviews")))
	assert.Equal(t, "Aborted", stateOf(t, c.get(t, drV1, ns, "reviews"), "reviews").Phase)
}

// replaceRole replaces the Role of role's name in ns with role.
func (c *cluster) replaceRole(t *testing.T, ns string, role *rbacv1.Role) {
	t.Helper()
	role = role.DeepCopy()
	role.Namespace = ns
	data, err := yaml.Marshal(role)
	require.NoError(t, err)
	c.kubectl(t, string(data), "replace", "-n", ns, "-f", "-")
}
